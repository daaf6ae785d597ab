"""``/v1/clusters``: the groups ``facerec cluster`` found in the people folder the service was
started with (``facerec serve --people DIR``), and naming, merging and rejecting them from the page.

Naming enrols the cluster's faces through the served gallery (the service holds its write lock),
so the name answers ``/v1/identify`` at once. The folder's work is
:class:`facerec.people.served.ServedPeopleFolder`'s; one service per people folder.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from facerec.errors import InputError
from facerec.people.served import Listing, ServedPeopleFolder
from facerec.server.limits import HTTPError, check_name
from facerec.server.routes import Service, service
from facerec.server.statuses import ERRORS, in_worker

MAX_CLUSTERS = 200  # clusters in one listing

clusters = APIRouter(prefix="/v1/clusters", responses=ERRORS)


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


def folder_of(svc: Service) -> ServedPeopleFolder:
    if svc.people is None:
        raise HTTPError(404, "this service has no people folder: start it with `facerec serve --people DIR`")
    return svc.people


@clusters.get("", response_model=Clusters)
async def list_clusters(limit: int = 50, svc: Service = Depends(service)):
    if not 1 <= limit <= MAX_CLUSTERS:
        raise HTTPError(422, f"limit must be between 1 and {MAX_CLUSTERS}, got {limit}")
    folder = folder_of(svc)
    return await in_worker(svc, lambda: listed(folder.listing(limit)))


def listed(r: Listing) -> Clusters:
    return Clusters(
        clusters=[
            Cluster(
                id=c.id,
                size=c.size,
                faces=[ClusterFace(face_id=f.face_id, file=f.file, thumbnail=f.thumbnail) for f in c.faces],
            )
            for c in r.clusters
        ],
        total=r.total,
        named=r.named,
    )


def _refused_change(exc: Exception) -> HTTPError | None:
    """A missing cluster or face is a 404; a second writer on the folder (another facerec) a 409."""
    if not isinstance(exc, InputError):
        return None
    msg = str(exc)
    return HTTPError(
        404 if "no cluster" in msg or "is not in" in msg else 409 if "another facerec" in msg else 400, msg
    )


@clusters.post("/{cluster_id}/name", response_model=NamedCluster)
async def name(cluster_id: str, body: NameBody, svc: Service = Depends(service)):
    person = check_name(body.name)
    folder = folder_of(svc)

    def work():
        r = folder.name(cluster_id, person, served=svc.store)
        return NamedCluster(cluster=r.cluster, name=r.name, added=r.enrolled, images=r.total)

    return await in_worker(svc, work, first=_refused_change)


@clusters.post("/{cluster_id}/merge", response_model=Changed)
async def merge(cluster_id: str, body: MergeBody, svc: Service = Depends(service)):
    folder = folder_of(svc)

    def work():
        return Changed(cluster=body.into, size=folder.merge(cluster_id, body.into))

    return await in_worker(svc, work, first=_refused_change)


@clusters.post("/{cluster_id}/reject", response_model=Changed)
async def reject(cluster_id: str, body: RejectBody, svc: Service = Depends(service)):
    folder = folder_of(svc)

    def work():
        return Changed(cluster=cluster_id, size=folder.reject(cluster_id, body.face_id, served=svc.store))

    return await in_worker(svc, work, first=_refused_change)
