"""Gallery: estimator behaviour, k-NN evidence, and a model file that is safe and self-describing."""

import numpy as np
import pytest

from facerec.errors import InputError, ModelFileError, NotEnrolledError, NotFittedError
from facerec.gallery import Gallery
from facerec.gallery.identify import identify
from facerec.pipeline import PipelineConfig

PIPE = PipelineConfig("fake", "fake-v1", "resize", 32, 32.0, 3)


def unit(*rows):
    a = np.array(rows, np.float32)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


@pytest.fixture
def gallery():
    emb = unit([1, 0, 0], [0.9, 0.1, 0], [0.8, 0.2, 0], [0, 1, 0], [0, 0.9, 0.1], [0, 0, 1])
    return Gallery(k=3, pipeline=PIPE).fit(
        emb, np.array([0, 0, 0, 1, 1, 2]), ["ann", "bob", "cy"], [f"s{i}" for i in range(6)]
    )


def test_fit_returns_self_and_queries_need_fit():
    g = Gallery()
    with pytest.raises(NotFittedError):
        identify(g, np.zeros((1, 3), np.float32))
    assert g.fit(unit([1, 0, 0]), np.array([0]), ["a"], ["s"]) is g


def test_options_are_validated():
    with pytest.raises(InputError, match="k must be >= 1"):
        Gallery(k=0)
    with pytest.raises(InputError, match="metric"):
        Gallery(metric="manhattan")


def test_prediction_carries_topk_evidence(gallery):
    (p,) = identify(gallery, unit([0.95, 0.05, 0]), topk=5)
    assert p.name == "ann" and p.votes == 3
    assert [n.name for n in p.neighbors] == ["ann", "ann", "ann", "bob", "bob"]
    d = [n.distance for n in p.neighbors]
    assert d == sorted(d) and p.distance == pytest.approx(d[0])
    assert {n.sample_id for n in p.neighbors[:3]} == {"s0", "s1", "s2"}
    expected = np.linalg.norm(unit([0.95, 0.05, 0])[0] - gallery.embeddings_[p.neighbors[0].index])
    assert p.distance == pytest.approx(expected, abs=1e-5)


def test_tie_goes_to_nearest_person():
    emb = unit([1, 0, 0], [0, 1, 0], [0, 0, 1])
    g = Gallery(k=3, pipeline=PIPE).fit(emb, np.array([0, 1, 2]), ["a", "b", "c"], ["0", "1", "2"])
    (p,) = identify(g, unit([0.1, 0.2, 0.9]))
    assert p.name == "c"  # scikit-learn's predict would say "a" (smallest label)


def test_cosine_metric_ranks_like_euclidean(gallery):
    cos = Gallery(k=3, metric="cosine", pipeline=PIPE).fit(
        gallery.embeddings_, gallery.labels_, gallery.names_, gallery.sample_ids_
    )
    q = unit([0.2, 0.9, 0.1])
    a, b = identify(gallery, q)[0], identify(cos, q)[0]
    assert a.name == b.name == "bob"
    assert [n.index for n in a.neighbors] == [n.index for n in b.neighbors]
    assert b.distance == pytest.approx(a.distance**2 / 2, abs=1e-5)  # 1 - cos = |a-b|^2 / 2


def test_save_load_roundtrip(tmp_path, gallery):
    path = gallery.save(tmp_path / "m.npz")
    g2 = Gallery.load(path)
    np.testing.assert_array_equal(g2.embeddings_, gallery.embeddings_)
    assert g2.names_ == gallery.names_ and list(g2.sample_ids_) == list(gallery.sample_ids_)
    assert g2.k == 3 and g2.pipeline == PIPE


def test_model_file_holds_no_pickles(tmp_path, gallery):
    path = gallery.save(tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as d:  # would raise on any object array
        for key in d.files:
            assert d[key].dtype != object


def test_load_refuses_non_models(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_text("garbage")
    with pytest.raises(ModelFileError, match=r"bad\.npz: not a facerec model"):
        Gallery.load(bad)
    other = tmp_path / "other.npz"
    np.savez(other, X=np.zeros(3))
    with pytest.raises(ModelFileError, match="not a facerec model"):
        Gallery.load(other)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, meta=np.array([{"format": "facerec-gallery"}], dtype=object))
    with pytest.raises(ModelFileError):
        Gallery.load(pickled)
    with pytest.raises(ModelFileError, match="no such model file"):
        Gallery.load(tmp_path / "missing.npz")


def test_pipeline_mismatch_is_refused(gallery):
    gallery.check_pipeline(embedder="fake", weights_id="fake-v1", dim=3)
    with pytest.raises(ModelFileError, match="built with embedder fake .* uses dlib"):
        gallery.check_pipeline(embedder="dlib", weights_id="dlib_v1", dim=128)


def test_failed_save_keeps_earlier_file(tmp_path, gallery, monkeypatch):
    path = gallery.save(tmp_path / "m.npz")
    before = path.read_bytes()
    import facerec.paths as paths

    def explode(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(paths.os, "fsync", explode)
    with pytest.raises(OSError):
        gallery.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temp file left behind


def test_subject_is_the_large_central_face_not_just_the_largest():
    from facerec.detect import Detection, by_prominence

    bystander = Detection((0, 0, 110, 130), 0.99)  # largest, in the corner
    subject = Detection((80, 70, 170, 180), 0.99)  # a little smaller, centred in 250x250
    tiny_centre = Detection((115, 115, 135, 135), 0.9)
    assert by_prominence([bystander, tiny_centre, subject], 250, 250)[0] is subject


def test_add_and_remove_people():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 4)).astype(np.float32)
    g = Gallery(k=1).fit(x[:4], np.array([0, 0, 1, 1]), ["ann", "bob"], ["a1", "a2", "b1", "b2"])
    g.add(x[4:], ["cid", "ann"], ["c1", "a3"])
    assert g.names_ == ["ann", "bob", "cid"] and g.labels_.tolist() == [0, 0, 1, 1, 2, 0]
    assert g.people() == [("ann", 3), ("bob", 2), ("cid", 1)]
    assert g.kneighbors(x[4:5], 1)[1][0, 0] == 4  # the added sample is searchable at once
    assert g.remove("bob") == 2
    assert g.people() == [("ann", 3), ("cid", 1)] and list(g.sample_ids_) == ["a1", "a2", "c1", "a3"]
    assert g.kneighbors(x[4:5], 1)[1][0, 0] == 2 and len(g) == 4
    with pytest.raises(NotEnrolledError, match="no person named"):
        g.remove("bob")
    with pytest.raises(InputError, match="expected embeddings"):
        g.add(x[:1, :3], ["x"], ["x1"])
