"""CLI flows with the deterministic fake embedder (fast): train, infer, cache, errors, exit codes."""

import json

import numpy as np
import pytest
from PIL import Image

from facerec.cli import main

import conftest
from conftest import person_image


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def infer_cli(capsys, model, probe_dir, *extra):
    """``facerec infer`` on ``probe_dir`` with ``model``, whole images as faces (the seed's
    ``--align resize``): (exit code, stdout, stderr)."""
    return run(capsys, "infer", "--input", str(probe_dir), "--model", str(model), "--align", "resize", *extra)


@pytest.fixture
def trained(tmp_path, synthetic_npz, fake_train_cli):
    code, out, err = fake_train_cli(
        synthetic_npz, "--out_dir", str(tmp_path / "models"), "--art_dir", str(tmp_path / "art"), "--k", "3"
    )
    assert code == 0, err
    return tmp_path / "models" / "knn_fake_synthetic.npz"


@pytest.fixture
def probe_dir(tmp_path):
    d = tmp_path / "probe"
    d.mkdir()
    for i, person in enumerate([0, 3, 5]):
        Image.fromarray(person_image(person, 50 + i)).save(d / f"test_{i}_y{person}.png")
    return d


def test_train_writes_model_and_artifact(tmp_path, trained, capsys):
    assert trained.is_file()
    art = tmp_path / "art" / "embeddings_fake_synthetic_resize.npz"
    with np.load(art, allow_pickle=False) as a:
        assert a["embeddings"].shape == (48, 16) and a["labels"].shape == (48,) and len(a["ids"]) == 48


def test_infer_table_with_accuracy(trained, probe_dir, capsys):
    code, out, err = infer_cli(capsys, trained, probe_dir, "--art_dir", str(probe_dir.parent / "art"), "--topk", "5")
    assert code == 0, err
    assert "Accuracy: 3/3 = 1.0000" in out
    assert out.count("    1. ") == 3 and out.count("    5. ") == 3  # top-5 evidence for each face


def test_infer_json_contract(trained, probe_dir, capsys):
    code, out, _ = infer_cli(
        capsys, trained, probe_dir, "--format", "json", "--topk", "2", "--art_dir", str(probe_dir.parent / "art")
    )
    rows = [json.loads(line) for line in out.splitlines()]
    faces, summary = rows[:-1], rows[-1]["summary"]
    assert code == 0 and len(faces) == 3
    for row in faces:
        assert {"file", "face", "box", "pred", "distance", "topk", "label"} <= set(row)
        assert len(row["topk"]) == 2 and {"name", "distance"} <= set(row["topk"][0])
        assert row["pred"] == f"person_{row['label']}"
    assert summary.items() >= {"images": 3, "faces": 3, "errors": 0, "correct": 3, "total": 3, "accuracy": 1.0}.items()


def test_cache_means_nothing_is_computed_twice(trained, probe_dir, capsys):
    args = [
        "infer",
        "--input",
        str(probe_dir),
        "--model",
        str(trained),
        "--align",
        "resize",
        "--art_dir",
        str(probe_dir.parent / "art"),
    ]
    run(capsys, *args)
    assert conftest.FAKE_INSTANCES[-1].calls == 3
    run(capsys, *args)
    assert conftest.FAKE_INSTANCES[-1].calls == 0


def test_bad_files_in_folder_are_named_and_the_rest_processed(trained, probe_dir, capsys):
    (probe_dir / "zero.jpg").write_bytes(b"")
    (probe_dir / "text.png").write_text("not an image")
    (probe_dir / "notes.txt").write_text("skip me")
    code, out, err = infer_cli(capsys, trained, probe_dir, "--art_dir", str(probe_dir.parent / "art"))
    assert code == 1
    assert "zero.jpg: empty file" in err and "text.png: not an image" in err
    assert "skipped (not an image type)" in out and "notes.txt" in out
    assert "Accuracy: 3/3 = 1.0000" in out
    assert "Traceback" not in out + err


def test_failed_train_leaves_earlier_model_untouched(tmp_path, trained, fake_train_cli):
    before = trained.read_bytes()
    bad = tmp_path / "synthetic.npz"  # same data name -> same default model path
    bad.write_bytes(b"PK\x03\x04 broken zip")
    code, _, err = fake_train_cli(bad, "--out_dir", str(trained.parent), "--art_dir", str(tmp_path / "art"))
    assert code == 2 and "synthetic.npz" in err and "Traceback" not in err
    assert trained.read_bytes() == before


def test_model_from_another_pipeline_is_refused(trained, probe_dir, capsys):
    code, _, err = run(capsys, "infer", "--input", str(probe_dir), "--model", str(trained), "--embedder", "dlib")
    assert code == 2 and "built with embedder fake" in err


def test_not_a_model_file(tmp_path, probe_dir, capsys):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"\x00" * 100)
    code, _, err = run(capsys, "infer", "--input", str(probe_dir), "--model", str(junk))
    assert code == 2 and "junk.npz: not a facerec model" in err


def test_bad_options_are_clear(synthetic_npz, tmp_path, fake_train_cli):
    code, _, err = fake_train_cli(synthetic_npz, "--out_dir", str(tmp_path), embedder="nope", align=None)
    assert code == 2 and "unknown embedder 'nope'" in err
    code, _, err = fake_train_cli(synthetic_npz, "--k", "0", "--out_dir", str(tmp_path), align=None)
    assert code == 2 and "--k: must be >= 1, got 0" in err
    code, _, err = fake_train_cli(synthetic_npz, "--far", "5", "--out_dir", str(tmp_path), align=None)
    assert code == 2 and "--fpir must be a rate between 0 and 1" in err


def test_seed_spellings_and_dashed_spellings_both_work(tmp_path, synthetic_npz, fake_train_cli):
    code, _, err = fake_train_cli(
        synthetic_npz, "--out-dir", str(tmp_path / "m"), "--art-dir", str(tmp_path / "a"), "--batch-size", "5"
    )
    assert code == 0, err
    assert (tmp_path / "m" / "knn_fake_synthetic.npz").is_file()


def test_small_gallery_says_it_uses_the_default_threshold(trained, probe_dir, capsys):
    code, out, _ = infer_cli(capsys, trained, probe_dir, "--art_dir", str(probe_dir.parent / "art"))
    assert "open-set threshold 0.5000: no measured error rate: no reference calibration for fake/resize/box" in out


def test_stranger_is_unknown_with_candidates_and_closed_set_restores_the_seed(
    tmp_path, synthetic_npz, capsys, fake_train_cli
):
    code, out, err = fake_train_cli(
        synthetic_npz, "--out_dir", str(tmp_path / "m"), "--art_dir", str(tmp_path / "a"), "--far", "0.2"
    )
    assert code == 0, err
    assert "about 1 in 5 strangers would be named someone (measured on this gallery; 6 people, 48 faces)" in out
    probe = tmp_path / "stranger"
    probe.mkdir()
    Image.fromarray(person_image(99, 0)).save(probe / "stranger.png")
    Image.fromarray(person_image(2, 77)).save(probe / "test_0_y2.png")
    model = str(tmp_path / "m" / "knn_fake_synthetic.npz")
    args = ["infer", "--input", str(probe), "--model", model, "--align", "resize", "--art_dir", str(tmp_path / "a")]
    code, out, _ = run(capsys, *args, "--format", "json")
    rows = {json.loads(l).get("file", "summary").split("/")[-1]: json.loads(l) for l in out.splitlines()}
    assert rows["stranger.png"]["pred"] == "unknown"
    assert rows["stranger.png"]["candidate"].startswith("person_") and len(rows["stranger.png"]["topk"]) == 5
    assert rows["test_0_y2.png"]["pred"] == "person_2"
    assert rows["summary"]["summary"]["threshold_source"] == "calibrated"
    code, out, _ = run(capsys, *args)
    assert "stranger.png face 0" in out and ": unknown (nearest: person " in out  # shown as written
    code, out, _ = run(capsys, *args, "--closed-set", "--format", "json")
    assert json.loads(out.splitlines()[0])["pred"].startswith("person_")
    code, out, _ = run(capsys, *args, "--threshold", "5", "--format", "json")
    assert all(json.loads(l)["pred"] != "unknown" for l in out.splitlines()[:-1])
    assert json.loads(out.splitlines()[-1])["summary"]["threshold_source"] == "explicit"
    code, _, err = run(capsys, *args, "--threshold", "-1")
    assert code == 2 and "--threshold must be a finite number > 0" in err


def test_verify_same_and_different(tmp_path, synthetic_npz, capsys, fake_train_cli):
    fake_train_cli(synthetic_npz, "--out_dir", str(tmp_path / "m"), "--art_dir", str(tmp_path / "a"), "--far", "0.2")
    model = str(tmp_path / "m" / "knn_fake_synthetic.npz")
    a, a2, b = tmp_path / "a.png", tmp_path / "a2.png", tmp_path / "b.png"
    Image.fromarray(person_image(1, 100)).save(a)
    Image.fromarray(person_image(1, 101)).save(a2)
    Image.fromarray(person_image(4, 100)).save(b)
    folder = tmp_path / "person1"
    folder.mkdir()
    for v in range(3):
        Image.fromarray(person_image(1, 200 + v)).save(folder / f"{v}.png")
    common = ["--model", model, "--align", "resize", "--art_dir", str(tmp_path / "a"), "--format", "json"]
    code, out, _ = run(capsys, "verify", str(a), str(a2), *common)
    same = json.loads(out)
    # 1:1 at the reference's FAR; the fake pipeline has no reference, and says so
    assert code == 0 and same["same"] is True and same["threshold_source"] == "default"
    assert "no reference calibration for fake/resize/box" in same["threshold_promise"]
    assert set(same) >= {"same", "distance", "threshold", "threshold_source"}
    code, out, _ = run(capsys, "verify", str(a), str(b), *common)
    assert json.loads(out)["same"] is False
    code, out, _ = run(capsys, "verify", str(folder), str(a), *common)
    assert json.loads(out)["same"] is True and json.loads(out)["images_a"] == 3
    code, out, _ = run(capsys, "verify", str(a), str(b), "--embedder", "fake", "--align", "resize")
    assert code == 0 and out.startswith("different people: distance") and "equal-error threshold" in out
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run(capsys, "verify", str(a), str(empty), *common)
    assert code == 2 and "no image files found" in err


def test_train_with_a_faiss_index_stores_it(tmp_path, synthetic_npz, probe_dir, capsys, fake_train_cli):
    model = tmp_path / "ivf.npz"
    code, out, err = fake_train_cli(
        synthetic_npz,
        *("--model", str(model), "--art_dir", str(tmp_path / "art")),
        *("--index", "faiss-ivf", "--index-param", "nlist=2", "--index-param", "nprobe=2"),
    )
    assert code == 0, err
    assert "index faiss-ivf" in out
    from facerec.gallery import Gallery

    g = Gallery.load(model)
    assert g.index == "faiss-ivf" and g.index_params == {"nlist": 2, "nprobe": 2}
    code, out, err = infer_cli(capsys, model, probe_dir, "--art_dir", str(tmp_path / "art"), "--closed-set")
    assert code == 0 and "Accuracy: 3/3 = 1.0000" in out, err


def test_train_refuses_a_bad_index_option_before_embedding(tmp_path, synthetic_npz, fake_train_cli):
    code, out, err = fake_train_cli(
        synthetic_npz, "--out_dir", str(tmp_path / "m"), "--index", "faiss-hnsw", "--index-param", "efs=3"
    )
    assert code == 2 and "no option efs" in err and not (tmp_path / "m").exists()


@pytest.mark.parametrize("threshold", ["-1", "0", "nan", "inf"])
def test_verify_with_a_bad_threshold_is_a_clean_error(trained, probe_dir, threshold):
    """A subprocess, as a user types it: exit 2, one line naming the flag, no traceback."""
    import subprocess
    import sys

    img = str(next(probe_dir.iterdir()))
    code = (
        "import sys, conftest; from facerec.cli import main; "
        f"sys.exit(main(['verify', {img!r}, {img!r}, '--model', {str(trained)!r}, '--threshold', {threshold!r}]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=conftest.ROOT / "tests", timeout=120
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "--threshold must be a finite number > 0" in proc.stderr


def test_fast_is_accepted_with_a_deprecation_note(tmp_path, synthetic_npz, fake_train_cli):
    code, out, err = fake_train_cli(
        synthetic_npz, "--out_dir", str(tmp_path), "--fast", "--art_dir", str(tmp_path / "a")
    )
    assert code == 0 and "--fast is deprecated and does nothing" in err and "enrolled 48/48" in out


def test_precision_is_refused_where_the_embedder_has_none(tmp_path, synthetic_npz, fake_train_cli):
    code, _, err = fake_train_cli(synthetic_npz, "--out_dir", str(tmp_path), "--precision", "bf16")
    assert code == 2 and "fake" in err and "precision" in err


@pytest.mark.parametrize(
    "calibration, message",
    [
        ("0.5", "calibration must be a mapping"),
        ({"threshold": -1, "source": "calibrated"}, "calibration threshold must be"),
    ],
)
def test_a_damaged_stored_threshold_is_derived_again_and_said(
    trained, probe_dir, capsys, tmp_path, calibration, message
):
    """A threshold is derived data: the gallery loads, says why its stored one is not used, and
    answers with one derived from its faces (a poisoned 0.2 gallery made `serve` refuse to start)."""
    with np.load(trained, allow_pickle=False) as d:
        arrays = {k: d[k] for k in d.files}
    meta = json.loads(bytes(arrays["meta"]).decode())
    meta["calibration"] = calibration
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    code, out, err = infer_cli(capsys, bad, probe_dir)
    assert code == 0 and "open-set threshold 0.5000" in out, err


@pytest.mark.parametrize(
    "change, message",
    [
        ({"format_version": "2"}, "format_version '2' is not an integer"),
        ({"pipeline": {"margin": "32"}}, "margin must be a finite number"),
        ({"pipeline": "mtcnn"}, "pipeline must be a mapping"),
    ],
)
def test_damaged_model_headers_are_named(trained, probe_dir, capsys, tmp_path, change, message):
    with np.load(trained, allow_pickle=False) as d:
        arrays = {k: d[k] for k in d.files}
    meta = json.loads(bytes(arrays["meta"]).decode())
    for key, value in change.items():
        meta[key] = {**meta[key], **value} if isinstance(value, dict) and key == "pipeline" else value
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    code, _, err = run(capsys, "infer", "--input", str(probe_dir), "--model", str(bad))
    assert code == 2 and str(bad) in err and message in err, err


def test_terminal_escapes_in_file_names_are_printed_escaped(trained, tmp_path, capsys):
    d = tmp_path / "evil"
    d.mkdir()
    Image.fromarray(person_image(1, 33)).save(d / "x\x1b[2Jy.png")
    (d / "z\x1b]0;t\x07.png").write_text("not an image")
    code, out, err = infer_cli(capsys, trained, d)
    assert code == 1 and "\x1b" not in out + err and "\x07" not in out + err
    assert "x\\x1b[2Jy.png" in out and "z\\x1b]0;t\\x07.png" in err
