"""Threshold calibration: leave-one-out distances and the FAR quantile, checked against brute force."""

import numpy as np
import pytest

from facerec.errors import InputError
from facerec.gallery.calibration import SortedDistances, gallery_threshold, loo_distances, per_sample_distances
from facerec.gallery.distance import pairwise_distances

from conftest import clusters


def calibrate(x, y, *, fpir, default_euclidean, metric="euclidean"):
    """A gallery's own threshold, as train derives it, for a pipeline with no reference table."""
    genuine, impostor = per_sample_distances(x, y, metric)
    return gallery_threshold(
        pipeline=None,
        metric=metric,
        photo_counts=np.bincount(y),
        fpir=fpir,
        default_euclidean=default_euclidean,
        distances=SortedDistances(genuine, impostor),
    )


def test_loo_distances_match_brute_force():
    x, y = clusters(people=5, per=4)
    y[-1] = 99  # a person with a single image has no genuine distance
    g, i = loo_distances(x, y, chunk=7)
    d = np.linalg.norm(x[:, None] - x[None], axis=2)
    np.fill_diagonal(d, np.inf)
    same = y[:, None] == y[None]
    exp_g = np.where(same, d, np.inf).min(1)
    np.testing.assert_allclose(g, exp_g[np.isfinite(exp_g)], atol=1e-5)
    np.testing.assert_allclose(i, np.where(same, np.inf, d).min(1), atol=1e-5)
    assert len(g) == len(x) - 1


def test_cosine_distances():
    x, _ = clusters(people=3, per=2)
    np.testing.assert_allclose(pairwise_distances(x, x, "cosine"), 1 - x @ x.T, atol=1e-6)


def test_threshold_hits_the_target_far_on_new_strangers():
    x, y = clusters(people=60, per=10, seed=1)
    cal = calibrate(x, y, fpir=0.05, default_euclidean=1.0)
    assert cal.source == "calibrated" and cal.impostor == 600 and cal.genuine == 600 and cal.fpir == 0.05
    assert cal.tar > 0.9
    strangers, _ = clusters(people=200, per=1, seed=2)  # people never enrolled
    nearest = pairwise_distances(strangers, x).min(axis=1)
    far = np.mean(nearest <= cal.threshold)
    assert 0.0 <= far <= 0.12  # about the 5 % asked for


def test_small_gallery_falls_back_and_says_why():
    x, y = clusters(people=2, per=3)
    cal = calibrate(x, y, fpir=0.01, default_euclidean=1.1)
    assert cal.source == "default" and cal.threshold == 1.1 and "no pipeline" in cal.reason
    assert "not measured" in cal.promise()
    cos = calibrate(x, y, fpir=0.01, metric="cosine", default_euclidean=1.1)
    assert cos.threshold == pytest.approx(1.1**2 / 2)
    with pytest.raises(InputError, match="fpir must be a rate between 0 and 1"):
        calibrate(x, y, fpir=0, default_euclidean=1.0)


def test_calibration_only_applies_to_the_alignment_it_was_measured_on():
    from facerec.gallery import Gallery
    from facerec.gallery.calibration import Calibration, resolve_threshold

    from conftest import FAKE  # registers the fake embedder

    x, y = clusters(people=3, per=2)
    from facerec.pipeline import PipelineConfig

    pipe = PipelineConfig(FAKE.name, FAKE.weights_id, "resize", 32, 4.0, x.shape[1])
    g = Gallery(pipeline=pipe).fit(x, y, ["a", "b", "c"], list("012345"))
    g.calibration = Calibration(0.7, "calibrated", fpir=0.01)
    assert resolve_threshold(g, detector="resize").source == "calibrated"
    other = resolve_threshold(g, detector="mtcnn")
    assert other.source == "default" and other.threshold == FAKE.default_threshold
    assert "the gallery's faces were found with resize, this query's with mtcnn" in other.describe()
    assert resolve_threshold(g, closed_set=True) is None
    assert resolve_threshold(g, threshold=0.9).source == "explicit"


def test_sorted_distances_follow_changes_as_a_fresh_sort_would():
    rng = np.random.default_rng(5)
    gen = np.round(rng.uniform(0.2, 1.0, 400), 2).astype(np.float32)  # ties on purpose
    imp = np.round(rng.uniform(0.8, 1.6, 400), 2).astype(np.float32)
    gen[::17] = np.inf  # people with one image
    sd = SortedDistances(gen, imp)
    labels = np.arange(400) % 40
    for _ in range(50):
        rows = rng.choice(400, 3, replace=False)
        new_g = np.round(rng.uniform(0.2, 1.0, 3), 2).astype(np.float32)
        new_i = np.round(rng.uniform(0.8, 1.6, 3), 2).astype(np.float32)
        sd.replace(gen[rows], imp[rows], new_g, new_i)
        gen[rows], imp[rows] = new_g, new_i
        np.testing.assert_array_equal(sd.genuine, np.sort(gen[np.isfinite(gen)]))
        np.testing.assert_array_equal(sd.impostor, np.sort(imp))
    kw = dict(pipeline=None, fpir=0.05, metric="euclidean", default_euclidean=1.1, photo_counts=np.bincount(labels))
    fresh = gallery_threshold(distances=SortedDistances(gen, imp), **kw)
    kept = gallery_threshold(distances=sd, **kw)
    assert (kept.threshold, kept.tar, kept.genuine, kept.impostor) == (
        fresh.threshold,
        fresh.tar,
        fresh.genuine,
        fresh.impostor,
    )
    assert fresh.threshold == float(np.quantile(imp, 0.05, method="lower"))


def test_sorted_distances_take_additions_removals_and_values_past_either_end():
    rng = np.random.default_rng(9)
    values = list(np.round(rng.uniform(0, 1, 50), 1).astype(np.float32))  # many ties
    sd = SortedDistances(np.array(values), np.zeros(0))
    for _ in range(300):
        out = [values.pop(int(i)) for i in sorted(rng.choice(len(values), rng.integers(0, 4), replace=False))[::-1]]
        new = list(np.round(rng.uniform(-0.5, 1.5, rng.integers(0, 5)), 1).astype(np.float32))
        new += [np.inf] * int(rng.integers(0, 2))  # not finite: never kept
        sd.replace(np.array(out + [np.nan], np.float32), (), np.array(new, np.float32), ())
        values += [v for v in new if np.isfinite(v)]
        np.testing.assert_array_equal(sd.genuine, np.sort(np.array(values, np.float32)))
        if len(values) < 10:
            values += [np.float32(0.5)] * 20
            sd = SortedDistances(np.array(values), np.zeros(0))
