"""Seed-compatible entry point: ``python src/infer.py --input <image or folder> --model ... --art_dir
artifacts --align mtcnn --topk 5`` behaves exactly as ``facerec infer`` with the same flags."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run from a checkout without installing

from facerec.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["infer", *sys.argv[1:]]))
