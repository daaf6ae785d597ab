"""The core install (#32): with no optional part importable (torch, dlib, the service, video,
Milvus, Ray), the library and the commands a new user starts with work on real LFW photos.

Each check runs in its own process with every optional module made unimportable
(tests/without/sitecustomize.py); in a core virtualenv (scripts/core_check.sh) they are simply
absent. scripts/core_check.sh runs this file there, with the seed's demo.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from facerec.extras import MODULE_EXTRAS

ROOT = Path(__file__).resolve().parents[2]
LFW = ROOT.parent / "shared" / "data" / "lfw_home" / "lfw_funneled"

pytestmark = [
    pytest.mark.core,
    pytest.mark.skipif(not LFW.is_dir(), reason=f"needs LFW at {LFW}"),
]


def core_env(home: Path) -> dict:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "without"), os.environ.get("PYTHONPATH", "")]),
        "FACEREC_WITHOUT": ",".join(sorted(MODULE_EXTRAS)),
        "FACEREC_HOME": os.environ.get("FACEREC_HOME", str(home)),
    }


def run_core(args: list[str], home: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, env=core_env(home), timeout=timeout)


def facerec_cli() -> list[str]:
    return [sys.executable, "-m", "facerec"]


def test_no_optional_module_is_importable_in_the_core_process(tmp_path):
    probe = "import sys; from facerec.extras import has; print([m for m in sys.argv[1:] if has(m)])"
    done = run_core([sys.executable, "-c", probe, *MODULE_EXTRAS], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_verify_answers_same_and_different_people(tmp_path):
    a, b = sorted((LFW / "Colin_Powell").glob("*.jpg"))[:2]
    other = sorted((LFW / "Serena_Williams").glob("*.jpg"))[0]
    code = (
        "import sys, facerec; "
        "same = facerec.verify(sys.argv[1], sys.argv[2], embedder='facenet-casia', detector='mtcnn'); "
        "diff = facerec.verify(sys.argv[1], sys.argv[3], embedder='facenet-casia', detector='mtcnn'); "
        "print(same.same, diff.same, round(same.distance, 3), round(diff.distance, 3)); "
        "import torch"  # must fail: the core has no torch
    )
    done = run_core([sys.executable, "-c", code, str(a), str(b), str(other)], tmp_path)
    assert done.stdout.split()[:2] == ["True", "False"], (done.stdout, done.stderr)
    assert "No module named 'torch'" in done.stderr


def test_cluster_300_lfw_photos_finds_the_people(tmp_path):
    """300 photos of 6 people (50 each): clustering on MTCNN + CASIA FaceNet groups them."""
    people = ["Colin_Powell", "Tony_Blair", "Donald_Rumsfeld", "Gerhard_Schroeder", "Ariel_Sharon", "Hugo_Chavez"]
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in people:
        for path in sorted((LFW / name).glob("*.jpg"))[:50]:
            (photos / path.name).symlink_to(path)
    assert len(list(photos.iterdir())) == 300
    out = tmp_path / "people"
    args = ["cluster", str(photos), "--out", str(out), "--detector", "mtcnn", "--embedder", "facenet-casia", "--quiet"]
    done = run_core([*facerec_cli(), *args], tmp_path, timeout=900)
    assert done.returncode == 0, (done.stdout, done.stderr)
    clusters = json.loads((out / "clusters.json").read_text())
    groups = [faces for faces in clusters["clusters"].values() if len(faces) >= 10]
    # each big group is mostly one person: the photos are named Person_Name_0001.jpg
    owners = []
    for faces in groups:
        names = [Path(f["file"]).name.rsplit("_", 1)[0] for f in faces]
        top = max(set(names), key=names.count)
        assert names.count(top) / len(names) >= 0.9, (top, len(names))
        owners.append(top)
    assert len(set(owners)) >= 5, owners
