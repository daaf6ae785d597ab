"""Search backends behind one interface: ``exact`` (matmul + top-k), ``faiss-hnsw``, ``faiss-ivf``,
``faiss-people`` (closest people first, then their faces exactly).

The backend and its parameters are chosen at train time and stored with the model, so a loaded
model searches the way it was built to.
"""

from __future__ import annotations

import inspect

from facerec.errors import InputError
from facerec.gallery.index.base import METRICS, SearchIndex
from facerec.gallery.index.by_person import PeopleIndex
from facerec.gallery.index.exact import ExactIndex
from facerec.gallery.index.faiss_index import HNSWIndex, IVFIndex

BACKENDS = {cls.name: cls for cls in (ExactIndex, HNSWIndex, IVFIndex, PeopleIndex)}


def create_index(backend: str = "exact", *, metric: str = "euclidean", **params) -> SearchIndex:
    """Build an empty index; ``params`` are the backend's keyword options (see each class)."""
    cls = BACKENDS.get(backend)
    if cls is None:
        raise InputError(f"unknown index backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "metric")]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise InputError(f"index {backend!r} has no option {', '.join(unknown)}; its options: {', '.join(allowed)}")
    try:
        return cls(metric, **params)
    except (TypeError, ValueError) as exc:
        raise InputError(f"index {backend!r}: {exc}") from None


def parse_index_params(items: list[str] | None) -> dict:
    """``["nprobe=16", "m=32"]`` -> ``{"nprobe": 16, "m": 32}`` (numbers become numbers)."""
    out: dict = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"index parameters are KEY=VALUE, got {item!r}")
        for cast in (int, float):
            try:
                out[key] = cast(value)
                break
            except ValueError:
                continue
        else:
            out[key] = value
    return out


__all__ = ["BACKENDS", "METRICS", "SearchIndex", "create_index", "parse_index_params"]
