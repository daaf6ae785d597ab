// facerec web page: plain browser JavaScript, no external libraries (the server is offline-first).
"use strict";
const $ = (id) => document.getElementById(id);
const keyInput = $("api-key");
keyInput.value = localStorage.getItem("facerec-api-key") || "";
keyInput.addEventListener("change", () => { localStorage.setItem("facerec-api-key", keyInput.value); refreshPeople(); });

async function api(method, path, body) {
  const headers = keyInput.value ? { "X-API-Key": keyInput.value } : {};
  const res = await fetch(path, { method, headers, body });
  let data = {};
  try { data = await res.json(); } catch (e) { data = { error: `HTTP ${res.status}` }; }
  if (!res.ok) throw new Error(data.error || `HTTP ${res.status}`);
  return data;
}

function text(tag, value, cls) {
  const el = document.createElement(tag);
  el.textContent = value;   // never innerHTML: names come from users
  if (cls) el.className = cls;
  return el;
}

// -- identify -----------------------------------------------------------------------------
async function identify(blob) {
  $("status").textContent = "Looking…";
  $("faces").replaceChildren();
  const img = await loadImage(blob);
  const form = new FormData();
  form.append("image", blob, blob.name || "photo.jpg");
  try {
    const data = await api("POST", "/v1/identify", form);
    draw(img, data.faces);
    $("status").textContent = data.faces.length
      ? `${data.faces.length} face(s); threshold ${data.threshold === null ? "none (closed set)" : data.threshold.toFixed(3)} (${data.threshold_source})`
      : "No face found in this photo.";
    data.faces.forEach((f, i) => $("faces").appendChild(faceItem(f, i)));
  } catch (e) {
    $("status").replaceChildren(text("span", e.message, "error"));
  }
}

function loadImage(blob) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("the browser cannot show this image"));
    img.src = URL.createObjectURL(blob);
  });
}

function draw(img, faces) {
  const c = $("canvas");
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext("2d");
  g.drawImage(img, 0, 0);
  const line = Math.max(2, Math.round(c.width / 250));
  g.font = `${Math.max(14, Math.round(c.width / 30))}px system-ui, sans-serif`;
  faces.forEach((f) => {
    const [x1, y1, x2, y2] = f.box;
    const unknown = f.pred === "unknown";
    g.strokeStyle = unknown ? "#e5484d" : "#30a46c";
    g.lineWidth = line;
    g.strokeRect(x1, y1, x2 - x1, y2 - y1);
    const label = `${f.pred} ${f.distance.toFixed(2)}`;
    const h = parseInt(g.font, 10) + 6;
    const w = g.measureText(label).width + 8;
    const top = y1 > h ? y1 - h : y2;
    g.fillStyle = unknown ? "#e5484d" : "#30a46c";
    g.fillRect(x1, top, w, h);
    g.fillStyle = "#fff";
    g.fillText(label, x1 + 4, top + h - 6);
  });
  c.hidden = false;
  c.dataset.faces = faces.map((f) => f.pred).join(",");  // for tests and screen readers
  c.setAttribute("aria-label", `faces: ${c.dataset.faces || "none"}`);
}

function faceItem(f, i) {
  const li = document.createElement("li");
  li.appendChild(text("span", `Face ${i + 1}: `));
  li.appendChild(text("span", f.pred, f.pred === "unknown" ? "unknown" : "known"));
  li.appendChild(text("span", `  distance ${f.distance.toFixed(4)}` +
    (f.pred === "unknown" && f.candidate ? ` (nearest: ${f.candidate})` : ""), "muted"));
  const table = document.createElement("table");
  f.topk.forEach((n, j) => {
    const tr = document.createElement("tr");
    [`${j + 1}.`, n.name, n.distance.toFixed(4)].forEach((v) => tr.appendChild(text("td", v)));
    table.appendChild(tr);
  });
  li.appendChild(table);
  return li;
}

$("photo").addEventListener("change", (e) => { if (e.target.files[0]) identify(e.target.files[0]); });
const drop = $("drop");
["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); }));
["dragleave", "drop"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.remove("over"); }));
drop.addEventListener("drop", (e) => { const f = e.dataTransfer.files[0]; if (f) identify(f); });

$("camera-btn").addEventListener("click", async () => {
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video: true });
    $("video").srcObject = stream; $("video").hidden = false; $("snap").hidden = false;
  } catch (e) { $("status").replaceChildren(text("span", `camera unavailable: ${e.message}`, "error")); }
});
$("snap").addEventListener("click", () => {
  const v = $("video"), c = document.createElement("canvas");
  c.width = v.videoWidth; c.height = v.videoHeight;
  c.getContext("2d").drawImage(v, 0, 0);
  c.toBlob((b) => { b.name = "camera.jpg"; identify(b); }, "image/jpeg", 0.92);
});

// -- enrol and people -----------------------------------------------------------------------
$("enrol-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const name = $("enrol-name").value.trim();
  const form = new FormData();
  for (const f of $("enrol-files").files) form.append("images", f, f.name);
  $("enrol-status").textContent = "Enrolling…";
  try {
    const r = await api("POST", `/v1/people/${encodeURIComponent(name)}/faces`, form);
    const skipped = r.skipped.length ? `; skipped ${r.skipped.map((s) => `${s.file}: ${s.error}`).join(", ")}` : "";
    $("enrol-status").textContent = `Enrolled ${r.added} photo(s) of ${r.name} (now ${r.images})${skipped}.`;
    $("enrol-form").reset();
    refreshPeople();
  } catch (err) {
    $("enrol-status").replaceChildren(text("span", err.message, "error"));
  }
});

async function refreshPeople() {
  refreshHealth();
  try {
    const { people } = await api("GET", "/v1/people");
    $("people-count").textContent = `(${people.length})`;
    $("people").replaceChildren(...people.map((p) => {
      const li = document.createElement("li");
      li.appendChild(text("span", `${p.name} · ${p.images}`));
      const rm = text("button", "Remove");
      rm.type = "button";
      rm.addEventListener("click", async () => {
        if (!confirm(`Remove ${p.name} and their ${p.images} photo(s)?`)) return;
        try { await api("DELETE", `/v1/people/${encodeURIComponent(p.name)}`); refreshPeople(); }
        catch (err) { alert(err.message); }
      });
      li.appendChild(rm);
      return li;
    }));
  } catch (e) {
    $("people").replaceChildren(text("li", e.message, "error"));
  }
}

function refreshHealth() {
  fetch("/healthz").then((r) => r.json()).then((h) => {
    $("health").textContent = `${h.embedder} · ${h.people} people · ${h.faces} faces`;
  }).catch(() => { $("health").textContent = "server unreachable"; });
}
refreshPeople();
