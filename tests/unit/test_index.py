"""Every search backend returns the same top-k as exact search on small galleries."""

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from facerec.errors import InputError
from facerec.gallery import Gallery
from facerec.gallery.index import BACKENDS, create_index, parse_index_params


def clustered(n_people=60, per_person=5, dim=64, seed=0):
    """People as unit-sphere points, several noisy images each (like face embeddings)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_people, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = np.repeat(np.arange(n_people), per_person)
    x = centres[labels] + 0.35 * rng.standard_normal((len(labels), dim)) / np.sqrt(dim)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = centres + 0.35 * rng.standard_normal(centres.shape) / np.sqrt(dim)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return x.astype(np.float32), labels, q.astype(np.float32)


EXACT_ENOUGH = {
    "exact": {},
    "faiss-hnsw": {"ef_search": 128},
    "faiss-ivf": {"nprobe": 1000},
    "faiss-people": {"people": 8},
}


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_same_topk_as_brute_force(backend, metric):
    x, labels, q = clustered()
    ref = NearestNeighbors(n_neighbors=5, metric=metric, algorithm="brute").fit(x)
    want_d, want_i = ref.kneighbors(q)
    got_d, got_i = create_index(backend, metric=metric, **EXACT_ENOUGH[backend]).build(x, labels).search(q, 5)
    assert got_i.shape == (len(q), 5) and got_i.dtype == np.int64 and got_d.dtype == np.float32
    np.testing.assert_array_equal(got_i, want_i)
    np.testing.assert_allclose(got_d, want_d, atol=2e-4)


def test_unnormalised_euclidean_is_exact():
    rng = np.random.default_rng(1)
    x, q = rng.standard_normal((300, 16)) * 5, rng.standard_normal((20, 16)) * 5
    want_d, want_i = NearestNeighbors(n_neighbors=3).fit(x).kneighbors(q)
    got_d, got_i = create_index("exact").build(x).search(q, 3)
    np.testing.assert_array_equal(got_i, want_i)
    np.testing.assert_allclose(got_d, want_d, rtol=1e-4)


def test_k_larger_than_gallery_and_empty_queries():
    x, _, q = clustered(n_people=2, per_person=1)
    d, i = create_index("exact").build(x).search(q, 10)
    assert d.shape == (2, 2) and sorted(i[0]) == [0, 1]
    d, i = create_index("exact").build(x).search(np.zeros((0, x.shape[1]), np.float32), 3)
    assert d.shape == (0, 2)


def test_bad_backend_and_options_are_named():
    with pytest.raises(InputError, match="unknown index backend 'annoy'"):
        create_index("annoy")
    with pytest.raises(InputError, match="no option nprob.*nprobe"):
        create_index("faiss-ivf", nprob=3)
    with pytest.raises(InputError, match="KEY=VALUE"):
        parse_index_params(["nprobe"])
    assert parse_index_params(["nprobe=16", "ratio=0.5", "x=a"]) == {"nprobe": 16, "ratio": 0.5, "x": "a"}
    with pytest.raises(InputError, match="empty"):
        create_index("exact").search(np.zeros((1, 4), np.float32), 1)


@pytest.mark.parametrize(
    "backend,params",
    [
        ("faiss-ivf", {"nlist": 8, "nprobe": 8}),
        ("faiss-hnsw", {"m": 16, "ef_search": 100}),
        ("faiss-people", {"people": 8, "nprobe": 4}),
    ],
)
def test_index_is_stored_with_the_model(tmp_path, backend, params):
    x, labels, q = clustered()
    g = Gallery(k=3, index=backend, index_params=params).fit(
        x, labels, [f"p{i}" for i in range(60)], [str(i) for i in range(len(x))]
    )
    g.save(tmp_path / "m.npz")
    back = Gallery.load(tmp_path / "m.npz")
    assert back.index == backend and back.index_params == params
    assert type(back.index_).__name__ == type(g.index_).__name__
    exact = Gallery(k=3).fit(x, labels, [f"p{i}" for i in range(60)], [str(i) for i in range(len(x))])
    np.testing.assert_array_equal(back.kneighbors(q, 3)[1], exact.kneighbors(q, 3)[1])


def test_bad_index_fails_before_fit():
    with pytest.raises(InputError, match="unknown index backend"):
        Gallery(index="nope")


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_add_grows_the_index_like_a_rebuild(backend):
    x, labels, q = clustered()  # the split cuts person 40's images in two: old person, new faces
    grown = create_index(backend, **EXACT_ENOUGH[backend]).build(x[:202], labels[:202]).add(x[202:], labels[202:])
    assert grown.size == len(x)
    want = NearestNeighbors(n_neighbors=3).fit(x).kneighbors(q)[1]
    np.testing.assert_array_equal(grown.search(q, 3)[1], want)


def test_people_index_needs_labels_and_pads_short_answers():
    x, labels, q = clustered()
    with pytest.raises(InputError, match="labels"):
        create_index("faiss-people").build(x)
    with pytest.raises(InputError, match="expected 300 labels"):
        create_index("faiss-people").build(x, labels[:10])
    # one person probed, 5 faces each: the other 5 of k=10 are missing (-1, inf), as documented
    d, i = create_index("faiss-people", people=1).build(x, labels).search(q[:3], 10)
    assert (i[:, :5] >= 0).all() and (i[:, 5:] == -1).all() and np.isinf(d[:, 5:]).all()
    assert (labels[i[:, :5]] == np.arange(3)[:, None]).all()  # each query's own person


def test_people_index_finds_people_enrolled_later():
    x, labels, q = clustered()
    index = create_index("faiss-people", people=4).build(x[labels < 30], labels[labels < 30])
    index.add(x[labels >= 30], labels[labels >= 30])
    found = index.search(q, 1)[1][:, 0]
    rows = np.concatenate([np.flatnonzero(labels < 30), np.flatnonzero(labels >= 30)])
    assert (labels[rows[found]] == np.arange(60)).mean() >= 0.95


def test_people_index_adds_a_fresh_mean_when_a_person_doubles():
    """A person first enrolled from one odd photo is found by their later photos' mean."""
    rng = np.random.default_rng(3)
    x, labels, q = clustered()
    odd = rng.standard_normal((1, x.shape[1])).astype(np.float32)
    odd /= np.linalg.norm(odd)
    index = create_index("faiss-people", people=1).build(
        np.concatenate([x[labels != 7], odd]), np.concatenate([labels[labels != 7], [7]])
    )
    assert index.search(q[7:8], 1)[1][0, 0] != len(x) - 5  # person 7 = one far-away photo: not found
    index.add(x[labels == 7], labels[labels == 7])  # 1 -> 6 faces: a fresh mean joins the graph
    d, i = index.search(q[7:8], 3)
    assert (i[0] >= len(x) - 4).all()  # the three nearest are person 7's new faces (rows 296..300)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_people_index_in_principal_directions_is_exact_on_low_rank_faces(metric):
    """Embeddings that vary in 64 of 256 directions (as real ones vary in few): searching the means in the
    top 64 principal directions of the mean faces loses no neighbour."""
    x, labels, q = clustered(n_people=150)
    basis = np.linalg.qr(np.random.default_rng(5).standard_normal((256, 64)))[0].T.astype(np.float32)
    x, q = x @ basis, q @ basis  # still unit vectors, now in 256-d
    index = create_index("faiss-people", metric=metric, people=8, dims=64).build(x, labels)
    assert index._basis is not None and index._basis[1].shape == (256, 64)
    want = NearestNeighbors(n_neighbors=5, metric=metric, algorithm="brute").fit(x).kneighbors(q)[1]
    np.testing.assert_array_equal(index.search(q, 5)[1], want)
