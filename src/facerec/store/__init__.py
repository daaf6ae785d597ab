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


def check_store(uri: str | os.PathLike | None) -> None:
    """Refuse, before any work is done, a Milvus URI that is malformed or whose extra is not
    installed (``pip install 'facerec[milvus]'``); a path is checked when it is opened."""
    if uri is None or not is_store_uri(uri):
        return
    from facerec.extras import require
    from facerec.store.milvus import parse

    parse(str(uri))
    require("pymilvus")
    if str(uri).startswith("milvus:"):
        require("milvus_lite")


def open_store(uri: str | os.PathLike, *, writer: bool = False, token: str | None = None) -> Store:
    """The store ``uri`` names. ``writer``: this process will change it (a file store then takes
    its exclusive lock). ``token``: a Milvus server's (default ``$FACEREC_MILVUS_TOKEN``)."""
    if is_store_uri(uri):
        from facerec.store.milvus import MilvusStore

        return MilvusStore(str(uri), token=token)
    from facerec.store.file import FileStore

    return FileStore(uri, writer=writer)


__all__ = ["Changes", "GalleryStore", "RWLock", "ServedGallery", "Store", "check_store", "is_store_uri", "open_store"]
