"""How sure an answer is, in words (facerec.gallery.confidence): from the reference's measured
stranger rate at the face's distance, never contradicting the measured threshold that decided."""

from types import SimpleNamespace

import numpy as np

from facerec.gallery.calibration import Calibration
from facerec.gallery.confidence import ConfidenceScale
from facerec.gallery.reference import reference_for

CASIA = {
    "embedder": "facenet-casia",
    "detector": "mtcnn",
    "weights_id": "facenet-20180408-102900-casia-webface",
    "alignment": "box",
    "flip": False,
    "margin": 32.0,
}


def gallery(people: int, photos: int):
    return SimpleNamespace(pipeline=CASIA, metric="euclidean", photo_counts=lambda: np.full(people, photos))


def answer(distance: float, unknown: bool = False):
    return SimpleNamespace(distance=distance, unknown=unknown)


def test_the_words_follow_the_measured_rate():
    assert reference_for(CASIA) is not None  # the shipped table
    family = gallery(5, 5)
    measured = Calibration(threshold=0.97, source="reference", fpir=0.01)
    scale = ConfidenceScale(family, measured)
    near, edge = scale.of(answer(0.5)), scale.of(answer(0.95))
    assert near.words == "very likely" and near.stranger_rate <= 1e-3
    assert edge.words == "likely" and edge.stranger_rate > near.stranger_rate
    assert "a stranger comes this close about 1 in" in near.explain()
    far = scale.of(answer(1.3, unknown=True))
    assert far.words == "unknown" and far.explain() == ""


def test_uncertain_only_where_no_measured_threshold_decided():
    big = gallery(62, 48)  # many photos each: the reference's rates are extrapolated upwards
    far_but_named = answer(1.05)
    assert (
        ConfidenceScale(big, Calibration(threshold=1.1, source="calibrated", fpir=0.01)).of(far_but_named).words
        == "likely"
    )
    assert ConfidenceScale(big, None).of(far_but_named).words == "uncertain"  # a closed-set answer
    explicit = Calibration(threshold=1.2, source="explicit")
    assert ConfidenceScale(big, explicit).of(far_but_named).words == "uncertain"


def test_no_reference_no_rate():
    other = SimpleNamespace(
        pipeline={**CASIA, "embedder": "fake", "weights_id": "fake-v1"},
        metric="euclidean",
        photo_counts=lambda: np.full(3, 3),
    )
    c = ConfidenceScale(other, Calibration(threshold=0.5, source="default")).of(answer(0.1))
    assert c.words == "likely" and c.stranger_rate is None and c.explain() == "no measured rate for this model"
