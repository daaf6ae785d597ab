"""The k-NN vote never overrides clear evidence (issue: an exact match was outvoted)."""

import numpy as np
import pytest

from facerec.errors import InputError
from facerec.gallery import Gallery
from facerec.gallery.calibration import Calibration
from facerec.gallery.identify import identify


def unit(v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


def at_distance(base, d, seed):
    """A unit vector at Euclidean distance ``d`` from unit ``base``."""
    rng = np.random.default_rng(seed)
    r = rng.normal(size=base.shape).astype(np.float32)
    r -= (r @ base) * base
    r /= np.linalg.norm(r)
    cos = 1 - d * d / 2
    return unit(cos * base + np.sqrt(1 - cos * cos) * r)


@pytest.fixture
def probe():
    return unit(np.random.default_rng(0).normal(size=16))


def gallery_of(rows, labels):
    return Gallery(k=3).fit(np.stack(rows), np.array(labels), ["alice", "bob"], [f"s{i}" for i in range(len(rows))])


def test_exact_match_is_not_outvoted(probe):
    """Alice enrolled from one photo, probed with that photo; two of Bob's faces are nearer than
    the rest but farther than 0: the answer is Alice (was: Bob by 2 votes to 1)."""
    g = gallery_of([probe, at_distance(probe, 0.5, 1), at_distance(probe, 0.55, 2)], [0, 1, 1])
    for cal in (Calibration(0.8, "explicit"), None):
        (p,) = identify(g, probe[None], calibration=cal)
        assert p.name == "alice" and p.distance < 1e-3 and p.votes == 1


def test_a_near_neighbour_inside_the_threshold_beats_farther_ones_outside_it(probe):
    """Alice at 0.3 (inside 0.8), Bob twice at 0.9 (outside): Alice (was: unknown, since Bob won
    the vote and his nearest sample is beyond the threshold)."""
    g = gallery_of([at_distance(probe, 0.3, 1), at_distance(probe, 0.9, 2), at_distance(probe, 0.95, 3)], [0, 1, 1])
    (p,) = identify(g, probe[None], calibration=Calibration(0.8, "explicit"))
    assert p.name == "alice" and p.distance == pytest.approx(0.3, abs=1e-4)
    (closed,) = identify(g, probe[None], calibration=None)  # closed set: the seed's plain vote
    assert closed.name == "bob"


def test_the_vote_still_decides_among_neighbours_inside_the_threshold(probe):
    g = gallery_of([at_distance(probe, 0.3, 1), at_distance(probe, 0.35, 2), at_distance(probe, 0.4, 3)], [0, 1, 1])
    (p,) = identify(g, probe[None], calibration=Calibration(0.8, "explicit"))
    assert p.name == "bob" and p.votes == 2


def test_nobody_inside_the_threshold_is_unknown_with_the_voted_candidate(probe):
    g = gallery_of([at_distance(probe, 0.9, 1), at_distance(probe, 1.0, 2), at_distance(probe, 1.05, 3)], [0, 1, 1])
    (p,) = identify(g, probe[None], calibration=Calibration(0.8, "explicit"))
    assert p.name == "unknown" and p.candidate == "bob"


def test_nan_embeddings_are_refused(probe):
    g = gallery_of([probe, at_distance(probe, 0.5, 1)], [0, 1])
    with pytest.raises(InputError, match="NaN"):
        identify(g, np.full((1, 16), np.nan, np.float32))
