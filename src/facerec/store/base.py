"""What every gallery store does, whatever holds the rows: a model file, Milvus Lite, a Milvus server.

A store keeps the gallery's rows (one per enrolled face: embedding, person, sample id and the
:data:`~facerec.gallery.estimator.COLUMNS`) and its header (the pipeline that made the embeddings, k, the
metric, the calibration's provenance). The service searches an in-process copy of the rows
(:class:`~facerec.store.served.ServedGallery`) and writes each change through the store before it
answers; a shared store (a database server) also tells each replica what the others changed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from facerec.gallery import Gallery


@dataclass
class Changes:
    """What other writers did since a replica last looked (:meth:`Store.changes_since`)."""

    rows: dict | None  # rows added or updated (as Gallery.rows() gives them), or None
    removed: list = field(default_factory=list)  # face ids removed
    seen_ms: int = 0  # the store's clock when it was asked: the next call asks from here
    reload: bool = False  # too much changed, or too long ago, to replay: load everything again
    distances: dict = field(default_factory=dict)  # face id -> (genuine, impostor) updated since


class Store(ABC):
    """A gallery's rows and header in one place. ``uri`` names it in messages (no secrets).

    ``saves_whole``: each change rewrites the whole gallery (a file), so the served copy applies
    the change first and saves it (rolling back on failure); otherwise only the changed rows are
    written, before the served copy shows them. ``shared``: other processes may write to it too.
    """

    uri: str = ""
    saves_whole: bool = False
    shared: bool = False

    # -- reading ------------------------------------------------------------------------------
    @abstractmethod
    def exists(self) -> bool:
        """Whether a gallery is stored here."""

    @abstractmethod
    def load(self) -> Gallery:
        """The whole gallery, fitted (ModelFileError when there is none or it is damaged)."""

    @abstractmethod
    def count(self) -> int:
        """Faces stored."""

    @abstractmethod
    def people(self) -> list[tuple[str, int]]:
        """(name, faces) per person, in enrolment order."""

    @abstractmethod
    def search(self, queries: np.ndarray, k: int, person: str | None = None) -> list[list[dict]]:
        """The store's own nearest-neighbour search (the service searches its in-process copy):
        per query, up to k hits ``{"face_id", "name", "sample_id", "distance"}``, nearest first,
        in the gallery's metric; ``person`` restricts it to that person's faces."""

    def changes_since(self, ms: int) -> Changes:
        """Rows others wrote since ``ms`` (the ``seen_ms`` of the previous call); shared stores only."""
        raise NotImplementedError

    # -- writing ------------------------------------------------------------------------------
    @abstractmethod
    def save(self, gallery: Gallery) -> None:
        """Store ``gallery`` whole, replacing what was there (train, store copy, a file's every change)."""

    def add(self, rows: dict, fresh: int = 0) -> None:
        """Write rows (new, or existing ones by face id whose columns changed); durable on return.
        The first ``fresh`` rows are faces the writer did not hold (a hint: they may be inserted
        without looking for an older row of the same id)."""
        raise NotImplementedError

    def update_distances(self, face_ids: list[str], genuine, impostor) -> None:
        """Store newer leave-one-out distances of existing faces (a neighbour of a new face); a
        store that saves whole writes them with the next save and ignores this."""
        return None

    def remove(self, face_ids: list[str], rows: dict | None = None) -> None:
        """Delete these faces (``rows``: their current rows, for a store that marks them removed
        for its replicas); durable on return."""
        raise NotImplementedError

    @abstractmethod
    def set_header(self, header: dict) -> None:
        """Replace the header (a recalibration writes its provenance here)."""

    def close(self) -> None:
        """Release the connection or lock."""
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
