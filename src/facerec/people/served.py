"""A people folder held open by a long-running service (``facerec serve --people DIR``): the
listing of its clusters with face thumbnails, and the changes a user asks for from the page
(name a cluster, merge two, reject a face), as :mod:`facerec.people.naming` makes them.

The folder's own write lock (:meth:`facerec.people.book.Book.writing`) refuses a second writer
at once, which is right between two programs; within one service, requests arrive together, so
changes here wait their turn on a lock instead. Thumbnails are cut once and kept (bounded): a page
lists the same faces again after every change.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from facerec.errors import InputError
from facerec.people.book import Book
from facerec.people.naming import Named, merge_clusters, name_cluster, reject_face
from facerec.people.sheet import thumbnail

FACES_SHOWN = 8  # thumbnails per cluster in a listing
THUMB_CACHE = 4096  # thumbnails kept in memory (face id -> data URL)


@dataclass
class ShownFace:
    face_id: str
    file: str  # the photo's file name, not its path on the server
    thumbnail: str  # a data: URL of the face, or "" when the photo is gone


@dataclass
class ClusterView:
    id: str
    size: int
    faces: list[ShownFace]  # the first FACES_SHOWN


@dataclass
class Listing:
    clusters: list[ClusterView]
    total: int  # unnamed clusters in the folder (a listing shows the biggest first)
    named: int  # people named in the folder


class ServedPeopleFolder:
    """A people folder that ``facerec cluster`` has grouped, as one service holds it.

    ``gallery_pipeline`` (a pipeline's ``to_dict()``) and ``gallery_uri``: the gallery the service
    serves. Naming a cluster enrols its stored faces there, and new photos are embedded with that
    gallery's pipeline, so a folder whose faces come from another pipeline is refused."""

    def __init__(self, path: str | Path, *, gallery_pipeline: dict | None = None, gallery_uri: str = ""):
        self.path = Path(path)
        book = Book.open(self.path)
        if not (self.path / "clusters.json").is_file():
            raise InputError(f"{self.path}: no clusters.json; run `facerec cluster PHOTOS --out {self.path}` first")
        self.pipeline = book.pipeline
        if gallery_pipeline is not None and self.pipeline is not None and self.pipeline != gallery_pipeline:
            differ = sorted(k for k, v in gallery_pipeline.items() if self.pipeline.get(k) != v)
            raise InputError(
                f"{path}: its faces come from another pipeline than {gallery_uri}'s ({', '.join(differ)} differ); "
                f"run `facerec cluster PHOTOS --model {gallery_uri} --out {path}` with a new folder"
            )
        self.lock = threading.Lock()  # one change at a time
        self._thumbs: dict[str, str] = {}
        self._thumbs_lock = threading.Lock()  # listings run in several worker threads

    def listing(self, limit: int) -> Listing:
        """The first ``limit`` unnamed clusters of the last answer, a few faces of each."""
        answer = Book.open(self.path).load_clusters()
        clusters = answer.get("clusters", {})
        decoded: dict = {}  # one decoded photo at a time (its faces come together)
        shown = [
            ClusterView(
                id=cid,
                size=len(faces),
                faces=[
                    ShownFace(face_id=f["face_id"], file=Path(f["file"]).name, thumbnail=self.thumbnail(f, decoded))
                    for f in faces[:FACES_SHOWN]
                ],
            )
            for cid, faces in list(clusters.items())[:limit]
        ]
        return Listing(clusters=shown, total=len(clusters), named=len(answer.get("people", {})))

    def name(self, cluster_id: str, name: str, *, served) -> Named:
        """Enrol the cluster's faces as ``name`` through ``served`` (the service's
        :class:`~facerec.store.ServedGallery`, which holds its write lock)."""
        with self.lock:
            return name_cluster(self.path, cluster_id, name, served=served)

    def merge(self, cluster_id: str, into: str) -> int:
        """Cluster ``cluster_id`` is the same person as ``into``; the size of ``into`` now."""
        with self.lock:
            return merge_clusters(self.path, into, cluster_id)

    def reject(self, cluster_id: str, face_id: str, *, served) -> int:
        """Face ``face_id`` is not the person of cluster ``cluster_id``; the faces left in it."""
        with self.lock:
            reject_face(self.path, cluster_id, face_id, served=served)
            return len(Book.open(self.path).load_clusters()["clusters"].get(cluster_id, []))

    def thumbnail(self, face: dict, decoded: dict) -> str:
        """The face's thumbnail, from the cache or cut now (``decoded``: the caller's photo cache)."""
        fid = face["face_id"]
        with self._thumbs_lock:
            if fid in self._thumbs:
                return self._thumbs[fid]
        made = thumbnail(face["file"], face["box"], decoded)  # decoding outside the lock
        with self._thumbs_lock:
            while len(self._thumbs) >= THUMB_CACHE:
                del self._thumbs[next(iter(self._thumbs))]
            self._thumbs[fid] = made
        return made
