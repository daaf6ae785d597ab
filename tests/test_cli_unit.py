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


@pytest.fixture
def trained(tmp_path, synthetic_npz, capsys):
    code, out, err = run(capsys, "train", "--data", str(synthetic_npz), "--out_dir", str(tmp_path / "models"),
                         "--art_dir", str(tmp_path / "art"), "--embedder", "fake", "--align", "resize", "--k", "3")
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
    code, out, err = run(capsys, "infer", "--input", str(probe_dir), "--model", str(trained), "--art_dir",
                         str(probe_dir.parent / "art"), "--align", "resize", "--topk", "5")
    assert code == 0, err
    assert "Accuracy: 3/3 = 1.0000" in out
    assert out.count("    1. ") == 3 and out.count("    5. ") == 3  # top-5 evidence for each face


def test_infer_json_contract(trained, probe_dir, capsys):
    code, out, _ = run(capsys, "infer", "--input", str(probe_dir), "--model", str(trained), "--align", "resize",
                       "--format", "json", "--topk", "2", "--art_dir", str(probe_dir.parent / "art"))
    rows = [json.loads(line) for line in out.splitlines()]
    faces, summary = rows[:-1], rows[-1]["summary"]
    assert code == 0 and len(faces) == 3
    for row in faces:
        assert {"file", "face", "box", "pred", "distance", "topk", "label"} <= set(row)
        assert len(row["topk"]) == 2 and {"name", "distance"} <= set(row["topk"][0])
        assert row["pred"] == f"person_{row['label']}"
    assert summary == {"images": 3, "faces": 3, "errors": 0, "correct": 3, "total": 3, "accuracy": 1.0}


def test_cache_means_nothing_is_computed_twice(trained, probe_dir, capsys):
    args = ["infer", "--input", str(probe_dir), "--model", str(trained), "--align", "resize",
            "--art_dir", str(probe_dir.parent / "art")]
    run(capsys, *args)
    assert conftest.FAKE_INSTANCES[-1].calls == 3
    run(capsys, *args)
    assert conftest.FAKE_INSTANCES[-1].calls == 0


def test_bad_files_in_folder_are_named_and_the_rest_processed(trained, probe_dir, capsys):
    (probe_dir / "zero.jpg").write_bytes(b"")
    (probe_dir / "text.png").write_text("not an image")
    (probe_dir / "notes.txt").write_text("skip me")
    code, out, err = run(capsys, "infer", "--input", str(probe_dir), "--model", str(trained), "--align", "resize",
                         "--art_dir", str(probe_dir.parent / "art"))
    assert code == 1
    assert "zero.jpg: empty file" in err and "text.png: not an image" in err
    assert "skipped (not an image type)" in out and "notes.txt" in out
    assert "Accuracy: 3/3 = 1.0000" in out
    assert "Traceback" not in out + err


def test_failed_train_leaves_earlier_model_untouched(tmp_path, trained, capsys):
    before = trained.read_bytes()
    bad = tmp_path / "synthetic.npz"  # same data name -> same default model path
    bad.write_bytes(b"PK\x03\x04 broken zip")
    code, _, err = run(capsys, "train", "--data", str(bad), "--out_dir", str(trained.parent), "--embedder", "fake",
                       "--align", "resize", "--art_dir", str(tmp_path / "art"))
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


def test_bad_options_are_clear(synthetic_npz, tmp_path, capsys):
    code, _, err = run(capsys, "train", "--data", str(synthetic_npz), "--embedder", "nope", "--out_dir", str(tmp_path))
    assert code == 2 and "unknown embedder 'nope'" in err
    code, _, err = run(capsys, "train", "--data", str(synthetic_npz), "--embedder", "fake", "--k", "0",
                       "--out_dir", str(tmp_path))
    assert code == 2 and "k must be >= 1" in err


def test_seed_spellings_and_dashed_spellings_both_work(tmp_path, synthetic_npz, capsys):
    code, _, err = run(capsys, "train", "--data", str(synthetic_npz), "--out-dir", str(tmp_path / "m"),
                       "--art-dir", str(tmp_path / "a"), "--batch-size", "5", "--embedder", "fake", "--align", "resize")
    assert code == 0, err
    assert (tmp_path / "m" / "knn_fake_synthetic.npz").is_file()
