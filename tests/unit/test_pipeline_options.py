"""PipelineOptions: the one object the front doors build and every layer below receives — checked
once when made, before any model loads; open choices follow a model's or take the defaults."""

from __future__ import annotations

import dataclasses

import pytest

from facerec import PipelineOptions
from facerec.errors import InputError
from facerec.pipeline.config import DEFAULT_DETECTOR, DEFAULT_EMBEDDER, DEFAULT_MARGIN
from facerec.pipeline.options import as_options


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"embedder": "no-such-net"}, "unknown embedder 'no-such-net'"),
        ({"detector": "no-such-detector"}, "unknown detector 'no-such-detector'"),
        ({"margin": -1}, "margin must be a finite number >= 0"),
        ({"margin": float("nan")}, "margin must be a finite number >= 0"),
        ({"alignment": "sideways"}, "alignment must be one of"),
        ({"precision": "fp8"}, "precision must be one of"),
        ({"decoder": "magic"}, "decoder must be one of"),
        ({"batch_size": 0}, "batch size must be >= 1"),
        ({"batch_size": True}, "batch size must be >= 1"),
        ({"max_pixels": 0}, "max_pixels must be >= 1"),
        ({"weights_dir": 3}, "weights_dir must be a path"),
    ],
)
def test_a_bad_option_is_refused_when_made_naming_it(bad, message):
    with pytest.raises(InputError, match=message):
        PipelineOptions(**bad)


def test_options_are_frozen_keyword_only_and_replaced_with_a_check():
    o = PipelineOptions(embedder="fake", detector="fake", margin=4, device="cpu")
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.margin = 8
    with pytest.raises(TypeError):
        PipelineOptions("fake")  # keyword-only: a positional choice is ambiguous
    assert o.replace(margin=8).margin == 8 and o.margin == 4
    with pytest.raises(InputError, match="margin"):
        o.replace(margin=-2)


def test_open_choices_follow_a_model_or_take_the_defaults():
    made = PipelineOptions(embedder="fake", detector="fake", margin=4.0, flip=True).config()
    open_ = PipelineOptions(device="cpu")
    follows = open_.following(made)
    assert (follows.embedder, follows.detector, follows.margin, follows.flip) == ("fake", "fake", 4.0, True)
    assert follows.device == "cpu"
    defaults = open_.with_defaults()
    assert (defaults.embedder, defaults.detector, defaults.margin) == (
        DEFAULT_EMBEDDER,
        DEFAULT_DETECTOR,
        DEFAULT_MARGIN,
    )
    # a choice that is set stays, and is reported as differing from the model
    other = PipelineOptions(detector="resize").following(made)
    assert other.detector == "resize" and PipelineOptions(detector="resize").differences(made) == {"detector": "resize"}


def test_config_says_what_the_embeddings_are_without_loading_a_model():
    c = PipelineOptions(embedder="fake", detector="fake", margin=4).config()
    assert (c.embedder, c.detector, c.margin, c.flip, c.alignment) == ("fake", "fake", 4.0, False, "box")
    assert c.dim == 16


def test_the_front_doors_keywords_build_the_same_object():
    o = PipelineOptions(embedder="fake", detector="fake", margin=4, device="cpu")
    assert as_options(embedder="fake", detector="fake", margin=4, device="cpu") == o
    assert as_options(o, margin=8) == o.replace(margin=8)
    with pytest.raises(InputError, match="options must be PipelineOptions"):
        as_options({"embedder": "fake"})
