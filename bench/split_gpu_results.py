"""File a device run's gpu_check.json (every step's JSON under its file name) as separate JSON
files, e.g. into bench/reported/ (the card is named in each bench JSON's "machine" and in the log).

    python bench/split_gpu_results.py RUN_DIR/gpu_check.json bench/reported --suffix _h200
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", help="gpu_check.json from bench/gpu_check.sh")
    ap.add_argument("out_dir")
    ap.add_argument("--suffix", default="", help="added to each file's stem (e.g. _h200)")
    args = ap.parse_args(argv)
    parts = json.loads(Path(args.results).read_text())
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, data in parts.items():
        path = out / f"{Path(name).stem}{args.suffix}.json"
        path.write_text(json.dumps(data, indent=1) + "\n")
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
