"""Seed-compatible entry point: ``python src/train.py --data ... --out_dir models --art_dir artifacts
--batch_size 64 --k 3 --align resize`` behaves exactly as ``facerec train`` with the same flags."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run from a checkout without installing

from facerec.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
