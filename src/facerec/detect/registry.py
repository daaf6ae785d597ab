"""Detectors by name: the built-in ones register in :mod:`facerec.detect`, plugins the same way."""

from __future__ import annotations

from collections.abc import Callable

from facerec.detect.base import Detector
from facerec.detect.padding import PaddedRetry
from facerec.errors import InputError

_REGISTRY: dict[str, Callable[..., Detector]] = {}


def register_detector(name: str, factory: Callable[..., Detector]) -> None:
    """Register a detector; ``factory(device=..., batch_size=...)`` builds it."""
    _REGISTRY[name] = factory


def detector_names() -> list[str]:
    return list(_REGISTRY)


def create_detector(
    name: str, *, device: str = "cpu", batch_size: int = 64, weights_dir=None, pad_misses: bool = True
) -> Detector:
    """Build detector ``name``; ``weights_dir`` is a folder searched first for the model files of
    detectors that have them (their factory takes ``weights_dir``). With ``pad_misses`` (the
    default) it is wrapped in :class:`PaddedRetry`, so it finds faces that fill the frame; False
    gives the detector alone (benchmarks compare the two)."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise InputError(f"unknown detector {name!r}; choose one of: {', '.join(_REGISTRY)}") from None
    import inspect

    takes_dir = "weights_dir" in inspect.signature(factory).parameters
    det = factory(device=device, batch_size=batch_size, **({"weights_dir": weights_dir} if takes_dir else {}))
    if not pad_misses or getattr(det, "whole_image", False):  # ``resize`` never misses
        return det
    return PaddedRetry(det)
