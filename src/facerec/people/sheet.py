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


def _limit(answer: dict) -> float | None:
    """The distance under which faces were grouped, when the answer records it as a number."""
    t = answer.get("threshold")
    return float(t) if isinstance(t, (int, float)) else None


def _closeness(f: dict, limit: float | None) -> str:
    """How far a face is from its group's middle, against the distance faces were grouped within."""
    d = f.get("distance")
    if d is None:
        return ""
    if limit:
        return f"; {d:.2f} from the group's middle (faces within {limit:.2f} of each other are grouped)"
    return f"; {d:.2f} from the group's middle"


def _faces(faces: list[dict], limit: int, cache: dict, caption, grouped_within: float | None = None) -> str:
    cells = []
    for f in sorted(faces[:limit], key=lambda f: f["file"]):  # decode each file once
        src = thumbnail(f["file"], f["box"], cache)
        title = html.escape(
            f"{f['file']} {f['face_id']}"
            + (f" - {f['reason']}" if f.get("reason") else "")
            + _closeness(f, grouped_within)
        )
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
        ".why figure{width:200px}.why figcaption{white-space:normal;overflow:visible;font-size:11px}",
        "img{display:block;border-radius:3px}.gone{width:96px;height:96px;background:#eee;text-align:center;",
        "line-height:96px}.more{align-self:center;color:#666;padding:0 8px}.meta{color:#666}</style></head><body>",
        f"<h1>{len(answer['clusters'])} clusters, {len(answer['people'])} named "
        f"{'person' if len(answer['people']) == 1 else 'people'}</h1>",
        f"<p class='meta'>{answer['faces']} faces from {answer['images']} images this run; threshold "
        f"{html.escape(str(answer.get('threshold_source', '')))}; {html.escape(str(answer.get('algorithm', '')))}, "
        f"min faces {answer.get('min_faces')}. Name a cluster (its faces go into this folder's gallery.npz, "
        'or the gallery given once with --model): <code>facerec people name ID "Name"</code></p>',
    ]
    limit = _limit(answer)

    def where(f: dict) -> str:  # the caption: the photo's name; how far from the group in the tooltip
        return Path(f["file"]).name

    for cid, faces in answer["clusters"].items():
        parts.append(f"<h2 id='c{cid}'>cluster {html.escape(cid)} &middot; {len(faces)} faces</h2>")
        parts.append(_faces(faces, PER_ROW, cache, where, limit))
    for name, faces in answer["people"].items():
        parts.append(f"<h2>{html.escape(name.replace('_', ' '))} &middot; {len(faces)} faces</h2>")
        parts.append(_faces(faces, PER_ROW, cache, where, limit))
    for title, faces, cls in (
        ("ungrouped", answer["ungrouped"], ""),
        ("rejected by the quality gate", answer["rejected"], " why"),
    ):
        if faces:
            parts.append(f"<h2>{title} &middot; {len(faces)} faces</h2><div class='{cls.strip()}'>")
            parts.append(_faces(faces, LOOSE, cache, lambda f: f.get("reason", "") or Path(f["file"]).name, limit))
            parts.append("</div>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_sheet(path: str | Path, answer: dict) -> Path:
    path = Path(path)
    atomic_write_bytes(path, render(answer).encode())
    return path
