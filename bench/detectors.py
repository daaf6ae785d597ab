"""Detection alone, YuNet against the batched MTCNN, on the same decoded LFW images in one run:
images/s of each (warm, images already decoded, as the pipeline hands them over), and how often
their subject boxes agree (IoU >= 0.5 between each detector's most prominent face). ``yunet`` runs
in batches on ONNX Runtime, ``yunet-opencv`` one image at a time through ``cv2.FaceDetectorYN``.

    python bench/detectors.py --limit 0 --json bench/reported/detectors_cpu_all.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from facerec.detect import box_iou  # noqa: E402
from pipeline import image_batches, lfw_paths, timed  # noqa: E402

from common import machine, print_table, write_json  # noqa: E402


def subjects(detector, batches) -> tuple[float, list]:
    """(images/s, each image's most prominent box or None)."""
    from facerec.detect import by_prominence

    found = []

    def run():
        for b in batches:
            found.extend(b_faces for b_faces in detector.detect(b))

    images = sum(len(b) for b in batches)
    detector.detect(batches[0].subset([0]))  # warm-up: first calls allocate and plan
    rate = images / timed(run, batches[0].device)
    boxes = []
    shapes = [img.shape for b in batches for img in b.host]
    for faces, shape in zip(found, shapes):
        best = by_prominence(faces, shape[1], shape[0])
        boxes.append(best[0].box if best else None)
    return rate, boxes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=2000, help="first N LFW images (0 = all 13,233)")
    ap.add_argument("--lfw-dir", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=64, help="images handed to each detector at once")
    ap.add_argument("--detectors", default="mtcnn,yunet-opencv,yunet", help="the first is the baseline")
    ap.add_argument("--weights-dir", default=None, help="a folder holding YuNet's model file")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    from facerec.detect import create_detector
    from facerec.images import load_image

    paths = lfw_paths(args.lfw_dir, args.limit)
    imgs = [load_image(p) for p in paths]
    batches = image_batches(imgs, args.batch_size, args.device)
    names = args.detectors.split(",")
    base, last = names[0], names[-1]
    dets = {
        n: create_detector(n, device=args.device, batch_size=args.batch_size, weights_dir=args.weights_dir)
        for n in names
    }
    rates, boxes = {}, {}
    for name, det in dets.items():
        rates[name], boxes[name] = subjects(det, batches)
        print(f"{name}: {rates[name]:.1f} img/s", flush=True)
    both = [(a, b) for a, b in zip(boxes[base], boxes[last]) if a is not None and b is not None]
    ious = np.array([box_iou(a, b) for a, b in both])
    rows = [
        {
            "detector": name,
            "img_s": rates[name],
            f"x_{base}": rates[name] / rates[base],
            "no_face": sum(b is None for b in boxes[name]),
        }
        for name in rates
    ]
    print_table(rows, ["detector", "img_s", f"x_{base}", "no_face"])
    agree = float(np.mean(ious >= 0.5)) if len(ious) else 0.0
    print(
        f"\n{len(paths)} LFW images; {base} and {last}: subject boxes agree (IoU >= 0.5) on {agree:.2%} of the "
        f"{len(both)} where both found a face; median IoU {np.median(ious):.3f}; "
        f"{last} {rates[last] / rates[base]:.2f}x {base}"
    )
    write_json(
        args.json,
        {
            "machine": machine(),
            "images": len(paths),
            "device": args.device,
            "mtcnn_batch": args.batch_size,
            "rows": rows,
            "agreement_iou_0_5": agree,
            "both_found": len(both),
            "median_iou": float(np.median(ious)) if len(ious) else None,
            "compared": [base, last],
            "ids": {n: d.id for n, d in dets.items()},
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
