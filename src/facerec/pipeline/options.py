"""Everything a :class:`~facerec.pipeline.Pipeline` is built from, in one object: what the
embeddings are (the choices a :class:`~facerec.pipeline.config.PipelineConfig` records) and how
they are computed (device, precision, batches, cache...). Built once at a front door (the command
line's options, or the keywords of ``facerec.train(...)``), checked once, passed down whole."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path

from facerec.align.croppers import alignment_parts
from facerec.detect.registry import detector_names
from facerec.embed.base import Embedder, EmbedderSpec
from facerec.embed.registry import PRECISIONS, get_spec
from facerec.errors import InputError
from facerec.limits import DEFAULT_MAX_PIXELS
from facerec.pipeline.config import (
    DEFAULT_ALIGNMENT,
    DEFAULT_DETECTOR,
    DEFAULT_EMBEDDER,
    DEFAULT_MARGIN,
    PipelineConfig,
)
from facerec.pipeline.decode import DECODERS

#: The choices that decide what an embedding is (a model file's header records them); None in
#: :class:`PipelineOptions` leaves one open, and these fill it when nothing else does.
DEFAULT_CHOICES = {
    "embedder": DEFAULT_EMBEDDER,
    "detector": DEFAULT_DETECTOR,
    "margin": DEFAULT_MARGIN,
    "flip": False,
    "alignment": DEFAULT_ALIGNMENT,
}


@dataclass(frozen=True, kw_only=True)
class PipelineOptions:
    """How to build a pipeline. Frozen: change one with :meth:`replace` (checked again).

    What the embeddings are; None leaves the choice open: a model's (or store's) own when the
    pipeline follows one (:meth:`following`), else the default (:meth:`with_defaults`):
        embedder: a registered embedder's name (``facerec embedders``), or an Embedder already built.
        detector: ``mtcnn`` (default), ``mtcnn-reference``, ``dlib``, ``dlib+mtcnn``, ``yunet``, ``resize``...
        margin: the margin crop's border, px of the output crop.
        flip: average each face's embedding with its mirror image's.
        alignment: ``box`` (each embedder's own crop of the detector box) or ``five-point`` (the
            detector's landmarks onto the embedder's template); a fused embedder's one per part (``box+five-point``).
        weights: an explicit weights file for the embedder.

    How they are computed:
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        precision, compile: ``fp32``/``bf16``/``fp16``/``int8`` (CPU) and ``torch.compile`` for
            embedders that support them (the FaceNet ones).
        batch_size: images per detection batch (None: 64; 512 on a GPU).
        decoder: ``auto`` (nvJPEG on CUDA, else PIL), ``pil`` or ``nvjpeg``.
        workers: decoding threads (None: 2; 6 on a GPU).
        max_pixels: the largest image decoded (decompression bombs are refused).
        cache_dir: a folder for the content-addressed cache (image content + configuration); None: no cache.
        weights_dir: a folder searched first for downloadable model files (YuNet's), before
            ``$FACEREC_MODELS`` and the model cache (:mod:`facerec.runtime.weights`).
    """

    embedder: str | Embedder | None = None
    detector: str | None = None
    margin: float | None = None
    flip: bool | None = None
    alignment: str | None = None
    weights: str | os.PathLike | None = None
    device: str = "auto"
    precision: str = "fp32"
    compile: bool = False
    batch_size: int | None = None
    decoder: str = "auto"
    workers: int | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    cache_dir: str | os.PathLike | None = None
    weights_dir: str | os.PathLike | None = None

    def __post_init__(self):
        # what can be checked without building anything (the device is checked when it is resolved)
        e = self.embedder
        if isinstance(e, str):
            get_spec(e)  # an unknown name is refused here, before any model loads
        elif e is not None and not isinstance(getattr(e, "spec", None), EmbedderSpec):
            raise InputError(f"embedder must be a registered name or an Embedder, got {type(e).__name__}")
        if self.detector is not None and self.detector not in detector_names():
            raise InputError(f"unknown detector {self.detector!r}; choose one of: {', '.join(detector_names())}")
        m = self.margin
        if m is not None and (isinstance(m, bool) or not isinstance(m, Real) or not math.isfinite(m) or m < 0):
            raise InputError(f"margin must be a finite number >= 0, got {m!r}")
        # truthiness, as the keywords always took them (flip=1 is flip=True)
        if self.flip is not None:
            object.__setattr__(self, "flip", bool(self.flip))
        object.__setattr__(self, "compile", bool(self.compile))
        if self.alignment is not None:
            if not isinstance(self.alignment, str):
                raise InputError(f"alignment must be a string, got {self.alignment!r}")
            alignment_parts(self.alignment, len(self.alignment.split("+")))  # each part's name
        for name in ("weights", "cache_dir", "weights_dir"):
            if not isinstance(getattr(self, name), (str, os.PathLike, type(None))):
                raise InputError(f"{name} must be a path, got {type(getattr(self, name)).__name__}")
        if not isinstance(self.device, str):
            raise InputError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if self.precision not in PRECISIONS:
            raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.decoder not in DECODERS:
            raise InputError(f"decoder must be one of {', '.join(DECODERS)}, got {self.decoder!r}")
        _check_count(self.batch_size, "batch size", optional=True)
        _check_count(self.workers, "decoding workers", optional=True)
        _check_count(self.max_pixels, "max_pixels", optional=False)

    def replace(self, **changes) -> PipelineOptions:
        """A copy with ``changes`` (checked like a new one); an unknown name is a TypeError."""
        return dataclasses.replace(self, **changes) if changes else self

    def chosen(self) -> dict:
        """The choices that are set (not open), by name."""
        return {k: getattr(self, k) for k in DEFAULT_CHOICES if getattr(self, k) is not None}

    def differences(self, config: PipelineConfig) -> dict:
        """The choices set here that ``config`` made otherwise, by name."""
        return {k: v for k, v in self.chosen().items() if v != getattr(config, k)}

    def following(self, config: PipelineConfig) -> PipelineOptions:
        """Each open choice taken from ``config``: the pipeline whose embeddings compare with a
        model's or a store's (a choice that is set stays; the caller checks it may)."""
        return self.replace(**{k: getattr(config, k) for k in DEFAULT_CHOICES if getattr(self, k) is None})

    def with_defaults(self) -> PipelineOptions:
        """Each open choice at its default (a new pipeline: nothing to follow)."""
        return self.replace(**{k: v for k, v in DEFAULT_CHOICES.items() if getattr(self, k) is None})

    def spec(self) -> EmbedderSpec:
        """The embedder's spec (the default embedder's when the choice is open); loads nothing."""
        e = self.embedder if self.embedder is not None else DEFAULT_EMBEDDER
        return get_spec(e) if isinstance(e, str) else e.spec

    def config(self) -> PipelineConfig:
        """What these options' embeddings are (open choices at their defaults), without loading a
        model: what a model file's or a store's header records."""
        o = self.with_defaults()
        spec = o.spec()
        weights_id = spec.weights_id if not o.weights else f"{spec.weights_id}:{Path(o.weights).name}"
        return PipelineConfig(
            spec.name, weights_id, o.detector, spec.input_size, float(o.margin), spec.dim, o.flip, alignment=o.alignment
        )


def as_options(options: PipelineOptions | None = None, **keywords) -> PipelineOptions:
    """The options of a front-door call: ``options`` (default: all defaults) with ``keywords``
    (any :class:`PipelineOptions` field: ``embedder=``, ``detector=``, ``device=``...) over them.
    This is what lets ``facerec.train("people/", embedder="facenet-casia")`` and
    ``Pipeline.create(embedder=..., device=...)`` stay one-liners while the layers below receive
    one object."""
    if options is None:
        return PipelineOptions(**keywords)
    if not isinstance(options, PipelineOptions):
        raise InputError(f"options must be PipelineOptions, got {type(options).__name__}")
    return options.replace(**keywords)


def _check_count(value, what: str, *, optional: bool) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise InputError(f"{what} must be >= 1, got {value!r}")
