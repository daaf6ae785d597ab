"""facerec's own CASIA FaceNet exported to a standalone ONNX file and used as a user's model
(``--embedder onnx:casia.onnx`` with its sidecar: margin crop, mean 0, std 1, RGB): the built-in
embeddings to 1e-5, the built-in LFW pairs accuracy on a fold, refused open-set answers until
``facerec calibrate`` measured its table, and ``facerec evaluate open-set`` with it."""

import json
import shutil

import numpy as np
import pytest

from conftest import lfw_image, require_lfw

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

SIDECAR = {"size": 160, "crop": "margin", "mean": 0, "std": 1, "channels": "rgb"}
PEOPLE = [("Colin_Powell", 1), ("Colin_Powell", 2), ("Tony_Blair", 1), ("Tony_Blair", 2), ("George_W_Bush", 3)]


@pytest.fixture(scope="module")
def casia_onnx(casia, lfw_workdir):
    """The fp32 graph facerec runs CASIA through on a CPU (float (n,3,160,160) 0..255 in, unit rows
    out), copied out as a user's file with its sidecar."""
    from facerec.embed.onnx_runtime import ensure_graph

    graph = ensure_graph(
        casia.model, weights_id=casia.spec.weights_id, digest=casia.weights_digest, input_size=160, precision="fp32"
    )
    path = lfw_workdir / "casia.onnx"
    if isinstance(graph, bytes):
        path.write_bytes(graph)
    else:
        shutil.copyfile(graph, path)
    path.with_name("casia.onnx.json").write_text(json.dumps(SIDECAR))
    return path


def test_exported_casia_gives_the_built_in_embeddings(casia, casia_onnx, lfw_workdir):
    from facerec.embed import create_embedder
    from facerec.pipeline import Pipeline

    name = f"onnx:{casia_onnx}"
    mine = create_embedder(name, device="cpu")
    assert (mine.spec.dim, mine.spec.input_size, mine.spec.crop) == (512, 160, "margin")
    crops = np.random.default_rng(0).integers(0, 256, (5, 160, 160, 3), dtype=np.uint8)
    assert np.abs(mine.embed(crops) - casia.embed(crops)).max() < 1e-5

    paths = [str(lfw_image(p, n)) for p, n in PEOPLE]
    built_in = Pipeline.create(embedder="facenet-casia", detector="mtcnn", device="cpu").run(paths, subject_only=True)
    onnx = Pipeline.create(embedder=name, detector="mtcnn", device="cpu").run(paths, subject_only=True)
    a = np.stack([r.faces[0].embedding for r in built_in])
    b = np.stack([r.faces[0].embedding for r in onnx])
    assert np.abs(a - b).max() < 1e-5


def test_exported_casia_keeps_the_built_in_lfw_pairs_accuracy(casia_onnx, lfw_workdir):
    from facerec.evaluate.common import embed_paths
    from facerec.evaluate.pairs import evaluate_pairs, read_pairs
    from facerec.pipeline import Pipeline

    lfw = require_lfw()
    pairs = read_pairs(lfw.parent / "pairs.txt", lfw)
    folds = sorted({p.fold for p in pairs})[:2]
    pairs = [p for p in pairs if p.fold in folds]  # two folds, each's threshold from the other: 1,200 pairs
    paths = sorted({p.a for p in pairs} | {p.b for p in pairs})
    acc = {}
    for name in ("facenet-casia", f"onnx:{casia_onnx}"):
        pipe = Pipeline.create(embedder=name, detector="mtcnn", device="cpu", cache_dir=str(lfw_workdir / "cache"))
        emb = embed_paths(pipe, paths)
        acc[name] = evaluate_pairs(pairs, dict(zip(paths, emb.embeddings)))["accuracy_mean"]
    built_in, mine = acc.values()
    print(f"LFW pairs, folds {folds}: built-in {built_in:.4f}, exported ONNX {mine:.4f}")
    assert mine == pytest.approx(built_in, abs=1 / 600) and built_in > 0.95


def _small_lfw(root, lfw):
    """A folder-per-person of LFW View 1's development test people: four known people (6 photos
    each) and ten strangers (one photo each)."""
    lines = (lfw.parent / "peopleDevTest.txt").read_text().splitlines()[1:]
    people = [(name, int(n)) for name, n in (line.split("\t") for line in lines if line.strip())]
    known = [p for p in people if p[1] >= 6][:4]
    strangers = [p for p in people if p[1] == 1][:10]
    for name, n in known + strangers:
        (root / name).mkdir(parents=True)
        for i in range(1, min(n, 6) + 1):
            (root / name / f"{name}_{i:04d}.jpg").symlink_to(lfw / name / f"{name}_{i:04d}.jpg")
    return root


def test_calibrate_writes_the_table_and_open_set_runs_with_it(casia_onnx, lfw_workdir, capsys):
    from facerec.cli import main
    from facerec.gallery.reference import user_reference_dir

    lfw = require_lfw()
    data = _small_lfw(lfw_workdir / "small", lfw)
    name = f"onnx:{casia_onnx}"
    open_set = ["evaluate", "open-set", "--data", str(data), "--embedder", name, "--detector", "mtcnn"]
    open_set += ["--min-images", "6", "--trials", "2", "--json", str(lfw_workdir / "open.json"), "--quiet"]
    open_set += ["--device", "cpu", "--no-cache"]

    assert main(open_set) != 0  # uncalibrated: no stranger decision
    err = capsys.readouterr().err
    for words in ("facerec calibrate", "--threshold", "--closed-set"):
        assert words in err

    assert (
        main(
            ["calibrate", "--embedder", name, "--lfw-dir", str(lfw), "--people", "40", "--detector", "mtcnn"]
            + ["--device", "cpu", "--quiet", "--no-cache"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "measured on 40 people" in out
    (table,) = user_reference_dir().glob("onnx-sha256_*__mtcnn__box__noflip.json")
    t = json.loads(table.read_text())
    assert (
        t["measured_people"] == 40
        and t["pipeline"]["embedder"] == name
        and "first 40 of its" in t["provenance"]["data"]
    )

    assert main(open_set) == 0, capsys.readouterr().err
    r = json.loads((lfw_workdir / "open.json").read_text())
    assert r["known_people"] == 4 and r["deployed"]["threshold"] > 0
