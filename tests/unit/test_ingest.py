"""``facerec ingest`` on the local engine with the fake detector and embedder, into a real Milvus
Lite database: the sources it reads, what it stores for named and unnamed photos, bad images
recorded and never fatal, reruns and duplicate files never storing a face twice. The Ray engine,
with the real models, is in test_ingest_ray.py."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from facerec.cli import main
from facerec.errors import DataError, InputError, StoreError
from facerec.ingest import ingest, read_source
from facerec.store import open_store

from conftest import person_image

pytest.importorskip("milvus_lite")

FAKE = dict(embedder="fake", detector="fake", margin=4, device="cpu")


def save(path, image):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return path


@pytest.fixture
def photos(tmp_path):
    """Seven files: three single faces (one in a subfolder), one photo with two faces, one with
    none, one corrupt, and one byte-for-byte copy of the first under another name."""
    d = tmp_path / "photos"
    for p in range(3):
        save(d / ("sub" if p == 2 else "") / f"p{p}.png", person_image(p, 0))
    save(d / "two.png", np.concatenate([person_image(3, 0), person_image(4, 0)], axis=1))
    save(d / "black.png", np.zeros((64, 64, 3), np.uint8))
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    shutil.copy(d / "p0.png", d / "copy_of_p0.png")
    return d


def test_sources_folder_list_csv_parquet(tmp_path, photos):
    assert len(read_source(photos)) == 7  # recursive, images only
    (tmp_path / "list.txt").write_text("# my photos\nphotos/p0.png\n\nhttps://example.org/a.jpg\n")
    items = read_source(tmp_path / "list.txt")
    assert [it.path for it in items] == [str(tmp_path / "photos" / "p0.png"), "https://example.org/a.jpg"]
    assert all(it.person is None for it in items)
    (tmp_path / "m.csv").write_text("Path,Person\nphotos/p0.png,Ada Lovelace\nphotos/p1.png,\n")
    items = read_source(tmp_path / "m.csv")
    assert [(it.path, it.person) for it in items] == [
        (str(photos / "p0.png"), "Ada Lovelace"),
        (str(photos / "p1.png"), None),
    ]
    pa, pq = pytest.importorskip("pyarrow"), pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table({"path": ["photos/p1.png"], "person": ["Grace Hopper"]}), tmp_path / "m.parquet")
    assert read_source(tmp_path / "m.parquet")[0].person == "Grace Hopper"


@pytest.mark.parametrize(
    "name, text, problem",
    [
        ("nopath.csv", "file,person\na.png,x\n", "a manifest needs a 'path' column"),
        ("blank.csv", "path,person\n,x\n", "row 2 has no path"),
        ("empty.txt", "# nothing\n", "names no image"),
    ],
)
def test_bad_sources_name_the_file(tmp_path, name, text, problem):
    (tmp_path / name).write_text(text)
    with pytest.raises(DataError, match=problem) as e:
        read_source(tmp_path / name)
    assert name in str(e.value)
    with pytest.raises(DataError, match="no such file"):
        read_source(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no image files"):
        read_source(tmp_path / "empty")


def test_unnamed_photos_store_every_face_and_reruns_store_none_twice(tmp_path, photos):
    uri = f"milvus:{tmp_path / 'photos.db'}"
    r = ingest(photos, uri, calibrate=False, **FAKE)
    assert (r.images, r.stored_images, r.faces, r.unnamed_faces, r.named_faces) == (7, 4, 5, 5, 0)
    assert (r.no_face, r.duplicates, r.failures, r.skipped) == (1, 1, 1, 0)
    assert len(r.failed) == 1 and r.failed[0]["path"].endswith("broken.jpg")
    assert "broken.jpg" in r.failed[0]["error"]
    assert r.store_faces == 5 and r.first_batch_s > 0
    with open_store(uri) as st:
        assert st.count() == 0 and st.count(unnamed=True) == 5
        ids = st.face_ids()
        assert len(ids) == 5
        # the photo with two faces: both stored, searchable as nobody's
        hit = st.search(np.asarray(_embedding(photos / "p1.png"))[None], 1, unnamed=True)[0][0]
        # (Milvus returns float32 distances: an exact match reads ~5e-4, not 0)
        assert hit["name"] is None and hit["sample_id"].endswith("p1.png") and hit["distance"] < 1e-2

    again = ingest(photos, uri, calibrate=False, **FAKE)
    # every stored image (and the copy, whose content is stored) is skipped before embedding
    assert (again.skipped, again.faces, again.stored_images, again.failures, again.no_face) == (5, 0, 0, 1, 1)
    with open_store(uri) as st:
        assert st.face_ids() == ids and st.count(unnamed=True) == 5


def _embedding(path):
    from facerec.pipeline import Pipeline

    return Pipeline.create(embedder="fake", detector="fake", margin=4, device="cpu").embed(str(path))[0]


def test_manifest_enrols_people_and_calibrates(tmp_path):
    rows = ["path,person"]
    for p in range(4):
        for v in range(4):
            save(tmp_path / f"{p}_{v}.png", person_image(p, v))
            rows.append(f"{p}_{v}.png,person {p}")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    uri = f"milvus:{tmp_path / 'people.db'}"
    r = ingest(tmp_path / "m.csv", uri, **FAKE)
    assert (r.faces, r.named_faces, r.failures) == (16, 16, 0)
    assert r.calibration.startswith("threshold ")
    with open_store(uri) as st:
        assert st.people() == [(f"person {p}", 4) for p in range(4)]
        g = st.load()
        assert len(g) == 16 and g.pipeline.embedder == "fake"
        q = _embedding(save(tmp_path / "new.png", person_image(2, 77)))
        assert st.search(np.asarray(q)[None], 1)[0][0]["name"] == "person 2"


def test_a_store_keeps_its_pipeline_and_options_are_checked(tmp_path, photos):
    uri = f"milvus:{tmp_path / 'x.db'}"
    ingest(photos, uri, calibrate=False, **FAKE)
    with pytest.raises(InputError, match="would mix embeddings"):
        ingest(photos, uri, embedder="facenet-casia", detector="fake", device="cpu")
    with pytest.raises(InputError, match="--engine ray"):
        ingest(photos, uri, workers=2, **FAKE)
    with pytest.raises(InputError, match="engine must be one of"):
        ingest(photos, uri, engine="spark", **FAKE)
    with pytest.raises(StoreError, match="ingest writes to a Milvus store"):
        ingest(photos, str(tmp_path / "model.npz"), **FAKE)


def test_cli_reports_failures_with_a_non_zero_exit(tmp_path, photos, capsys):
    uri = f"milvus:{tmp_path / 'cli.db'}"
    report = tmp_path / "report.json"
    args = ["ingest", str(photos), "--store", uri, "--embedder", "fake", "--align", "fake", "--margin", "4"]
    rc = main([*args, "--device", "cpu", "--batch-size", "2", "--no-calibrate", "--report", str(report), "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 1
    assert "ingested 4/7 images: 5 faces stored" in out and "1 failed" in out
    assert "broken.jpg" in err
    data = json.loads(report.read_text())
    assert data["faces"] == 5 and data["failed"][0]["path"].endswith("broken.jpg")
    assert set(data["stages"]) == {"decode", "faces", "store"}
    (photos / "broken.jpg").unlink()
    assert main([*args, "--quiet"]) == 0  # nothing left to fail; the rest already stored
    assert "5 already stored" in capsys.readouterr().out
