"""What each extra adds to the core install, on disk: the installed files of every package the
extra brings that the core does not, read from an environment where everything is installed
(``make setup``). The core itself is measured as a fresh virtualenv would hold it (its packages,
plus pip and setuptools, which every virtualenv has).

    python bench/install_sizes.py --json bench/reported/install_sizes.json
"""

from __future__ import annotations

import argparse
import sys
from importlib import metadata
from pathlib import Path

import tomllib
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "scripts"))

from constraints import canonical, closure  # noqa: E402

from common import machine, print_table, write_json  # noqa: E402


def size_of(dist_name: str) -> int:
    total = 0
    for f in metadata.distribution(dist_name).files or []:
        try:
            total += f.locate().stat().st_size
        except OSError:
            pass
    return total


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = set(closure([Requirement(r) for r in project["dependencies"]])) | {"pip", "setuptools"}
    rows = [
        {
            "install": "core (pip install .)",
            "packages": len(core),
            "MB": sum(size_of(d) for d in core) / 1e6,
            "largest": ", ".join(sorted(core, key=size_of, reverse=True)[:3]),
        }
    ]
    for extra, reqs in project["optional-dependencies"].items():
        wanted = [Requirement(r) for r in reqs]
        if any(r.name == project["name"] for r in wanted):  # all = every other extra
            wanted = [
                Requirement(r)
                for e, rs in project["optional-dependencies"].items()
                if e not in ("all", "test", "docs")
                for r in rs
            ]
        added = set(closure(wanted)) - core - {canonical(project["name"])}
        rows.append(
            {
                "install": f"+ [{extra}]",
                "packages": len(added),
                "MB": sum(size_of(d) for d in added) / 1e6,
                "largest": ", ".join(sorted(added, key=size_of, reverse=True)[:3]),
            }
        )
    print_table(rows, list(rows[0]))
    write_json(
        args.json,
        {
            "command": "python bench/install_sizes.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "machine": machine(),
            "rows": rows,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
