"""The ``file`` store: the gallery as one ``.npz`` (the model file ``train`` writes by default).

Every change rewrites the file atomically (temp file, fsync, rename), so a crash leaves either the
old file or the new one. A writer holds an exclusive lock on ``MODEL.lock`` beside it for as long as
it is open: a second ``facerec serve`` on the same file is refused at start instead of silently
overwriting the first one's enrolments. Readers (``infer``) take no lock. The lock and the saves
follow symbolic links to the real file, so a second writer through a link to the same file is
refused too, and a link (``current.npz -> releases/v3.npz``) is still a link after a save.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import numpy as np

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
        lock = real.with_name(real.name + ".lock")
        lock.parent.mkdir(parents=True, exist_ok=True)
        fh = open(lock, "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            through = f" (through a link to {real})" if real != Path(os.path.abspath(self.path)) else ""
            raise StoreError(
                f"{self.path}{through}: the model file is open for writing by {holder}; two writers would lose each "
                "other's enrolments. Stop that one, or keep the gallery in Milvus (--store milvus:… or a "
                "server URI) to run replicas"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}\n")
        fh.flush()
        self._lock_fh = fh

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
            fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
            self._lock_fh.close()
            self._lock_fh = None
