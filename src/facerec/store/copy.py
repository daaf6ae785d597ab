"""``facerec store copy SRC DST``: a gallery from one store into another, checked.

The copy holds every row and the header; it is checked by counting the faces and people on both
sides and by asking both the same questions (each of a sample of stored faces, as a query, must
get the same nearest faces from the source and the copy)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facerec.errors import StoreError
from facerec.gallery.calibration import ensure_distances
from facerec.store import open_store


@dataclass
class CopyReport:
    faces: int
    people: int
    checked_queries: int
    same_answers: int


def copy_gallery(
    src: str, dst: str, *, token: str | None = None, check: int = 200, overwrite: bool = False
) -> CopyReport:
    """Copy the gallery at ``src`` to ``dst`` (replacing one there only with ``overwrite``)."""
    source = open_store(src, token=token)
    target = open_store(dst, writer=True, token=token)
    try:
        if str(src) == str(dst):
            raise StoreError(f"{src}: source and destination are the same store")
        g = source.load()
        ensure_distances(g)  # older files: the copy carries the calibration's data
        if target.exists() and not overwrite:
            raise StoreError(f"{dst}: a gallery is stored there already; pass --overwrite to replace it")
        target.save(g)
        copied = target.load()
        if len(copied) != len(g) or copied.people() != g.people():
            raise StoreError(
                f"{dst}: the copy holds {len(copied)} faces of {len(copied.people())} people, "
                f"the source {len(g)} of {len(g.people())}"
            )
        rng = np.random.default_rng(0)
        sample = rng.choice(len(g), size=min(check, len(g)), replace=False)
        queries = g.embeddings_[sample]
        k = min(5, len(g))
        a, b = g.kneighbors(queries, k), copied.kneighbors(queries, k)
        ids_a, ids_b = g.face_ids_[a[1]], copied.face_ids_[b[1]]
        same = int(sum(set(x) == set(y) for x, y in zip(ids_a.tolist(), ids_b.tolist())))
        if same != len(sample):
            raise StoreError(
                f"{dst}: {len(sample) - same} of {len(sample)} check queries got other answers than from {src}"
            )
        return CopyReport(len(copied), len(copied.people()), len(sample), same)
    finally:
        source.close()
        target.close()
