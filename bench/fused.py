"""LFW View 2 for two embedders and the fused pair, with the pair's weight chosen on training folds.

Each part embeds the 7,701 pair images through the one pipeline (its content cache under
``--art_dir``, which ``facerec evaluate pairs`` shares: a part measured there costs nothing here).
The fused vector is exactly what the ``A+B`` embedder computes (:class:`facerec.embed.fused.FusedEmbedder`:
sqrt(w) a, sqrt(1 - w) b), so its squared distance is w d_a^2 + (1 - w) d_b^2. For each of the ten
folds the weight and the threshold are both chosen on the nine other folds (the weight maximising
their accuracy, ties to the middle), then the fold is scored: nothing is tuned on the pairs it is
tested on. The weight to ship is the median of the ten choices (printed; it goes into
:data:`facerec.embed.fused.FUSED_WEIGHTS`).

    python bench/fused.py --parts facenet-casia,dlib --align yunet --alignment five-point --flip \
        --json bench/reported/fused_casia_dlib_yunet.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from common import machine, print_table, write_json  # noqa: E402

# the first part's weight: fine steps near 0 as well, since the parts' distances need not share a
# scale (CASIA FaceNet's genuine/impostor boundary sits near d = 1.13, dlib's near 0.43: d^2 differs
# ~7x, so a few percent of weight on FaceNet already balances them)
WEIGHTS = np.round(np.concatenate([np.arange(0.0025, 0.05, 0.0025), np.arange(0.05, 0.951, 0.025)]), 4)


def fused_folds(da2, db2, same, folds) -> dict:
    """10-fold accuracy of d^2 = w da2 + (1 - w) db2, w and the threshold chosen on the training folds."""
    from facerec.evaluate.pairs import best_threshold

    accs, chosen = [], []
    for f in np.unique(folds):
        train, test = folds != f, folds == f
        best = None
        for w in WEIGHTS:
            d = np.sqrt(w * da2 + (1 - w) * db2)
            t = best_threshold(d[train], same[train])
            acc = np.mean((d[train] <= t) == same[train])
            key = (acc, -abs(w - 0.5))
            if best is None or key > best[0]:
                best = (key, w, t)
        _, w, t = best
        d = np.sqrt(w * da2 + (1 - w) * db2)
        accs.append(float(np.mean((d[test] <= t) == same[test])))
        chosen.append(float(w))
    return {
        "accuracy_mean": float(np.mean(accs)),
        "accuracy_std": float(np.std(accs)),
        "fold_accuracy": accs,
        "fold_weight": chosen,
        "weight": float(np.median(chosen)),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="facenet-casia,dlib")
    ap.add_argument("--detector", "--align", default="yunet")
    ap.add_argument("--alignment", default="five-point", choices=("box", "five-point"))
    ap.add_argument(
        "--part-detector",
        "--part-align",
        default=None,
        help="per part detectors, comma separated (default: --detector)",
    )
    ap.add_argument("--part-alignment", default=None, help="per part alignments, comma separated")
    ap.add_argument("--flip", action="store_true")
    ap.add_argument("--lfw-dir", default=str(Path(__file__).resolve().parents[2] / "shared/data/lfw_home/lfw_funneled"))
    ap.add_argument("--art_dir", default="artifacts")
    ap.add_argument("--folds", type=int, default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    from facerec.embed.fused import FusedEmbedder  # noqa: F401 (the formula below is its combine())
    from facerec.evaluate.common import embed_paths
    from facerec.evaluate.pairs import evaluate_pairs, read_pairs
    from facerec.pipeline import Pipeline

    lfw = Path(args.lfw_dir)
    pairs = read_pairs(lfw.parent / "pairs.txt", lfw)
    if args.folds:
        pairs = [p for p in pairs if p.fold < args.folds]
    paths = sorted({p.a for p in pairs} | {p.b for p in pairs})
    names = args.parts.split(",")
    aligns = (args.part_detector or ",".join([args.detector] * len(names))).split(",")
    alignments = (args.part_alignment or ",".join([args.alignment] * len(names))).split(",")
    rows, emb, seconds = [], {}, {}
    for name, align, alignment in zip(names, aligns, alignments):
        pipe = Pipeline.create(
            embedder=name, detector=align, alignment=alignment, flip=args.flip, device="cpu", cache_dir=args.art_dir
        )
        t = time.perf_counter()
        e = embed_paths(pipe, paths, quiet=False)
        seconds[name] = time.perf_counter() - t
        emb[name] = dict(zip(paths, e.embeddings))
        for sub in (False, True):
            r = evaluate_pairs(pairs, emb[name], subtract_mean=sub)
            rows.append(
                {
                    "embedder": name,
                    "detector": align,
                    "alignment": alignment,
                    "mean_sub": sub,
                    "accuracy": round(100 * r["accuracy_mean"], 2),
                    "std": round(100 * r["accuracy_std"], 2),
                    "auc": round(r["auc"], 5),
                    "tar_far_1e-3": round(100 * r["tar_at_far"]["0.001"], 2),
                    "no_face": int(e.fallback.sum()),
                    "weight": None,
                }
            )
    same = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])

    def d2(name):
        a = np.stack([emb[name][p.a] for p in pairs])
        b = np.stack([emb[name][p.b] for p in pairs])
        return np.maximum(2 - 2 * np.sum(a * b, 1), 0)

    fused = fused_folds(d2(names[0]), d2(names[1]), same, folds)
    rows.append(
        {
            "embedder": "+".join(names),
            "detector": ",".join(aligns),
            "alignment": ",".join(alignments),
            "mean_sub": False,
            "accuracy": round(100 * fused["accuracy_mean"], 2),
            "std": round(100 * fused["accuracy_std"], 2),
            "auc": None,
            "tar_far_1e-3": None,
            "no_face": None,
            "weight": fused["weight"],
        }
    )
    cols = [
        "embedder",
        "detector",
        "alignment",
        "mean_sub",
        "accuracy",
        "std",
        "auc",
        "tar_far_1e-3",
        "no_face",
        "weight",
    ]
    print_table(rows, cols)
    print(f"fused: weight of {names[0]} per fold {fused['fold_weight']} -> ship {fused['weight']}")
    write_json(
        args.json,
        {
            "machine": machine(),
            "command": "python bench/fused.py " + " ".join(argv or sys.argv[1:]),
            "images": len(paths),
            "pairs": len(pairs),
            "flip": args.flip,
            "rows": rows,
            "fused": fused,
            "embed_seconds": seconds,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
