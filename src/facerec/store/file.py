"""The ``file`` store: the gallery as one ``.npz`` (the model file ``train`` writes by default).

Every change rewrites the file atomically (temp file, fsync, rename), so a crash leaves either the
old file or the new one. A writer holds an exclusive lock on ``MODEL.lock`` beside it for as long as
it is open (removed again when it closes; one left by a killed process is free, see
:mod:`facerec.file_lock`): a second ``facerec serve`` on the same file is refused at start instead of silently
overwriting the first one's enrolments. Readers (``infer``) take no lock. The lock and the saves
follow symbolic links to the real file, so a second writer through a link to the same file is
refused too, and a link (``current.npz -> releases/v3.npz``) is still a link after a save.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from facerec import file_lock
from facerec.errors import StoreError
from facerec.gallery import Gallery
from facerec.paths import real_path
from facerec.store.base import Store


class FileStore(Store):
    saves_whole = True

    def __init__(self, path: str | os.PathLike, *, writer: bool = False):
        self.path = Path(path)
        self.uri = str(self.path)
        self._lock_fh = None
        if writer:
            self._lock()

    def _lock(self) -> None:
        real = real_path(self.path)
        self._lock_path = real.with_name(real.name + ".lock")
        try:
            self._lock_fh = file_lock.acquire(self._lock_path)
        except file_lock.LockHeld as held:
            through = f" (through a link to {real})" if real != Path(os.path.abspath(self.path)) else ""
            raise StoreError(
                f"{self.path}{through}: the model file is open for writing by {held.holder}; two writers would lose "
                "each other's enrolments. Stop that one, or keep the gallery in Milvus (--store milvus:… or a "
                "server URI) to run replicas"
            ) from None

    def exists(self) -> bool:
        return self.path.is_file()

    def load(self) -> Gallery:
        return Gallery.load(self.path)

    def count(self) -> int:
        return len(self.load())

    def people(self) -> list[tuple[str, int]]:
        return self.load().people()

    def search(self, queries, k, person=None):
        g = self.load()
        if person is not None:
            if not g.count_of(person):
                return [[] for _ in queries]
            g = g.without(g.labels_ != g.names_.index(person))
        dist, idx = g.kneighbors(np.asarray(queries, np.float32), k)
        return [
            [
                {
                    "face_id": str(g.face_ids_[i]),
                    "name": g.names_[g.labels_[i]],
                    "sample_id": str(g.sample_ids_[i]),
                    "distance": float(d),
                }
                for d, i in zip(drow, irow)
                if i >= 0
            ]
            for drow, irow in zip(dist, idx)
        ]

    def save(self, gallery: Gallery) -> None:
        gallery.save(self.path)

    def set_header(self, header: dict) -> None:
        g = self.load()
        g.calibration = Gallery.from_header(header, self.uri).calibration
        g.save(self.path)

    def close(self) -> None:
        if self._lock_fh is not None:
            file_lock.release(self._lock_fh, self._lock_path)
            self._lock_fh = None
