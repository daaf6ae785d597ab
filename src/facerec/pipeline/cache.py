"""The optional content-addressed cache: image content + pipeline configuration -> its faces with embeddings."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from facerec.paths import atomic_write_bytes
from facerec.pipeline.results import Face


class FaceCache:
    """``content key -> [Face, ...]`` ([] = no face; the first is the subject), stored as one
    plain ``.npz`` per pipeline configuration (the file name carries its key). A missing or
    damaged cache file only means recomputing."""

    def __init__(self, path: str | os.PathLike | None, dim: int):
        self.path = Path(path) if path else None
        self.dim = dim
        self.max_entries: int | None = None  # None = unbounded (files); a server sets a bound
        self._entries: dict[str, list[Face]] = {}
        self._dirty = False
        if self.path and self.path.is_file():
            self._load()

    def _load(self) -> None:
        try:
            with np.load(self.path, allow_pickle=False) as d:
                keys, counts = d["keys"], d["counts"]
                boxes, scores, emb, marks = d["boxes"], d["scores"], d["embeddings"], d["landmarks"]
                # files from before full boxes were kept: every face inside its image
                full = d["full_boxes"] if "full_boxes" in d.files else np.full((len(boxes), 4), np.nan, np.float32)
            if emb.shape[1:] != (self.dim,):
                return
            pos = 0
            for key, n in zip(keys.tolist(), counts.tolist()):
                self._entries[key] = [
                    Face(
                        tuple(boxes[j].tolist()),
                        float(scores[j]),
                        None if np.isnan(marks[j]).any() else marks[j],
                        emb[j],
                        j == pos,
                        None if np.isnan(full[j]).any() else tuple(full[j].tolist()),
                    )
                    for j in range(pos, pos + n)
                ]
                pos += n
        except (OSError, ValueError, KeyError, IndexError):
            self._entries.clear()

    def get(self, key: str) -> list[Face] | None:
        return self._entries.get(key)

    def put(self, key: str, faces: list[Face]) -> None:
        self._entries[key] = faces
        self._dirty = True
        if self.max_entries is not None and len(self._entries) > self.max_entries:
            del self._entries[next(iter(self._entries))]  # oldest first: a long-running server stays bounded

    def __len__(self) -> int:
        return len(self._entries)

    def save(self) -> None:
        if not self.path or not self._dirty:
            return
        keys = list(self._entries)
        faces = [f for k in keys for f in self._entries[k]]
        buf = io.BytesIO()
        np.savez(
            buf,
            keys=np.array(keys, dtype="<U64"),
            counts=np.array([len(self._entries[k]) for k in keys], np.int32),
            boxes=np.array([f.box for f in faces], np.float32).reshape(-1, 4),
            scores=np.array([f.score for f in faces], np.float32),
            embeddings=np.array([f.embedding for f in faces], np.float32).reshape(len(faces), self.dim),
            landmarks=np.array(
                [np.full((5, 2), np.nan) if f.landmarks is None else f.landmarks for f in faces], np.float32
            ).reshape(-1, 5, 2),
            full_boxes=np.array(
                [np.full(4, np.nan) if f.full_box is None else f.full_box for f in faces], np.float32
            ).reshape(-1, 4),
        )
        atomic_write_bytes(self.path, buf.getvalue())
        self._dirty = False
