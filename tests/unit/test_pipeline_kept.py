"""facerec.pipeline.kept: the front door's pipelines are built once per configuration and kept,
the least recently used let go past MAX_KEPT, and clear_pipelines lets them all go."""

import numpy as np

import facerec
from facerec.pipeline import kept
from facerec.pipeline.options import PipelineOptions

from conftest import FAKE_INSTANCES, person_image

FAKE = {"embedder": "fake", "detector": "fake", "device": "cpu"}


def test_one_configuration_builds_its_models_once():
    facerec.clear_pipelines()
    before = len(FAKE_INSTANCES)
    image = person_image(0, 0)
    first = facerec.embed(image, **FAKE)
    for _ in range(5):
        np.testing.assert_array_equal(facerec.embed(image, **FAKE), first)
    facerec.verify(image, person_image(0, 1), **FAKE)
    assert len(FAKE_INSTANCES) == before + 1  # embed and verify share the configuration's pipeline
    facerec.clear_pipelines()
    facerec.embed(image, **FAKE)
    assert len(FAKE_INSTANCES) == before + 2


def test_the_least_recently_used_goes_past_the_limit(monkeypatch):
    facerec.clear_pipelines()
    monkeypatch.setattr(kept, "MAX_KEPT", 2)
    for margin in (0, 2, 4):
        with kept.kept_pipeline(PipelineOptions(margin=margin, **FAKE)):
            pass
    assert kept.kept_count() == 2
    before = len(FAKE_INSTANCES)
    with kept.kept_pipeline(PipelineOptions(margin=4, **FAKE)):  # kept
        pass
    with kept.kept_pipeline(PipelineOptions(margin=0, **FAKE)):  # gone: built again
        pass
    assert len(FAKE_INSTANCES) == before + 1
    facerec.clear_pipelines()
    assert kept.kept_count() == 0


def test_a_pipeline_of_the_callers_own_is_not_kept(fake_model):
    facerec.clear_pipelines()
    gallery = facerec.load_model(fake_model)
    pipe = facerec.Pipeline.for_model(gallery, device="cpu")
    facerec.identify(person_image(1, 30), gallery, pipeline=pipe)
    assert kept.kept_count() == 0
    facerec.identify(person_image(1, 30), gallery)  # the gallery's own, kept
    assert kept.kept_count() == 1
