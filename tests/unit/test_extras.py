"""The optional parts: facerec.extras' table agrees with pyproject.toml and constraints.txt, and every
optional command run without its extra exits 2 with a message naming the extra to install.

Each command runs in its own process with the extra's packages made unimportable
(tests/without/sitecustomize.py), so this holds in the full test environment as in a core install.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement

from facerec.extras import MODULE_EXTRAS, MissingExtra, missing_extra, require

from conftest import person_image, png

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
VIDEO = ROOT.parent / "shared" / "data" / "video" / "video.mp4"

pytestmark = pytest.mark.core  # also run in the core install (scripts/core_check.sh)


def canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def test_every_module_names_an_extra_that_exists():
    extras = set(PROJECT["optional-dependencies"])
    assert {extra for extra, _ in MODULE_EXTRAS.values()} <= extras


def test_every_package_of_an_extra_has_its_modules_in_the_table():
    """A package added to an extra in pyproject.toml without a line in facerec.extras would show
    users an import traceback instead of the extra's name."""
    if not top_level_modules("fastapi"):
        pytest.skip("the extras are not installed here (the core install): nothing to compare")
    for extra, requirements in PROJECT["optional-dependencies"].items():
        if extra in ("test", "all", "docs"):  # build and test tools: no part of facerec imports them
            continue
        for text in requirements:
            dist = Requirement(text).name
            modules = top_level_modules(dist)
            assert modules, f"{dist} (extra {extra}) is not installed here"
            known = [m for m in modules if m in MODULE_EXTRAS]
            assert known, f"{dist} (extra {extra}): none of its modules {modules} is in facerec.extras.MODULE_EXTRAS"
            assert all(MODULE_EXTRAS[m][0] == extra for m in known), (dist, extra, known)


def top_level_modules(dist: str) -> set[str]:
    """The importable top-level modules a distribution installs, read from its file list (some
    wheels' top_level.txt leaves the package out: dlib-bin names only its extension)."""
    try:
        files = metadata.distribution(dist).files or []
    except metadata.PackageNotFoundError:
        return set()
    names = set()
    for f in files:
        first = f.parts[0]
        if first.endswith((".dist-info", ".data")) or first in ("..", "__pycache__", "bin"):
            continue
        name = first.split(".")[0]
        if name.isidentifier() and not name.startswith("_"):
            names.add(name)
    return names


def test_constraints_pin_every_requirement_within_its_range():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonical(name)] = version
    requirements = list(PROJECT["dependencies"])
    for extra in PROJECT["optional-dependencies"].values():
        requirements += [r for r in extra if not r.startswith("facerec[")]
    for text in requirements:
        req = Requirement(text)
        assert canonical(req.name) in pins, f"{req.name} is in pyproject.toml but not in constraints.txt"
        assert req.specifier.contains(pins[canonical(req.name)], prereleases=True), (text, pins[canonical(req.name)])


def test_missing_extra_names_the_extra_and_leaves_other_import_errors_alone():
    err = missing_extra(ModuleNotFoundError("No module named 'fastapi'", name="fastapi"))
    assert isinstance(err, MissingExtra) and err.extra == "serve"
    assert "pip install 'facerec[serve]'" in str(err)
    assert missing_extra(ModuleNotFoundError("No module named 'numpyy'", name="numpyy")) is None
    assert require("json").dumps(1) == "1"


def run_without(modules: list[str], *argv: str, cwd: Path) -> subprocess.CompletedProcess:
    """``facerec ARGV`` (with the fake detector and embedder) in a process where ``modules`` cannot be imported."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS / "without"), os.environ.get("PYTHONPATH", "")]),
        "FACEREC_WITHOUT": ",".join(modules),
        "FACEREC_HOME": str(cwd / "home"),
    }
    cmd = [sys.executable, str(TESTS / "fake_cli.py"), *argv]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


def packages_of(extra: str) -> list[str]:
    return sorted(m for m, (e, _) in MODULE_EXTRAS.items() if e == extra)


FAKE = ["--embedder", "fake", "--align", "resize"]

# (extra, the command without it); MODEL and DATA stand for the fake model and a synthetic .npz
COMMANDS = [
    ("serve", ["serve", "--model", "MODEL", "--port", "0"]),
    ("milvus", ["train", "--data", "DATA", *FAKE, "--store", "milvus:./gallery.db"]),
    ("ray", ["ingest", "PHOTOS", "--store", "milvus:./gallery.db", "--engine", "ray", *FAKE]),
    ("dlib", ["train", "--data", "DATA", "--embedder", "dlib", "--align", "resize"]),
    ("gpu", ["train", "--data", "DATA", *FAKE, "--device", "cuda"]),
    ("gpu", ["train", "--data", "DATA", "--embedder", "facenet-vggface2", "--align", "resize"]),
]
if VIDEO.is_file():
    COMMANDS.append(("video", ["infer", str(VIDEO), "--model", "MODEL"]))


@pytest.mark.parametrize(("extra", "argv"), COMMANDS, ids=[f"{e}-{a[0]}-{i}" for i, (e, a) in enumerate(COMMANDS)])
def test_an_optional_command_without_its_extra_exits_2_naming_it(extra, argv, fake_model, synthetic_npz, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.png").write_bytes(png(person_image(0, 0)))
    names = {"MODEL": str(fake_model), "DATA": str(synthetic_npz), "PHOTOS": str(photos)}
    argv = [names.get(a, a) for a in argv]
    before = sorted(p.name for p in tmp_path.iterdir())
    # the ray case also leaves Milvus out, so that it is the engine, not the store, that is named
    blocked = packages_of(extra) + (packages_of("milvus") if extra == "milvus" else [])
    done = run_without(blocked, *argv, cwd=tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert f"pip install 'facerec[{extra}]'" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.count("error:") == 1, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "home") == [b for b in before if b != "home"]
