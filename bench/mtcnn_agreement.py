"""Does the batched MTCNN find the same faces as facenet-pytorch's? (same subject, box IoU >= 0.9)

python bench/mtcnn_agreement.py --device cpu --limit 500 --json bench/results/mtcnn_agreement.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from facerec.detect import box_iou  # noqa: E402
from pipeline import lfw_paths, sync  # noqa: E402

from common import machine, print_table, write_json  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--limit", type=int, default=500, help="every k-th LFW image so that N are used (0 = all)")
    ap.add_argument("--lfw-dir", default=None)
    ap.add_argument("--ref-batch", type=int, default=1, help="facenet-pytorch batch (1 = one image at a time)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    from facerec.detect.mtcnn_net import BatchedMTCNN
    from facerec.detect.scale import MTCNNDetector
    from facerec.images import load_image

    paths = lfw_paths(args.lfw_dir, 0)
    if args.limit and args.limit < len(paths):
        paths = paths[:: len(paths) // args.limit][: args.limit]
    images = [load_image(p) for p in paths]
    ref, fast = (
        MTCNNDetector(device=args.device, batch_size=args.ref_batch),
        BatchedMTCNN(device=args.device, batch_size=256),
    )
    fast.detect(images[:8])
    t = time.perf_counter()
    want = ref.detect(images)
    sync(args.device)
    t_ref = time.perf_counter() - t
    t = time.perf_counter()
    got = fast.detect(images)
    sync(args.device)
    t_fast = time.perf_counter() - t
    same, worst = 0, []
    for p, w, g in zip(paths, want, got):
        if not w:
            same += not g
            continue
        best = max((box_iou(w[0].box, d.box) for d in g), default=0.0)
        same += best >= 0.9
        worst.append((best, p))
    worst.sort()
    row = {
        "images": len(paths),
        "same_face_iou_0.9": same / len(paths),
        "faces_ref": sum(map(len, want)),
        "faces_batched": sum(map(len, got)),
        "ref_img_s": len(paths) / t_ref,
        "batched_img_s": len(paths) / t_fast,
    }
    print_table([row], list(row))
    print("lowest IoU:", [(round(b, 3), Path(p).name) for b, p in worst[:5]])
    write_json(
        args.json,
        {"device": args.device, "machine": machine(), **row, "lowest": [(b, Path(p).name) for b, p in worst[:20]]},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
