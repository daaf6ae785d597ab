"""Where a gallery lives: a model file (``file``, the default) or Milvus (embedded Milvus Lite, or a
server or cluster by URI), behind one interface (:class:`Store`).

A store URI is a path (``models/knn.npz``), ``milvus:./galleries/lfw.db`` (Milvus Lite), or
``http://host:19530`` (a Milvus server); ``#name`` after a Milvus URI picks the collection.
"""

from __future__ import annotations

import os

from facerec.store.base import Changes, Store
from facerec.store.served import GalleryStore, RWLock, ServedGallery


def is_store_uri(uri: str | os.PathLike) -> bool:
    """Whether ``uri`` names a database store rather than a model file."""
    from facerec.store.milvus import is_milvus_uri

    return is_milvus_uri(str(uri))


def open_store(uri: str | os.PathLike, *, writer: bool = False, token: str | None = None) -> Store:
    """The store ``uri`` names. ``writer``: this process will change it (a file store then takes
    its exclusive lock). ``token``: a Milvus server's (default ``$FACEREC_MILVUS_TOKEN``)."""
    if is_store_uri(uri):
        from facerec.store.milvus import MilvusStore

        return MilvusStore(str(uri), token=token)
    from facerec.store.file import FileStore

    return FileStore(uri, writer=writer)


__all__ = ["Changes", "GalleryStore", "RWLock", "ServedGallery", "Store", "is_store_uri", "open_store"]
