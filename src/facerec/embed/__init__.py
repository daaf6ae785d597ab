"""Embedders: face crop -> L2-normalised vector. Backends register by name."""

from facerec.embed.base import Embedder, EmbedderSpec, create_embedder, embedder_names, get_spec, register_embedder

__all__ = ["Embedder", "EmbedderSpec", "create_embedder", "embedder_names", "get_spec", "register_embedder"]
