"""Embedders: face crop -> L2-normalised vector. One module per backend; the built-in ones are
registered below, one line each, the same call a plugin makes. :mod:`facerec.embed.registry` is
the leaf they all import: it imports no backend."""

from __future__ import annotations

from facerec.embed import dlib_resnet, facenet, fused, onnx_embedder
from facerec.embed.base import Embedder, EmbedderSpec
from facerec.embed.onnx_presets import preset_names
from facerec.embed.registry import (
    PRECISIONS,
    create_embedder,
    embedder_names,
    get_spec,
    register_composer,
    register_embedder,
)

register_embedder(facenet.VGGFACE2, facenet.load_vggface2)
register_embedder(facenet.CASIA, facenet.load_casia)
register_embedder(dlib_resnet.DLIB, dlib_resnet.load_dlib)
# onnx: first: a model's path may hold a "+", which is not a fused embedder's
register_composer(onnx_embedder.compose, preset_names)
register_composer(fused.compose, fused.measured_names)

__all__ = [
    "PRECISIONS",
    "Embedder",
    "EmbedderSpec",
    "create_embedder",
    "embedder_names",
    "get_spec",
    "register_composer",
    "register_embedder",
]
