"""Where YuNet's five landmarks fall in each embedder's training crop, measured on LFW: the
templates of :mod:`facerec.align.five_point`.

- ``dlib-chip`` (150 px): dlib's own chip (HOG box, 5-point shape predictor, ``get_face_chip``
  with padding 0.25); YuNet's points mapped through the chip's transform.
- ``margin`` (160 px, margin 32): FaceNet's crop of the MTCNN box; YuNet's points mapped into it.

Only images where both detectors found one face whose boxes overlap (IoU >= 0.5) count. Prints the
mean and spread of each point, the check that our warp reproduces dlib's chip, and writes JSON.

    python bench/align_templates.py --images 2000 --json bench/reported/align_templates.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from common import write_json  # noqa: E402


def chip_transform(details) -> np.ndarray:
    """dlib's image -> chip mapping of a ``chip_details``: the rectangle's corners, rotated by the
    angle about its centre, onto the chip's corners."""
    r = details.rect
    cx, cy = (r.left() + r.right()) / 2, (r.top() + r.bottom()) / 2
    c, s = np.cos(details.angle), np.sin(details.angle)
    corners = np.array([[r.left(), r.top()], [r.right(), r.top()], [r.right(), r.bottom()]])
    rotated = np.stack(
        [
            cx + c * (corners[:, 0] - cx) - s * (corners[:, 1] - cy),
            cy + s * (corners[:, 0] - cx) + c * (corners[:, 1] - cy),
        ],
        1,
    )
    to = np.array([[0, 0], [details.cols - 1, 0], [details.cols - 1, details.rows - 1]], float)
    from facerec.align.five_point import similarity

    return similarity(rotated, to)


def iou(a, b) -> float:
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, x2 - x1) * max(0, y2 - y1)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw-dir", default=str(Path(__file__).resolve().parents[2] / "shared/data/lfw_home/lfw_funneled"))
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    import cv2
    from PIL import Image

    from facerec.align.croppers import MarginCropper
    from facerec.align.five_point import similarity
    from facerec.detect.registry import create_detector
    from facerec.image_batch import ImageBatch
    from facerec.runtime.dlib_models import SHAPE_5, dlib_model_path, import_dlib

    dlib = import_dlib()
    predictor = dlib.shape_predictor(str(dlib_model_path(SHAPE_5)))
    hog = dlib.get_frontal_face_detector()
    yunet, mtcnn = create_detector("yunet"), create_detector("mtcnn")
    margin = MarginCropper(160, 32.0)
    paths = sorted(Path(args.lfw_dir).glob("*/*.jpg"))
    step = max(1, len(paths) // args.images)
    paths = paths[::step][: args.images]
    in_chip, in_crop, chip_err = [], [], []
    for s in range(0, len(paths), 64):
        imgs = [np.asarray(Image.open(p).convert("RGB")) for p in paths[s : s + 64]]
        batch = ImageBatch(imgs, "cpu")
        ys, ms = yunet.detect(batch), mtcnn.detect(batch)
        for img, y, m in zip(imgs, ys, ms):
            if len(y) != 1 or len(m) != 1 or iou(y[0].box, m[0].box) < 0.5:
                continue
            pts = np.c_[y[0].landmarks, np.ones(5)]
            rects = hog(img, 1)
            if (
                len(rects) == 1
                and iou(y[0].box, (rects[0].left(), rects[0].top(), rects[0].right(), rects[0].bottom())) >= 0.3
            ):
                shape = predictor(img, rects[0])
                details = dlib.get_face_chip_details(shape, size=150, padding=0.25)
                t = chip_transform(details)
                in_chip.append(pts @ t.T)
                if len(chip_err) < 50:  # our warp with dlib's transform = dlib's chip?
                    mine = cv2.warpAffine(img, t, (150, 150), flags=cv2.INTER_LINEAR)
                    theirs = np.asarray(dlib.get_face_chip(img, shape, size=150, padding=0.25))
                    chip_err.append(float(np.abs(mine.astype(float) - theirs).mean()))
            l, t_, r, b = (
                float(v)
                for v in margin.regions(
                    __import__("torch").tensor([m[0].box], dtype=__import__("torch").float32),
                    img.shape[1],
                    img.shape[0],
                )
            )
            sx, sy = 160 / (r - l), 160 / (b - t_)
            in_crop.append(np.stack([(y[0].landmarks[:, 0] - l) * sx, (y[0].landmarks[:, 1] - t_) * sy], 1))
    out = {}
    for name, size, pts in (("dlib-chip", 150, in_chip), ("margin", 160, in_crop)):
        pts = np.array(pts)
        out[name] = {
            "size": size,
            "faces": len(pts),
            "mean": pts.mean(0).round(2).tolist(),
            "std": pts.std(0).round(2).tolist(),
        }
        print(f"{name} ({size} px, {len(pts)} faces): mean {out[name]['mean']}, std {out[name]['std']}")
    out["dlib_chip_warp_mae"] = float(np.mean(chip_err)) if chip_err else None
    print(
        f"our warp with dlib's chip transform vs dlib's chip: mean abs difference {out['dlib_chip_warp_mae']:.2f} grey levels"
    )
    write_json(args.json, out)
    _ = similarity
    return 0


if __name__ == "__main__":
    sys.exit(main())
