"""The service's response types: FastAPI documents them at ``/docs`` and checks every answer against them."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    error: str = Field(description="what went wrong, naming the file or field")


class Health(BaseModel):
    status: str
    ready: bool = Field(description="the models are loaded: identify, verify and enrol answer without waiting")
    people: int
    faces: int
    embedder: str
    version: str
    error: str | None = None
    store: str = Field("", description="where the gallery lives: a model file or a Milvus URI")
    store_error: str | None = Field(None, description="why the last sync with a shared store failed, if it did")


class Person(BaseModel):
    name: str
    images: int


class People(BaseModel):
    people: list[Person]


class Removed(BaseModel):
    removed: str
    images: int


class Evidence(BaseModel):
    name: str
    distance: float


class IdentifiedFace(BaseModel):
    box: list[float] = Field(description="x1, y1, x2, y2 in the image's pixels")
    score: float = Field(description="the detector's confidence")
    pred: str = Field(description='the person, or "unknown" beyond the threshold')
    candidate: str = Field(description="the voted person, also when the answer is unknown")
    distance: float
    votes: int
    topk: list[Evidence]


class Identified(BaseModel):
    faces: list[IdentifiedFace]
    threshold: float | None = None
    threshold_source: str | None = None
    width: int
    height: int


class Verified(BaseModel):
    same: bool
    distance: float
    threshold: float
    threshold_source: str


class Skipped(BaseModel):
    file: str
    error: str


class Enrolled(BaseModel):
    name: str
    added: int
    images: int
    skipped: list[Skipped]


class ServiceConfig(BaseModel):
    max_upload_bytes: int
    max_pixels: int
    max_faces: int
    max_files: int
    max_video_bytes: int = Field(description="one /v1/identify-video upload's size")
    max_video_seconds: float = Field(description="a video's length")
    max_video_frames: int = Field(description="frames decoded for one video")
    max_video_fps: float = Field(description="a video's frame rate")
    max_video_faces: int = Field(description="faces embedded for one video")
    embedder: str
    people_folder: bool = Field(False, description="the service was started with --people: /v1/clusters answers")


class TrackBest(BaseModel):
    frame: int
    time_s: float
    box: list[float]


class VideoTrack(BaseModel):
    track: int = Field(description="the track's id in this video")
    pred: str = Field(description='the vote over the track\'s identified views: a person, or "unknown"')
    distance: float | None = Field(description="median distance of the winning views (None: no view identified)")
    start_s: float
    end_s: float
    frames: int = Field(description="detection frames the face was found in")
    embedded: int = Field(description="of those, the views embedded and identified: the voters")
    votes: dict[str, int]
    candidate: str = Field(description="the most voted person, also when the answer is unknown")
    best: TrackBest = Field(description="the largest, surest view")
    path: list[list[float]] = Field(description="[frame, time_s, x1, y1, x2, y2] at each detection")


class VideoIdentified(BaseModel):
    tracks: list[VideoTrack]
    summary: dict = Field(description="frames, fps, size, every, people with their time ranges, threshold, notes")
