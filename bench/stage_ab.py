"""A/B of the two CPU pipeline stages, this tree's code against a git ref's, interleaved in one
process on the same LFW images (a noisy machine slows both sides alike).

Detection + alignment: ``BatchedMTCNN.detect_tensor`` then ``crop`` on stacked batches of decoded
images; embedding: ``FaceNetEmbedder.embed_tensor`` on the faces found, in batches. Each round
times A then B then B then A (per stage), so drift in the machine's load cancels; medians are
reported. Results are checked too: the same detections, embeddings at cosine >= 0.9999.

    PYTHONPATH=src python bench/stage_ab.py --ref HEAD --limit 192 --json bench/results/stage_ab.json
"""

from __future__ import annotations

import argparse
import importlib
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from pipeline import lfw_paths  # noqa: E402

from common import machine, print_table, write_json  # noqa: E402


def reference_package(ref: str, into: Path):
    """``src/facerec`` at git ``ref``, importable as ``facerec_ref``: its own absolute imports
    (``facerec.x``) are renamed so the copy never reaches into this tree."""
    data = subprocess.run(["git", "archive", ref, "src/facerec"], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    (into / "src" / "facerec").rename(into / "facerec_ref")
    for py in (into / "facerec_ref").rglob("*.py"):
        py.write_text(re.sub(r"\bfacerec(?=[.\s])", "facerec_ref", py.read_text()))
    sys.path.insert(0, str(into))
    importlib.import_module("facerec_ref")
    return into / "facerec_ref"


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def ab(name: str, a, b, n: int, rounds: int) -> dict:
    """a and b timed ABBA ``rounds`` times: medians in items/s."""
    ta, tb = [], []
    for _ in range(rounds):
        ta.append(timed(a))
        tb.append(timed(b))
        tb.append(timed(b))
        ta.append(timed(a))
    ra, rb = n / statistics.median(ta), n / statistics.median(tb)
    best = (n / min(ta), n / min(tb))  # the least disturbed run of each
    return {
        "stage": name,
        "ref_img_s": ra,
        "new_img_s": rb,
        "speedup": rb / ra,
        "ref_best_img_s": best[0],
        "new_best_img_s": best[1],
        "best_speedup": best[1] / best[0],
        "ref_s": ta,
        "new_s": tb,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref", default="HEAD", help="git ref of the code to compare against")
    ap.add_argument("--limit", type=int, default=192, help="first N LFW images")
    ap.add_argument("--lfw-dir", default=None)
    ap.add_argument("--batch", type=int, default=64, help="detection and embedding batch")
    ap.add_argument("--rounds", type=int, default=3, help="ABBA rounds per stage")
    ap.add_argument("--embedder", default="facenet-casia")
    ap.add_argument("--stages", default="detect,embed")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    import numpy as np
    import torch
    from PIL import Image

    from facerec.detect import mtcnn_net as new_mtcnn
    from facerec.embed import create_embedder

    tmp = tempfile.TemporaryDirectory()
    ref = reference_package(args.ref, Path(tmp.name))
    # the batched MTCNN lived in align/ before the cut by stage (0.3), in detect/ since
    old_home = "facerec_ref.align.mtcnn_batched" if (ref / "align" / "mtcnn_batched.py").exists() else None
    ref_mtcnn = importlib.import_module(old_home or "facerec_ref.detect.mtcnn_net")
    ref_embed = importlib.import_module("facerec_ref.embed")

    paths = lfw_paths(args.lfw_dir, args.limit)
    imgs = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    det_a, det_b = ref_mtcnn.BatchedMTCNN(device="cpu"), new_mtcnn.BatchedMTCNN(device="cpu")
    batches = [det_b.to_tensor(np.stack(imgs[s : s + args.batch])) for s in range(0, len(imgs), args.batch)]
    print(
        f"{len(imgs)} LFW images, batch {args.batch}, {torch.get_num_threads()} threads, ref {args.ref} "
        f"({ref.__name__}), {machine()['cpu']}",
        flush=True,
    )

    def detect(det):
        out = []
        for b in batches:
            boxes, scores, points, owner = det.detect_tensor(b)
            out.append((boxes, scores, points, owner, det.crop(b, boxes, owner, 160, 32)))
        return out

    rows, checks = [], {}
    want, got = detect(det_a), detect(det_b)  # warm-up, and the results compared
    same = all(
        len(w[3]) == len(g[3]) and torch.equal(w[3], g[3]) and all(torch.equal(x, y) for x, y in zip(w[:3], g[:3]))
        for w, g in zip(want, got)
    )
    same_faces = all(len(w[3]) == len(g[3]) and torch.equal(w[3], g[3]) for w, g in zip(want, got))
    checks["detections_identical"] = bool(same)  # bit for bit
    checks["faces"] = [int(sum(len(w[3]) for w in want)), int(sum(len(g[3]) for g in got))]
    if same_faces:  # the same faces in the same images: how far float rounding moved them
        checks["box_max_abs_diff_px"] = max((w[0] - g[0]).abs().max().item() for w, g in zip(want, got) if len(w[0]))
        checks["score_max_abs_diff"] = max((w[1] - g[1]).abs().max().item() for w, g in zip(want, got) if len(w[0]))
    checks["same_faces"] = bool(same_faces and checks["box_max_abs_diff_px"] < 0.01)
    if "detect" in args.stages:
        rows.append(ab("detect_align", lambda: detect(det_a), lambda: detect(det_b), len(imgs), args.rounds))

    if "embed" in args.stages:
        crops = torch.cat([g[4] for g in got])
        emb_a = ref_embed.create_embedder(args.embedder, device="cpu")
        emb_b = create_embedder(args.embedder, device="cpu")
        chunks = [crops[s : s + args.batch] for s in range(0, len(crops), args.batch)]

        def embed(e):
            return torch.cat([e.embed_tensor(c) for c in chunks])

        va, vb = embed(emb_a), embed(emb_b)
        checks["embedding_min_cosine"] = float((va * vb).sum(1).min())
        rows.append(ab("embed", lambda: embed(emb_a), lambda: embed(emb_b), len(crops), args.rounds))

    print()
    print_table(
        rows, ["stage", "ref_img_s", "new_img_s", "speedup", "ref_best_img_s", "new_best_img_s", "best_speedup"]
    )
    if len(rows) == 2:  # the pipeline on a CPU: the two stages share the cores, so times add
        per = [sum(1 / r[k] for r in rows) for k in ("ref_img_s", "new_img_s")]
        print(f"both stages, times added: {1 / per[0]:.1f} -> {1 / per[1]:.1f} img/s ({per[0] / per[1]:.3f}x)")
    for k, v in checks.items():
        print(f"{k}: {v}")
    write_json(
        args.json,
        {
            "machine": machine(),
            "ref": args.ref,
            "images": len(imgs),
            "batch": args.batch,
            "rows": rows,
            "checks": checks,
        },
    )
    tmp.cleanup()
    return 0 if checks["same_faces"] and checks.get("embedding_min_cosine", 1.0) >= 0.9999 else 1


if __name__ == "__main__":
    sys.exit(main())
