"""Gallery stores with the fake models: the model file and embedded Milvus Lite (real, in process).

The Milvus server's replicas, crashes and outages are in system/test_store_server.py."""

import numpy as np
import pytest

from facerec.api import load_model, train
from facerec.errors import ModelFileError, StoreError
from facerec.gallery.calibration import per_sample_distances
from facerec.store import ServedGallery, open_store
from facerec.store.copy import copy_gallery

from conftest import FAKE_TRAIN, answers, person_image, queries

pytest.importorskip("milvus_lite")


@pytest.fixture
def trained(tmp_path, synthetic_npz, fake_model):
    """The same data trained into a model file (:func:`conftest.fake_model`) and into Milvus Lite."""
    lite = f"milvus:{tmp_path}/g.db"
    train(synthetic_npz, store=lite, **FAKE_TRAIN)
    return fake_model, lite


def test_milvus_lite_gallery_answers_as_the_file_gallery(tmp_path, trained, capsys):
    model, lite = trained
    folder = queries(tmp_path)
    a_file = answers(model, folder, capsys)
    assert len(a_file) == 16 and sum('"unknown"' in a for a in a_file) >= 2  # the strangers are rejected
    assert answers(lite, folder, capsys) == a_file
    assert load_model(lite).people() == load_model(model).people()
    assert load_model(lite).calibration.threshold == pytest.approx(load_model(model).calibration.threshold)


@pytest.mark.parametrize("backend", ["file", "lite"])
def test_enrol_and_remove_survive_a_reopen_with_the_threshold_kept_current(tmp_path, trained, backend):
    model, lite = trained
    uri = str(model) if backend == "file" else lite
    with open_store(uri, writer=True) as store:
        served = ServedGallery(store)
        from facerec.pipeline import Pipeline

        pipe = Pipeline.create(embedder="fake", detector="fake", margin=4, device="cpu")
        emb = np.concatenate([pipe.embed(person_image(7, v)) for v in range(4)])
        assert served.enrol("newcomer", emb, [f"n{v}" for v in range(4)]) == 4
        assert served.enrol("newcomer", emb[:2], ["again0", "again1"]) == 4  # the same faces count once
        assert served.remove("person_1") == 8
        cal = served.calibration
        g = served.gallery
        gen, imp = per_sample_distances(g.embeddings_, g.labels_, g.metric)
        # added faces: exactly the leave-one-out distances (a removal may leave some stale: then larger is never reported)
        new = g.labels_ == g.label_of("newcomer")
        np.testing.assert_allclose(g.genuine_d_[new], gen[new], rtol=1e-5)
        np.testing.assert_allclose(g.impostor_d_[new], imp[new], rtol=1e-5)
        people = served.people()
    again = load_model(uri)
    assert again.people() == people and ("person_1", 8) not in people
    assert again.calibration.threshold == pytest.approx(cal.threshold)


def test_incremental_distances_match_a_full_recalibration(tmp_path, trained):
    model, _ = trained
    with open_store(model, writer=True) as store:
        served = ServedGallery(store)
        rng = np.random.default_rng(3)
        for i in range(12):  # one face at a time, some for new people, some for enrolled ones
            e = rng.standard_normal((1, 16)).astype(np.float32)
            e /= np.linalg.norm(e)
            served.enrol(f"p{i % 4}", e, [f"r{i}"])
        g = served.gallery
        gen, imp = per_sample_distances(g.embeddings_, g.labels_, g.metric)
        np.testing.assert_allclose(g.genuine_d_, gen, rtol=1e-5)
        np.testing.assert_allclose(g.impostor_d_, imp, rtol=1e-5)
        incremental = served.calibration.threshold
        full = served.recalibrate()
        assert full.threshold == pytest.approx(incremental) and not full.incremental


def test_a_second_writer_on_a_model_file_is_refused(trained):
    model, _ = trained
    with open_store(model, writer=True):
        with pytest.raises(StoreError, match="open for writing by pid"):
            open_store(model, writer=True)
    open_store(model, writer=True).close()  # free again once the first closed


def test_store_copy_file_to_lite_and_back_gives_the_same_gallery(tmp_path, trained, capsys):
    model, _ = trained
    lite = f"milvus:{tmp_path}/copy.db#lfw"
    r = copy_gallery(str(model), lite)
    assert (r.faces, r.people, r.same_answers) == (48, 6, r.checked_queries)
    with pytest.raises(StoreError, match="stored there already"):
        copy_gallery(str(model), lite)
    back = tmp_path / "back.npz"
    copy_gallery(lite, str(back))
    a, b = load_model(model), load_model(back)
    assert a.people() == b.people()
    np.testing.assert_array_equal(np.sort(a.face_ids_.astype(str)), np.sort(b.face_ids_.astype(str)))
    folder = queries(tmp_path)
    assert answers(model, folder, capsys) == answers(back, folder, capsys)


def test_bad_store_uris_say_what_is_wrong(tmp_path):
    with pytest.raises(StoreError, match="must end in .db"):
        open_store("milvus:./gallery")
    with pytest.raises(StoreError, match="collection name"):
        open_store(f"milvus:{tmp_path}/g.db#bad-name")
    with pytest.raises(ModelFileError, match="no gallery here"):
        load_model(f"milvus:{tmp_path}/empty.db")


def test_a_milvus_lite_gallery_open_elsewhere_says_so(trained):
    import subprocess
    import sys

    _, lite = trained
    with open_store(lite, writer=True) as store:
        assert store.count() == 48  # this process has it open
        code = (
            "import sys\nfrom facerec.api import load_model\nfrom facerec.errors import StoreError\n"
            f"try:\n    load_model({lite!r})\nexcept StoreError as e:\n    print(e); sys.exit(3)\n"
        )
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 3 and "one process at a time" in r.stdout, r.stdout + r.stderr


def test_store_copy_and_calibrate_from_the_command_line(tmp_path, trained, capsys):
    from facerec.cli import main

    model, _ = trained
    dst = f"milvus:{tmp_path}/cli.db"
    assert main(["store", "copy", str(model), dst]) == 0
    out = capsys.readouterr().out
    assert "copied 48 faces of 6 people" in out and "48/48 check queries got the same nearest faces" in out
    assert main(["store", "copy", str(model), dst]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["calibrate", "--model", dst]) == 0
    out = capsys.readouterr().out
    assert "48 faces; open-set threshold" in out and "measured on this gallery's" in out and "FPIR 0.2" in out
    assert main(["infer", "--input", str(tmp_path), "--model", f"milvus:{tmp_path}/none.db", "--quiet"]) == 2
    assert "no gallery here" in capsys.readouterr().err
