"""The contact sheet: ``index.html``, one row of face thumbnails per cluster (biggest first), then
the named people, the ungrouped faces and the rejected ones with why. One file, the thumbnails
inline as JPEG data, no external assets: it opens offline, from a USB stick, anywhere."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from PIL import Image, ImageOps

from facerec.paths import atomic_write_bytes

THUMB = 96  # px
PER_ROW = 24  # faces shown per cluster (nearest its centre first); the count says how many more
LOOSE = 120  # ungrouped or rejected faces shown


def thumbnail(file: str, box, cache: dict) -> str:
    """A data: URL of the face's square crop (a little context around the box), or "" when the
    file can no longer be read."""
    try:
        if file not in cache:
            cache.clear()  # faces of one file come together: keep one decoded image
            with Image.open(file) as im:
                cache[file] = ImageOps.exif_transpose(im).convert("RGB")
        im = cache[file]
    except OSError:
        return ""
    x1, y1, x2, y2 = box
    cx, cy, side = (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1) * 1.3
    crop = im.crop((int(cx - side / 2), int(cy - side / 2), int(cx + side / 2), int(cy + side / 2)))
    crop = crop.resize((THUMB, THUMB), Image.BILINEAR)
    buf = io.BytesIO()
    crop.save(buf, "JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _faces(faces: list[dict], limit: int, cache: dict, caption) -> str:
    cells = []
    for f in sorted(faces[:limit], key=lambda f: f["file"]):  # decode each file once
        src = thumbnail(f["file"], f["box"], cache)
        title = html.escape(f"{f['file']} {f['face_id']}" + (f" - {f['reason']}" if f.get("reason") else ""))
        img = f'<img src="{src}" alt="" width="{THUMB}" height="{THUMB}">' if src else '<div class="gone">?</div>'
        cells.append(f'<figure title="{title}">{img}<figcaption>{html.escape(caption(f))}</figcaption></figure>')
    more = f'<span class="more">+{len(faces) - limit} more</span>' if len(faces) > limit else ""
    return '<div class="row">' + "".join(cells) + more + "</div>"


def render(answer: dict) -> str:
    cache: dict = {}
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>facerec people</title><style>",
        "body{font:14px system-ui,sans-serif;margin:16px;color:#222}h2{margin:18px 0 4px;font-size:15px}",
        ".row{display:flex;flex-wrap:wrap;gap:4px}figure{margin:0;width:96px}",
        "figcaption{font-size:10px;color:#666;overflow:hidden;white-space:nowrap;text-overflow:ellipsis}",
        "img{display:block;border-radius:3px}.gone{width:96px;height:96px;background:#eee;text-align:center;",
        "line-height:96px}.more{align-self:center;color:#666;padding:0 8px}.meta{color:#666}</style></head><body>",
        f"<h1>{len(answer['clusters'])} clusters, {len(answer['people'])} named people</h1>",
        f"<p class='meta'>{answer['faces']} faces from {answer['images']} images this run; threshold "
        f"{html.escape(str(answer.get('threshold_source', '')))}; {html.escape(str(answer.get('algorithm', '')))}, "
        f"min faces {answer.get('min_faces')}. Name a cluster: "
        '<code>facerec people name ID "Name" --model GALLERY</code></p>',
    ]
    dist = lambda f: f"d {f['distance']:.2f}"  # noqa: E731
    for cid, faces in answer["clusters"].items():
        parts.append(f"<h2 id='c{cid}'>cluster {html.escape(cid)} &middot; {len(faces)} faces</h2>")
        parts.append(_faces(faces, PER_ROW, cache, dist))
    for name, faces in answer["people"].items():
        parts.append(f"<h2>{html.escape(name)} &middot; {len(faces)} faces</h2>")
        parts.append(_faces(faces, PER_ROW, cache, dist))
    for title, faces in (("ungrouped", answer["ungrouped"]), ("rejected by the quality gate", answer["rejected"])):
        if faces:
            parts.append(f"<h2>{title} &middot; {len(faces)} faces</h2>")
            parts.append(_faces(faces, LOOSE, cache, lambda f: f.get("reason", "")))
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_sheet(path: str | Path, answer: dict) -> Path:
    path = Path(path)
    atomic_write_bytes(path, render(answer).encode())
    return path
