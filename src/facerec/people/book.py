"""A people folder (``facerec cluster --out DIR``): every face seen so far, the last grouping, and
what the user said (names, merges, "not this person"), kept between runs.

- ``faces.npz``: every face that passed the quality gate: id, file, box, detector score, its
  quality measures and its embedding (plain arrays: no pickles).
- ``people.json``: the state that must last: the pipeline the embeddings came from, the gallery
  names are enrolled in, the next cluster id, the merges (must-link groups) and rejections
  (cannot-link constraints).
- ``clusters.json``: the last run's answer (clusters, people, ungrouped and rejected faces).
- ``index.html``: the contact sheet of that answer.

Every file is written to a temporary name and renamed, in an order a rerun recovers from (faces,
then the answer, then the state; an id in the answer is never handed out again, whatever the
state says), so an interrupted run leaves each file whole and the next run consistent.
"""

from __future__ import annotations

import fcntl
import functools
import inspect
import io
import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facerec.errors import DataError, InputError
from facerec.paths import atomic_write_bytes

BOOK_VERSION = 1
QUALITY_FIELDS = ("size", "score", "sharpness", "yaw", "inside")


@dataclass
class Faces:
    """Faces as columns: ids (str), files (str), boxes float32 (n, 4), scores, quality float32
    (n, 5) in :data:`QUALITY_FIELDS` order (NaN yaw: no landmarks), embeddings float32 (n, d)."""

    ids: np.ndarray
    files: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    quality: np.ndarray
    embeddings: np.ndarray

    @classmethod
    def empty(cls, dim: int) -> Faces:
        return cls(
            np.zeros(0, "<U1"),
            np.zeros(0, "<U1"),
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.float32),
            np.zeros((0, len(QUALITY_FIELDS)), np.float32),
            np.zeros((0, dim), np.float32),
        )

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, idx) -> Faces:
        return Faces(*(a[idx] for a in self._arrays()))

    def _arrays(self):
        return (self.ids, self.files, self.boxes, self.scores, self.quality, self.embeddings)

    def union(self, other: Faces) -> Faces:
        """These faces, then ``other``'s that are not here yet (a photo seen again adds nothing)."""
        if len(other) and len(self) and other.embeddings.shape[1] != self.embeddings.shape[1]:
            raise InputError("the new faces' embeddings differ in length from the folder's")
        fresh = ~np.isin(other.ids, self.ids)
        _, first = np.unique(other.ids, return_index=True)
        once = np.zeros(len(other), bool)
        once[first] = True
        add = other.take(fresh & once)
        return Faces(*(np.concatenate([a, b]) for a, b in zip(self._arrays(), add._arrays())))

    def record(self, i: int) -> dict:
        q = dict(zip(QUALITY_FIELDS, (None if np.isnan(v) else round(float(v), 3) for v in self.quality[i])))
        return {
            "face_id": str(self.ids[i]),
            "file": str(self.files[i]),
            "box": [round(float(v), 1) for v in self.boxes[i]],
            "quality": q,
        }


def _remove_unused(folder: Path) -> None:
    try:
        (folder / ".lock").unlink()
        folder.rmdir()
    except OSError:  # another run came in meanwhile: the folder is theirs now
        pass


def locked(fn):
    """``fn`` with the write lock (:meth:`Book.writing`) of the folder its ``folder`` argument names."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def run(*args, **kw):
        folder = signature.bind(*args, **kw).arguments["folder"]
        with Book(Path(folder)).writing():
            return fn(*args, **kw)

    return run


@dataclass
class Book:
    """The lasting state of a people folder (``people.json``)."""

    path: Path
    pipeline: dict | None = None
    model: str | None = None  # the gallery names are enrolled in
    next_id: int = 1
    must_link: list[list[str]] = field(default_factory=list)  # merges: these faces are one person
    cannot_link: list[dict] = field(default_factory=list)  # {"face", "with": [...], "person"}

    @classmethod
    def open(cls, folder: str | Path) -> Book:
        path = Path(folder)
        if path.exists() and not path.is_dir():
            raise InputError(f"{path}: not a folder (the people folder holds clusters.json and faces.npz)")
        f = path / "people.json"
        if not f.is_file():
            return cls(path)
        try:
            d = json.loads(f.read_text())
            if d.get("version") != BOOK_VERSION:
                raise DataError(f"{f}: version {d.get('version')!r}, this facerec reads {BOOK_VERSION}")
            return cls(
                path,
                pipeline=d.get("pipeline"),
                model=d.get("model"),
                next_id=int(d.get("next_id", 1)),
                must_link=[[str(x) for x in g] for g in d.get("must_link", [])],
                cannot_link=[dict(c) for c in d.get("cannot_link", [])],
            )
        except (ValueError, TypeError, AttributeError) as exc:
            raise DataError(f"{f}: damaged people file ({exc}); move it away to start afresh") from None

    @contextmanager
    def writing(self):
        """Hold the folder's write lock while a run or a change lasts: a second writer is refused
        at once (two writers would each save what the other did not see)."""
        if self.path.exists() and not self.path.is_dir():
            raise InputError(f"{self.path}: not a folder (the people folder holds clusters.json and faces.npz)")
        made = not self.path.exists()
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / ".lock", "a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise InputError(
                    f"{self.path}: another facerec is changing this people folder; try again when it is done"
                ) from None
            try:
                yield self
            finally:
                if made and {p.name for p in self.path.iterdir()} == {".lock"}:
                    _remove_unused(self.path)  # a first run that failed leaves no empty people folder
                fcntl.flock(fh, fcntl.LOCK_UN)

    def save(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        d = {
            "version": BOOK_VERSION,
            "pipeline": self.pipeline,
            "model": self.model,
            "next_id": self.next_id,
            "must_link": self.must_link,
            "cannot_link": self.cannot_link,
        }
        atomic_write_bytes(self.path / "people.json", (json.dumps(d, indent=1) + "\n").encode())

    # -- the faces --------------------------------------------------------------------------------
    def load_faces(self, dim: int) -> Faces:
        f = self.path / "faces.npz"
        if not f.is_file():
            return Faces.empty(dim)
        try:
            with np.load(f, allow_pickle=False) as d:
                faces = Faces(*(d[k] for k in ("ids", "files", "boxes", "scores", "quality", "embeddings")))
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(f"{f}: damaged faces file ({exc}); move it away to embed again") from None
        if len(faces) and faces.embeddings.shape[1] != dim:
            raise DataError(f"{f}: {faces.embeddings.shape[1]}-d embeddings, this pipeline makes {dim}-d")
        return faces

    def save_faces(self, faces: Faces) -> None:
        buf = io.BytesIO()
        np.savez(
            buf,
            ids=faces.ids.astype(str),
            files=faces.files.astype(str),
            boxes=faces.boxes,
            scores=faces.scores,
            quality=faces.quality,
            embeddings=faces.embeddings,
        )
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.path / "faces.npz", buf.getvalue())

    # -- the last answer --------------------------------------------------------------------------
    def load_clusters(self) -> dict:
        f = self.path / "clusters.json"
        if not f.is_file():
            return {}
        try:
            return json.loads(f.read_text())
        except ValueError as exc:
            raise DataError(f"{f}: damaged clusters file ({exc}); run `facerec cluster` again") from None

    def save_clusters(self, answer: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.path / "clusters.json", (json.dumps(answer, indent=1) + "\n").encode())

    def cluster_faces(self, cluster_id: str) -> list[dict]:
        """The faces of cluster ``cluster_id`` in the last answer (InputError if there is none)."""
        answer = self.load_clusters()
        clusters = answer.get("clusters", {})
        key = str(cluster_id)
        if key not in clusters:
            known = ", ".join(list(clusters)[:12]) or "none"
            raise InputError(f"{self.path}: no cluster {key} in clusters.json (clusters: {known})")
        return clusters[key]
