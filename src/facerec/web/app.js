// facerec web page: plain browser JavaScript, no external libraries (the server is offline-first).
"use strict";
const $ = (id) => document.getElementById(id);
const keyInput = $("api-key");
keyInput.value = localStorage.getItem("facerec-api-key") || "";
keyInput.addEventListener("change", () => {
  localStorage.setItem("facerec-api-key", keyInput.value); refreshPeople(); refreshClusters();
});

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
  lastPhoto = { img, blob };
  const form = new FormData();
  form.append("image", blob, blob.name || "photo.jpg");
  try {
    const data = await api("POST", "/v1/identify", form);
    lastFaces = data.faces;
    draw(img, data.faces);
    $("status").textContent = data.faces.length
      ? `${data.faces.length} face(s). ${promiseText(data)}`
      : "No face found in this photo.";
    data.faces.forEach((f, i) => $("faces").appendChild(faceItem(f, i)));
  } catch (e) {
    $("status").replaceChildren(text("span", e.message, "error"));
  }
}

// What the threshold promises, in words: "a face is named only when ... about 1 in 100 strangers ..."
function promiseText(data) {
  if (data.threshold === null) return "Every face gets its nearest enrolled person (closed set): strangers are named too.";
  const promise = data.threshold_promise || `threshold ${data.threshold.toFixed(3)} (${data.threshold_source})`;
  return `A face is named only when it is close enough to someone enrolled: ${promise}.`;
}

function loadImage(blob) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("the browser cannot show this image"));
    img.src = URL.createObjectURL(blob);
  });
}

// A name as people write it: LFW and folder names use "_" for spaces.
const shown = (name) => String(name).replaceAll("_", " ");

// The face's label: the name and how sure, in words (the distance is in the evidence below).
function faceLabel(f) {
  return f.pred === "unknown" ? "Unknown" : `${shown(f.pred)} · ${f.confidence || "named"}`;
}

let lastPhoto = null;  // { img, blob }: what "This is…" cuts a face from
function draw(img, faces) {
  const c = $("canvas");
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext("2d");
  g.drawImage(img, 0, 0);
  g.lineWidth = Math.max(2, Math.round(c.width / 250));
  faces.forEach((f) => {
    const [x1, y1, x2, y2] = f.box;
    g.strokeStyle = f.pred === "unknown" ? "#e5484d" : "#30a46c";
    g.strokeRect(x1, y1, x2 - x1, y2 - y1);
  });
  $("photo-view").hidden = false;
  c.dataset.faces = faces.map((f) => f.pred).join(",");  // for tests and screen readers
  c.setAttribute("aria-label", `faces: ${faces.map(faceLabel).join(", ") || "none"}`);
  placeLabels(faces);
}

// Labels are page elements over the picture, placed so that no two overlap: each starts just
// above its face (below it at the top edge), and one that would cover a label already placed moves
// down past it; a numbered badge ties it to the face in the list when it had to move far.
function placeLabels(faces) {
  const c = $("canvas"), layer = $("labels");
  layer.replaceChildren();
  if (!faces.length) return;
  const k = c.clientWidth / c.width;  // picture pixels -> page pixels
  const placed = [];
  faces.map((f, i) => ({ f, i })).sort((a, b) => a.f.box[1] - b.f.box[1] || a.f.box[0] - b.f.box[0]).forEach(({ f, i }) => {
    const el = text("div", `${i + 1}. ${faceLabel(f)}`, `face-label ${f.pred === "unknown" ? "unknown" : "known"}`);
    el.title = f.confidence_note || "";
    layer.appendChild(el);
    const w = el.offsetWidth, h = el.offsetHeight;
    const [x1, y1, , y2] = f.box.map((v) => v * k);
    let left = Math.min(Math.max(0, x1), Math.max(0, c.clientWidth - w));
    let top = y1 - h >= 0 ? y1 - h : y2;
    for (let moved = true; moved;) {  // past every label it would cover, then check again
      moved = false;
      for (const p of placed) {
        if (left < p.left + p.w && p.left < left + w && top < p.top + p.h && p.top < top + h) {
          top = p.top + p.h + 1; moved = true;
        }
      }
    }
    el.style.left = `${left}px`; el.style.top = `${top}px`;
    placed.push({ left, top, w, h });
  });
}
let lastFaces = null;
window.addEventListener("resize", () => { if (lastFaces) placeLabels(lastFaces); });

function faceItem(f, i) {
  const li = document.createElement("li");
  li.appendChild(text("span", `Face ${i + 1}: `));
  if (f.pred === "unknown") {
    li.appendChild(text("span", "unknown", "unknown"));
    if (f.candidate) li.appendChild(text("span", ` — looks a little like ${shown(f.candidate)}, not enough to say so`, "muted"));
  } else {
    li.appendChild(text("span", shown(f.pred), "known"));
    li.appendChild(text("span", ` — ${f.confidence || "named"}`));
  }
  if (f.confidence_note) li.appendChild(text("div", f.confidence_note, "muted"));
  if (f.note) li.appendChild(text("div", f.note, "muted"));
  li.appendChild(thisIs(f));
  const details = document.createElement("details");
  details.appendChild(text("summary", "Evidence: the nearest enrolled photos"));
  const table = document.createElement("table");
  f.topk.forEach((n, j) => {
    const tr = document.createElement("tr");
    [`${j + 1}.`, shown(n.name), `distance ${n.distance.toFixed(3)}`].forEach((v) => tr.appendChild(text("td", v)));
    table.appendChild(tr);
  });
  details.appendChild(table);
  li.appendChild(details);
  return li;
}

// "This is…": enrol this face under a name. The face is cut from the photo with room around it
// (the server finds the face again in the cut-out, as in any enrolment photo), so in a group photo
// it is this face that is enrolled, not the photo's most prominent one.
function thisIs(f) {
  const form = document.createElement("form");
  form.className = "this-is";
  const input = document.createElement("input");
  input.placeholder = f.pred === "unknown" ? "Who is this?" : "Someone else? Their name";
  input.required = true; input.maxLength = 64; input.setAttribute("list", "people-names");
  input.setAttribute("aria-label", "name of this person");
  const button = text("button", f.pred === "unknown" ? "This is…" : "Add this photo");
  button.type = "submit";
  if (f.pred !== "unknown") input.value = shown(f.pred);
  const status = text("span", "", "muted");
  form.append(input, button, status);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    status.textContent = "Enrolling…";
    try {
      const blob = await faceCutout(f.box);
      const body = new FormData();
      body.append("images", blob, "face.jpg");
      const r = await api("POST", `/v1/people/${encodeURIComponent(input.value.trim())}/faces`, body);
      status.textContent = r.added ? ` Enrolled as ${shown(r.name)}.` : ` Not enrolled: ${r.skipped.map((s) => s.error).join("; ")}`;
      refreshPeople();
    } catch (err) { status.replaceChildren(text("span", ` ${err.message}`, "error")); }
  });
  return form;
}

function faceCutout(box) {
  const img = lastPhoto.img, [x1, y1, x2, y2] = box;
  const pad = 0.6 * Math.max(x2 - x1, y2 - y1);
  const left = Math.max(0, x1 - pad), top = Math.max(0, y1 - pad);
  const right = Math.min(img.naturalWidth, x2 + pad), bottom = Math.min(img.naturalHeight, y2 + pad);
  const c = document.createElement("canvas");
  c.width = Math.round(right - left); c.height = Math.round(bottom - top);
  c.getContext("2d").drawImage(img, left, top, right - left, bottom - top, 0, 0, c.width, c.height);
  return new Promise((resolve) => c.toBlob(resolve, "image/jpeg", 0.92));
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
    $("people-names").replaceChildren(...people.map((p) => { const o = document.createElement("option"); o.value = shown(p.name); return o; }));
    $("people").replaceChildren(...people.map((p) => {
      const li = document.createElement("li");
      li.appendChild(text("span", `${shown(p.name)} · ${p.images} photo${p.images === 1 ? "" : "s"}`));
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

// -- people found by `facerec cluster` (served with --people DIR) --------------------------------
let peopleFolder = null;  // whether the service has one (GET /v1/config): asked once
async function refreshClusters() {
  let data;
  try {
    if (peopleFolder === null) peopleFolder = (await api("GET", "/v1/config")).people_folder;
    if (!peopleFolder) { $("clusters-panel").hidden = true; return; }
    data = await api("GET", "/v1/clusters");
  } catch (e) {
    // a service without a people folder says so: the panel stays hidden; any other error shows
    const none = /no people folder/.test(e.message);
    $("clusters-panel").hidden = none;
    if (!none) $("clusters-status").replaceChildren(text("span", e.message, "error"));
    return;
  }
  $("clusters-panel").hidden = false;
  $("clusters-count").textContent = `(${data.total} unnamed, ${data.named} named)`;
  const ids = data.clusters.map((c) => c.id);
  $("clusters").replaceChildren(...data.clusters.map((c) => clusterItem(c, ids)));
}

function clusterItem(c, ids) {
  const li = document.createElement("li");
  li.dataset.cluster = c.id;
  li.appendChild(text("strong", `Group ${c.id}`));
  li.appendChild(text("span", ` · ${c.size} face(s)`, "muted"));
  const thumbs = document.createElement("div");
  thumbs.className = "thumbs";
  c.faces.forEach((f) => {
    const box = document.createElement("div");
    box.className = "thumb";
    const img = document.createElement("img");
    img.src = f.thumbnail; img.alt = f.file; img.title = f.file;
    box.appendChild(img);
    const no = text("button", "×");
    no.type = "button"; no.title = "not this person"; no.className = "reject";
    no.addEventListener("click", () => clusterChange(`/v1/clusters/${c.id}/reject`, { face_id: f.face_id },
      `Took a face out of group ${c.id}.`));
    box.appendChild(no);
    thumbs.appendChild(box);
  });
  li.appendChild(thumbs);
  const actions = document.createElement("form");
  actions.className = "cluster-actions";
  const name = document.createElement("input");
  name.placeholder = "Who is this?"; name.maxLength = 64; name.required = true; name.className = "cluster-name";
  const ok = text("button", "Name");
  ok.type = "submit";
  actions.append(name, ok);
  actions.addEventListener("submit", async (e) => {
    e.preventDefault();
    const person = name.value.trim();
    await clusterChange(`/v1/clusters/${c.id}/name`, { name: person }, (r) =>
      `Group ${c.id} is ${r.name}: ${r.added} face(s) enrolled (now ${r.images}).`);
    refreshPeople();
  });
  const others = ids.filter((id) => id !== c.id);
  if (others.length) {
    const into = document.createElement("select");
    into.className = "merge-into";
    others.forEach((id) => {
      const o = text("option", `group ${id}`);
      o.value = id;
      into.appendChild(o);
    });
    const merge = text("button", "Merge into");
    merge.type = "button";
    merge.addEventListener("click", () => clusterChange(`/v1/clusters/${c.id}/merge`, { into: into.value },
      (r) => `Group ${c.id} joined group ${r.cluster} (${r.size} faces).`));
    actions.append(merge, into);
  }
  li.appendChild(actions);
  return li;
}

async function clusterChange(path, body, done) {
  $("clusters-status").textContent = "Saving…";
  try {
    const headers = { "Content-Type": "application/json" };
    if (keyInput.value) headers["X-API-Key"] = keyInput.value;
    const res = await fetch(path, { method: "POST", headers, body: JSON.stringify(body) });
    const r = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
    if (!res.ok) throw new Error(r.error || `HTTP ${res.status}`);
    $("clusters-status").textContent = typeof done === "function" ? done(r) : done;
  } catch (e) {
    $("clusters-status").replaceChildren(text("span", e.message, "error"));
  }
  refreshClusters();
}

function refreshHealth() {
  fetch("/healthz").then((r) => r.json()).then((h) => {
    $("health").textContent = `${h.embedder} · ${h.people} people · ${h.faces} faces`;
  }).catch(() => { $("health").textContent = "server unreachable"; });
}
refreshPeople();
refreshClusters();


// -- video: a file analysed on the server and played with its tracks; the camera with live boxes --
let videoTracks = [];

async function identifyVideo(file) {
  const every = Math.max(1, parseInt($("video-every").value, 10) || 1);
  $("video-status").textContent = "Analysing the video (this takes a while on a CPU)…";
  $("tracks").replaceChildren();
  stopLive();
  const form = new FormData();
  form.append("video", file, file.name || "video.mp4");
  try {
    const data = await api("POST", `/v1/identify-video?every=${every}`, form);
    videoTracks = data.tracks;
    const s = data.summary;
    const named = Object.keys(s.people);
    $("video-status").textContent = `${data.tracks.length} track(s), ${s.unknown_tracks} unknown; ` +
      (named.length ? `seen: ${named.join(", ")}` : "nobody from the gallery") + ` (${s.frames} frames in ${s.seconds.toFixed(1)} s)`;
    data.tracks.forEach((t) => $("tracks").appendChild(trackItem(t)));
    const clip = $("clip");
    clip.srcObject = null;
    clip.src = URL.createObjectURL(file);
    clip.dataset.tracks = data.tracks.map((t) => `${t.track}:${t.pred}`).join(",");  // for tests and screen readers
    $("player").hidden = false;
    clip.onloadedmetadata = () => { sizeOverlay(clip.videoWidth, clip.videoHeight); drawTracks(); };
  } catch (e) {
    $("video-status").replaceChildren(text("span", e.message, "error"));
  }
}

function trackItem(t) {
  const li = document.createElement("li");
  li.appendChild(text("span", `Track ${t.track}: `));
  li.appendChild(text("span", t.pred, t.pred === "unknown" ? "unknown" : "known"));
  const d = t.distance === null ? "-" : t.distance.toFixed(3);
  li.appendChild(text("span", `  ${t.start_s.toFixed(2)}–${t.end_s.toFixed(2)} s, ${t.frames} detections, distance ${d}` +
    (t.pred === "unknown" && t.candidate ? ` (nearest: ${t.candidate})` : ""), "muted"));
  return li;
}

function sizeOverlay(w, h) {
  const o = $("overlay"), clip = $("clip");
  o.width = w; o.height = h;
  o.style.width = `${clip.clientWidth}px`; o.style.height = `${clip.clientHeight}px`;
}

// a track's box at time t: its sighting, or the straight line between the two around t
function boxAt(t, time) {
  const p = t.path;
  if (!p.length || time < p[0][1] - 0.02 || time > p[p.length - 1][1] + 0.02) return null;
  let k = p.findIndex((q) => q[1] >= time);
  if (k <= 0) return (k === 0 ? p[0] : p[p.length - 1]).slice(2);
  const a = p[k - 1], b = p[k], w = (time - a[1]) / Math.max(b[1] - a[1], 1e-6);
  return a.slice(2).map((v, i) => (1 - w) * v + w * b[i + 2]);
}

function drawBoxes(items) {
  const o = $("overlay"), g = o.getContext("2d");
  g.clearRect(0, 0, o.width, o.height);
  const line = Math.max(2, Math.round(o.width / 400));
  g.font = `${Math.max(14, Math.round(o.width / 50))}px system-ui, sans-serif`;
  items.forEach(({ box, label, unknown }) => {
    const [x1, y1, x2, y2] = box;
    g.strokeStyle = g.fillStyle = unknown ? "#e5484d" : "#30a46c";
    g.lineWidth = line;
    g.strokeRect(x1, y1, x2 - x1, y2 - y1);
    const h = parseInt(g.font, 10) + 6, w = g.measureText(label).width + 8, top = y1 > h ? y1 - h : y2;
    g.fillRect(x1, top, w, h);
    g.fillStyle = "#fff";
    g.fillText(label, x1 + 4, top + h - 6);
  });
  o.dataset.drawn = items.map((i) => i.label).join(",");
}

function drawTracks() {
  const clip = $("clip");
  const items = [];
  videoTracks.forEach((t) => {
    const box = boxAt(t, clip.currentTime);
    if (box) items.push({ box, label: `${t.track}: ${t.pred}`, unknown: t.pred === "unknown" });
  });
  drawBoxes(items);
  if (!clip.paused && !clip.ended) requestAnimationFrame(drawTracks);
}
$("clip").addEventListener("play", () => requestAnimationFrame(drawTracks));
$("clip").addEventListener("seeked", drawTracks);
$("video-file").addEventListener("change", (e) => { if (e.target.files[0]) identifyVideo(e.target.files[0]); });

let liveTimer = null;
function stopLive() {
  if (liveTimer) clearInterval(liveTimer);
  liveTimer = null;
  const clip = $("clip");
  if (clip.srcObject) { clip.srcObject.getTracks().forEach((t) => t.stop()); clip.srcObject = null; }
  $("live-btn").textContent = "Live camera boxes";
}

$("live-btn").addEventListener("click", async () => {
  if (liveTimer) { stopLive(); return; }
  let stream;
  try { stream = await navigator.mediaDevices.getUserMedia({ video: true }); } catch (e) {
    $("video-status").replaceChildren(text("span", `camera unavailable: ${e.message}`, "error")); return;
  }
  const clip = $("clip");
  videoTracks = [];
  clip.removeAttribute("src");
  clip.srcObject = stream; $("player").hidden = false;
  await clip.play();
  sizeOverlay(clip.videoWidth, clip.videoHeight);
  $("live-btn").textContent = "Stop the camera";
  let busy = false;
  liveTimer = setInterval(() => {
    if (busy || !clip.videoWidth) return;
    busy = true;
    const c = document.createElement("canvas");
    c.width = clip.videoWidth; c.height = clip.videoHeight;
    c.getContext("2d").drawImage(clip, 0, 0);
    c.toBlob(async (b) => {
      const form = new FormData();
      form.append("image", b, "camera.jpg");
      try {
        const data = await api("POST", "/v1/identify", form);
        drawBoxes(data.faces.map((f) => ({ box: f.box, label: faceLabel(f), unknown: f.pred === "unknown" })));
        $("video-status").textContent = `live: ${data.faces.length} face(s)`;
      } catch (e) { $("video-status").replaceChildren(text("span", e.message, "error")); }
      busy = false;
    }, "image/jpeg", 0.85);
  }, 500);
});
