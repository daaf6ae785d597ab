"""Identification on real LFW with the real offline embedders, as the README's commands run it.

Gallery: the 62 people with >= 20 images; 5 held-out images of each (310) are the known probes;
images of people with fewer than 10 images are the strangers. MTCNN box crops for each embedder,
and dlib aligned by YuNet's five landmarks.

    facerec prepare-lfw --min-faces 20 --holdout-per-person 5 --out data/lfw20.npz --holdout-dir heldout
    facerec train --data data/lfw20.npz --embedder EMB --align mtcnn
    facerec infer --input heldout --model models/knn_EMB_lfw20.npz --align mtcnn --closed-set
    facerec train --data data/lfw20.npz --embedder dlib --align yunet --alignment five-point
"""

import json
import os

import numpy as np
import pytest

from facerec.cli import main

from conftest import LFW_DIR, LFW_HOME

pytestmark = pytest.mark.integration  # real weights too (slow: the folder, conftest.py)

CLOSED_SET_FLOOR = {"facenet-casia": 0.975, "dlib": 0.985}
EMBEDDERS = sorted(CLOSED_SET_FLOOR)
# (embedder, detector, alignment): each embedder with MTCNN's box crops, and dlib aligned by
# YuNet's five landmarks (the faster detector, no landmark model); the same floors hold for all
SETTINGS = [(e, "mtcnn", "box") for e in EMBEDDERS] + [("dlib", "yunet", "five-point")]


@pytest.fixture(scope="module")
def env(lfw_env):
    mp = pytest.MonkeyPatch()
    for key in ("SCIKIT_LEARN_DATA", "FACEREC_HOME"):
        mp.setenv(key, lfw_env[key])
    yield
    mp.undo()


@pytest.fixture(scope="module")
def lfw20(env, tmp_path_factory):
    work = tmp_path_factory.mktemp("lfw20")
    assert (
        main(
            [
                "prepare-lfw",
                "--min-faces",
                "20",
                "--holdout-per-person",
                "5",
                "--out",
                str(work / "lfw20.npz"),
                "--holdout-dir",
                str(work / "heldout"),
                "--seed",
                "0",
            ]
        )
        == 0
    )
    # Strangers: 200 images of people with fewer than 10 images, none of whom is enrolled.
    rare = sorted(d for d in LFW_DIR.iterdir() if len(os.listdir(d)) < 10)
    files = sorted(f for d in rare for f in d.iterdir())
    pick = np.random.default_rng(0).choice(len(files), 200, replace=False)
    strangers = work / "strangers"
    strangers.mkdir()
    for i in pick:
        (strangers / files[i].name).symlink_to(files[i])
    return work


@pytest.fixture(scope="module", params=SETTINGS, ids=lambda s: "-".join(s))
def model(request, lfw20):
    emb, align, alignment = request.param
    out = lfw20 / f"models-{align}-{alignment}"
    assert (
        main(
            [
                "train",
                "--data",
                str(lfw20 / "lfw20.npz"),
                "--embedder",
                emb,
                "--align",
                align,
                "--alignment",
                alignment,
                "--out_dir",
                str(out),
                "--art_dir",
                str(lfw20 / "art"),
                "--quiet",
            ]
        )
        == 0
    )
    return emb, align, out / f"knn_{emb}_lfw20.npz"


def _infer(capsys, lfw20, model, folder, *extra):
    _, align, model_path = model
    capsys.readouterr()
    code = main(
        [
            "infer",
            "--input",
            str(lfw20 / folder),
            "--model",
            str(model_path),
            "--align",
            align,
            "--art_dir",
            str(lfw20 / "art"),
            "--quiet",
            "--format",
            "json",
            *extra,
        ]
    )
    rows = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    assert code == 0
    return [r for r in rows if "file" in r and r.get("face") in (0, None)], rows[-1]["summary"]


def test_closed_set_accuracy_floor(model, lfw20, capsys):
    emb, align, _ = model
    _, summary = _infer(capsys, lfw20, model, "heldout", "--closed-set")
    print(f"{emb} {align} closed-set: {summary['correct']}/{summary['total']}")
    assert summary["total"] == 310
    assert summary["accuracy"] >= CLOSED_SET_FLOOR[emb]


def test_strangers_are_unknown_and_known_people_still_recognised(model, lfw20, capsys):
    emb, align, _ = model
    strangers, summary = _infer(capsys, lfw20, model, "strangers")
    assert summary["threshold_source"] == "calibrated"
    unknown = np.mean([r["pred"] in ("unknown", None) for r in strangers])
    _, known = _infer(capsys, lfw20, model, "heldout")
    print(f"{emb} {align} open-set: strangers unknown {unknown:.3f}, known recognised {known['accuracy']:.3f}")
    assert len(strangers) == 200
    assert unknown >= 0.98
    assert known["accuracy"] >= 0.90


@pytest.mark.parametrize("embedder", EMBEDDERS)
def test_verify_agrees_with_lfw_pairs(env, embedder, tmp_path, capsys):
    """20 matched + 20 mismatched pairs of pairs.txt's first fold, the embedder's default threshold."""
    from facerec.datasets import Sample
    from facerec.embed import get_spec
    from facerec.evaluate.pairs import read_pairs
    from facerec.gallery.calibration import Calibration
    from facerec.gallery.verify import verify_results
    from facerec.pipeline import Pipeline

    pairs = read_pairs(LFW_HOME / "pairs.txt", LFW_DIR)
    chosen = [p for p in pairs if p.same][:20] + [p for p in pairs if not p.same][:20]
    pipe = Pipeline.create(embedder=embedder, detector="mtcnn", device="cpu", cache_dir=tmp_path)
    cal = Calibration(get_spec(embedder).default_threshold, "default")
    agree = 0
    for p in chosen:
        a, b = pipe.run([Sample(p.a, p.a)]), pipe.run([Sample(p.b, p.b)])
        agree += verify_results(a, b, cal).same == p.same
    print(f"{embedder} verify: {agree}/40")
    assert agree >= 38
    # and the command itself, on the first pair
    assert (
        main(
            ["verify", chosen[0].a, chosen[0].b, "--embedder", embedder, "--format", "json", "--art_dir", str(tmp_path)]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    from facerec.gallery.calibration import verification_threshold

    expected = verification_threshold(pipe.config)  # FAR 1e-3 where a reference exists (CASIA), else the default
    assert out["same"] is True and out["threshold_source"] == expected.source and out["far"] == expected.far
