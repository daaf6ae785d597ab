"""Embedders by name: the built-in ones register in :mod:`facerec.embed`, plugins the same way.
This module imports no embedder: it is the leaf every backend imports."""

from __future__ import annotations

from collections.abc import Callable

from facerec.embed.base import Embedder, EmbedderSpec
from facerec.errors import InputError

_REGISTRY: dict[str, tuple[EmbedderSpec, Callable[..., Embedder]]] = {}


def register_embedder(spec: EmbedderSpec, factory: Callable[..., Embedder]) -> None:
    """Register a backend; ``factory(spec, weights=..., device=...)`` builds it."""
    _REGISTRY[spec.name] = (spec, factory)


# Names no backend registered that may still be built from registered ones (``A+B``, a fused embedder): each
# composer turns such a name into (spec, factory), or returns None; ``listed()`` names the ones worth
# showing a user (the measured pairs).
_COMPOSERS: list[tuple[Callable, Callable[[], list[str]]]] = []


def register_composer(compose: Callable, listed: Callable[[], list[str]]) -> None:
    """``compose(name, get_spec) -> (spec, factory) | None`` builds embedders from others by name."""
    _COMPOSERS.append((compose, listed))


def embedder_names() -> list[str]:
    """The registered embedders and the composed ones worth listing (any ``A+B`` works)."""
    composed = {name for _, listed in _COMPOSERS for name in listed()}
    return sorted({n for n, (spec, _) in _REGISTRY.items() if not spec.parts} | composed)


def get_spec(name: str) -> EmbedderSpec:
    """The spec of ``name``: a registered embedder, or ``A+B`` fused from registered ones."""
    if name not in _REGISTRY and isinstance(name, str):
        for compose, _ in _COMPOSERS:
            entry = compose(name, get_spec)
            if entry is not None:
                register_embedder(*entry)
                break
    try:
        return _REGISTRY[name][0]
    except KeyError:
        raise InputError(
            f"unknown embedder {name!r}; choose one of: {', '.join(sorted(_REGISTRY))}, or fuse two as A+B"
        ) from None


PRECISIONS = ("fp32", "bf16", "fp16", "int8")  # int8: CPU only (ONNX Runtime)


def create_embedder(
    name: str, *, weights: str | None = None, device: str = "auto", precision: str = "fp32", compile: bool = False
) -> Embedder:
    """Build the embedder registered as ``name``; weights load now, not at import.

    ``precision`` bf16/fp16 and ``compile`` (``torch.compile``) are speed options of the PyTorch
    embedders; fp32 is the reference. A backend that cannot honour them says so.
    """
    spec = get_spec(name)
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    options = {} if (precision == "fp32" and not compile) else {"precision": precision, "compile": compile}
    # a fused embedder passes them on to the parts that take them
    if options and not spec.speed_options:
        raise InputError(f"the {name} embedder runs in fp32 only: it has no precision or compile options")
    return _REGISTRY[name][1](spec, weights=weights, device=device, **options)
