"""``/v1/clusters``: the groups ``facerec cluster`` found in the people folder the service was
started with (``facerec serve --people DIR``), and naming, merging and rejecting them from the page.

Naming enrols the cluster's faces through the served gallery (the service holds its write lock),
so the name answers ``/v1/identify`` at once. Changes to the folder are one at a time (a lock) and
each is written atomically; one service per people folder.
"""

from __future__ import annotations

import threading
from pathlib import Path

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from facerec.errors import InputError
from facerec.server.limits import HTTPError, check_name
from facerec.server.routes import ERRORS, Service, service

FACES_SHOWN = 8  # thumbnails per cluster in a listing
MAX_CLUSTERS = 200  # clusters in one listing
THUMB_CACHE = 4096  # thumbnails kept in memory (face id -> data URL)

clusters = APIRouter(prefix="/v1/clusters", responses=ERRORS)


class PeopleFolder:
    """The service's people folder, its change lock and a bounded thumbnail cache."""

    def __init__(self, path: str | Path):
        from facerec.people.book import Book

        self.path = Path(path)
        book = Book.open(self.path)
        if not (self.path / "clusters.json").is_file():
            raise InputError(f"{self.path}: no clusters.json; run `facerec cluster PHOTOS --out {self.path}` first")
        self.pipeline = book.pipeline
        self.lock = threading.Lock()  # one change at a time
        self._thumbs: dict[str, str] = {}
        self._thumbs_lock = threading.Lock()  # listings run in several worker threads

    def thumbnail(self, face: dict, cache: dict) -> str:
        from facerec.people.sheet import thumbnail

        fid = face["face_id"]
        with self._thumbs_lock:
            if fid in self._thumbs:
                return self._thumbs[fid]
        made = thumbnail(face["file"], face["box"], cache)  # decoding outside the lock
        with self._thumbs_lock:
            while len(self._thumbs) >= THUMB_CACHE:
                del self._thumbs[next(iter(self._thumbs))]
            self._thumbs[fid] = made
        return made


class ClusterFace(BaseModel):
    face_id: str
    file: str = Field(description="the photo's file name (not its path on the server)")
    thumbnail: str = Field(description="a data: URL of the face, or empty when the photo is gone")


class Cluster(BaseModel):
    id: str
    size: int
    faces: list[ClusterFace]


class Clusters(BaseModel):
    clusters: list[Cluster]
    total: int = Field(description="unnamed clusters in the folder (the listing shows the biggest first)")
    named: int = Field(description="people named in the folder")


class NameBody(BaseModel):
    name: str


class MergeBody(BaseModel):
    into: str = Field(description="the cluster that stays")


class RejectBody(BaseModel):
    face_id: str


class NamedCluster(BaseModel):
    cluster: str
    name: str
    added: int = Field(description="faces enrolled by this call")
    images: int = Field(description="the person's faces in the gallery now")


class Changed(BaseModel):
    cluster: str
    size: int


def folder_of(svc: Service) -> PeopleFolder:
    if svc.people is None:
        raise HTTPError(404, "this service has no people folder: start it with `facerec serve --people DIR`")
    return svc.people


@clusters.get("", response_model=Clusters)
async def list_clusters(limit: int = 50, svc: Service = Depends(service)):
    if not 1 <= limit <= MAX_CLUSTERS:
        raise HTTPError(422, f"limit must be between 1 and {MAX_CLUSTERS}, got {limit}")
    folder = folder_of(svc)

    def work():
        from facerec.people.book import Book

        answer = Book.open(folder.path).load_clusters()
        cache: dict = {}
        out = []
        for cid, faces in list(answer.get("clusters", {}).items())[:limit]:
            shown = [
                ClusterFace(face_id=f["face_id"], file=Path(f["file"]).name, thumbnail=folder.thumbnail(f, cache))
                for f in faces[:FACES_SHOWN]
            ]
            out.append(Cluster(id=cid, size=len(faces), faces=shown))
        return Clusters(clusters=out, total=len(answer.get("clusters", {})), named=len(answer.get("people", {})))

    return await svc.run(work)


def _change(svc: Service, fn):
    """Run a folder change under its lock; a missing cluster or face is a 404."""
    folder = folder_of(svc)

    def work():
        with folder.lock:
            try:
                return fn(folder)
            except InputError as exc:
                msg = str(exc)
                status = 404 if "no cluster" in msg or "is not in" in msg else 409 if "another facerec" in msg else 400
                raise HTTPError(status, msg) from None

    return svc.run(work)


@clusters.post("/{cluster_id}/name", response_model=NamedCluster)
async def name(cluster_id: str, body: NameBody, svc: Service = Depends(service)):
    from facerec.people.naming import name_cluster

    person = check_name(body.name)

    def fn(folder):
        r = name_cluster(folder.path, cluster_id, person, served=svc.store)
        return NamedCluster(cluster=r.cluster, name=r.name, added=r.enrolled, images=r.total)

    return await _change(svc, fn)


@clusters.post("/{cluster_id}/merge", response_model=Changed)
async def merge(cluster_id: str, body: MergeBody, svc: Service = Depends(service)):
    from facerec.people.naming import merge_clusters

    def fn(folder):
        return Changed(cluster=body.into, size=merge_clusters(folder.path, body.into, cluster_id))

    return await _change(svc, fn)


@clusters.post("/{cluster_id}/reject", response_model=Changed)
async def reject(cluster_id: str, body: RejectBody, svc: Service = Depends(service)):
    from facerec.people.book import Book
    from facerec.people.naming import reject_face

    def fn(folder):
        reject_face(folder.path, cluster_id, body.face_id, served=svc.store)
        left = Book.open(folder.path).load_clusters()["clusters"].get(cluster_id, [])
        return Changed(cluster=cluster_id, size=len(left))

    return await _change(svc, fn)
