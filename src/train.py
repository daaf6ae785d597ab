"""Seed-compatible entry point: ``python src/train.py --data ... --out_dir models --art_dir artifacts
--batch_size 64 --k 3 --align resize`` behaves exactly as ``facerec train`` with the same flags,
except that its embedder is the seed's, VGGFace2's FaceNet, unless ``--embedder`` says otherwise
(``facerec`` itself defaults to the offline CASIA FaceNet)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run from a checkout without installing

from facerec.cli import main  # noqa: E402
from facerec.pipeline.config import SEED_EMBEDDER  # noqa: E402

if __name__ == "__main__":
    args = sys.argv[1:]
    if not any(a == "--embedder" or a.startswith("--embedder=") for a in args):
        args += ["--embedder", SEED_EMBEDDER]
    sys.exit(main(["train", *args]))
