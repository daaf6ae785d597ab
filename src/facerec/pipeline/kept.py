"""Pipelines kept between library calls, so that ``facerec.verify`` or ``facerec.embed`` pays for
loading its models once per process, not once per call.

Building a pipeline loads a detector and an embedder (CASIA FaceNet: its weights, an ONNX Runtime
session; MTCNN's three networks): about a second, where the work on one photo takes tens of
milliseconds. The front door (:mod:`facerec.api`) and :meth:`facerec.Gallery.enrol` ask here for
the pipeline their options describe; the last :data:`MAX_KEPT` configurations are kept, each with
a lock, as a pipeline is used by one call at a time. :func:`clear_pipelines` lets them go. Each
costs memory: MTCNN with CASIA FaceNet raised a process's resident memory by 400 MB at its first
``verify`` (39 -> 439 MB; 188 MB after ``clear_pipelines``, the allocator keeping some), and the
first call took 0.74 s, the next 0.09 s (2-core Xeon, 2026-12-07, /tmp script in the #33 note).

A pipeline built by the caller (``Pipeline.create``) is never kept here: it is the caller's.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from contextlib import contextmanager

from facerec.pipeline.core import Pipeline
from facerec.pipeline.options import PipelineOptions

#: Configurations kept at once; the least recently used goes first.
MAX_KEPT = 4

_lock = threading.Lock()
_kept: OrderedDict[tuple, tuple[object, threading.Lock]] = OrderedDict()  # pipelines and detectors


@contextmanager
def kept_pipeline(options: PipelineOptions, gallery=None):
    """The pipeline ``options`` describe (following ``gallery``'s, when given, as
    :meth:`Pipeline.for_model` does), built on first use and kept; held for this ``with`` block."""

    def build():
        return Pipeline.for_model(gallery, options) if gallery is not None else Pipeline.create(options)

    key = _key(options, gallery)
    if key is None:  # an embedder object, or options that cannot be compared: built for this call
        yield build()
        return
    with _held(key, build) as pipe:
        yield pipe


@contextmanager
def kept_detector(name: str, device: str):
    """The detector ``name`` on ``device`` (already resolved), built on first use and kept with the
    pipelines (``facerec.detect`` loads no embedder)."""
    from facerec.detect.registry import create_detector

    with _held(("detector", name, device), lambda: create_detector(name, device=device, batch_size=1)) as det:
        yield det


@contextmanager
def _held(key: tuple, build):
    """The object kept under ``key`` (``build()`` on first use; the least recently used let go past
    :data:`MAX_KEPT`), held by this caller alone for the ``with`` block."""
    with _lock:
        entry = _kept.get(key)
        if entry is not None:
            _kept.move_to_end(key)
    if entry is None:
        made = build()  # outside the table's lock: another configuration's call need not wait for it
        with _lock:
            entry = _kept.setdefault(key, (made, threading.Lock()))
            _kept.move_to_end(key)
            while len(_kept) > MAX_KEPT:
                _kept.popitem(last=False)
    kept, in_use = entry
    with in_use:
        yield kept


def clear_pipelines() -> None:
    """Let every kept pipeline go (the next call builds its own again)."""
    with _lock:
        _kept.clear()


def kept_count() -> int:
    with _lock:
        return len(_kept)


def _key(options: PipelineOptions, gallery) -> tuple | None:
    if not isinstance(options.embedder, (str, type(None))):
        return None
    try:
        hash(options)
    except TypeError:
        return None
    if gallery is None:
        return ("options", options)
    p = gallery.pipeline
    if p is None:
        return None
    # the gallery's pipeline, as recorded: two galleries of one pipeline share the kept one
    return ("gallery", json.dumps(p.to_dict(), sort_keys=True, default=str), options)
