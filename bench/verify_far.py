"""Does verify keep its promise? Its threshold at a stated false-accept rate (the reference
calibration, measured on LFW View 1's development people) applied to LFW View 2's 3,000 matched
and 3,000 mismatched pairs, which it never saw: FAR measured beside the FAR promised, and TAR.

python bench/verify_far.py --embeddings /tmp/ref/casia_mtcnn.npz --json bench/reported/verify_casia_mtcnn.json
    (embeddings of every LFW image from ``python bench/reference.py embed``)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, print_table, write_json  # noqa: E402


def main() -> int:
    from facerec.evaluate.pairs import read_pairs
    from facerec.gallery.calibration import verification_threshold
    from facerec.pipeline.config import DEFAULT_VERIFY_FAR, PipelineConfig
    from reference import lfw_dir, load

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--embeddings", required=True, help="bench/reference.py embed's file(s)")
    ap.add_argument("--data", default=None, help="LFW's lfw_funneled folder (default: scikit-learn's)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    pipeline, precision, emb, _, _, command, files = load(args.embeddings)
    index = {Path(p).name: i for i, p in enumerate(files)}
    root = Path(args.data or lfw_dir())
    pairs = read_pairs(root.parent / "pairs.txt", root)
    a = np.array([index[Path(p.a).name] for p in pairs])
    b = np.array([index[Path(p.b).name] for p in pairs])
    d = np.linalg.norm(emb[a] - emb[b], axis=1)
    same = np.array([p.same for p in pairs])
    config = PipelineConfig.from_dict(pipeline)
    rows = []
    for far in (1e-2, DEFAULT_VERIFY_FAR, 1e-4):
        cal = verification_threshold(config, far=far)
        accepted = d[~same] <= cal.threshold
        rows.append(
            {
                "far_promised": far,
                "threshold": round(cal.threshold, 4),
                "far_measured": float(accepted.mean()),
                "accepted_of_mismatched": f"{int(accepted.sum())}/{int((~same).sum())}",
                "tar": float(np.mean(d[same] <= cal.threshold)),
                "tar_reference": None if cal.tar is None else round(cal.tar, 4),
                "default": far == DEFAULT_VERIFY_FAR,
            }
        )
    print(f"verify on LFW View 2 ({len(pairs)} pairs), {config.embedder}/{config.detector}/{config.alignment}:")
    print_table(rows, ["far_promised", "threshold", "far_measured", "accepted_of_mismatched", "tar", "tar_reference"])
    write_json(
        args.json,
        {
            "pipeline": pipeline,
            "precision": precision,
            "pairs": len(pairs),
            "rows": rows,
            "embedded_by": command,
            "command": " ".join(["python", "bench/verify_far.py", *sys.argv[1:]]),
            "machine": machine(),
            "note": "thresholds from the reference calibration (LFW View 1 development training people); "
            "View 2's people overlap View 1's, but none of its pairs chose a threshold",
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
