"""Write constraints.txt: the exact version of every package `pip install -e '.[all,test,docs]'` installs,
read from this environment, so that any install (core, one extra, all) can be reproduced with
``pip install -c constraints.txt ...``.

pyproject.toml stays the one list of what facerec needs (with ranges and reasons); this file is
derived from it: the packages are the closure of pyproject's dependencies with every extra, the
versions those installed here. Run after changing pyproject.toml, in an environment set up from it
(``make setup``):  make constraints
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

import tomllib
from packaging.markers import default_environment
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
HEADER = """\
# Exact versions of everything facerec with every extra (all, test, docs) installs, derived from pyproject.toml (the one
# dependency list) by `make constraints` (scripts/constraints.py) in an environment set up from it.
# Reproducible installs:  pip install -c constraints.txt .   (or '.[serve]', '.[all,test]', ...)
"""


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(requirements: list[Requirement]) -> dict[str, str]:
    """name -> installed version of every distribution these requirements pull in, extras followed."""
    env = default_environment()
    seen: dict[str, str] = {}
    todo = [(r, frozenset(r.extras)) for r in requirements]
    done: set[tuple[str, frozenset]] = set()
    while todo:
        req, extras = todo.pop()
        if req.marker is not None and not req.marker.evaluate({**env, "extra": ""}):
            continue  # another platform's or Python's requirement (the parent's extras were applied below)
        key = (canonical(req.name), extras)
        if key in done:
            continue
        done.add(key)
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            sys.exit(f"{req.name} is required but not installed here: run make setup first")
        seen[canonical(req.name)] = dist.version
        for sub in dist.requires or []:
            child = Requirement(sub)
            if child.marker is None or any(child.marker.evaluate({**env, "extra": e}) for e in (extras or {""})):
                child.marker = None  # applies here: decided with the parent's extras
                todo.append((child, frozenset(child.extras)))
    return seen


def main() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        reqs += [Requirement(r) for r in extra if not r.startswith(f"{project['name']}[")]
    pins = closure(reqs)
    for name in (project["name"], "pip", "setuptools", "wheel"):  # the installer's own tools stay the user's
        pins.pop(canonical(name), None)
    lines = [f"{name}=={version}" for name, version in sorted(pins.items())]
    (ROOT / "constraints.txt").write_text(HEADER + "\n".join(lines) + "\n")
    print(f"constraints.txt: {len(lines)} packages")


if __name__ == "__main__":
    main()
