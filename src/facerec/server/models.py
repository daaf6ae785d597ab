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
    note: str = Field(
        "", description="why the answer is not the plain vote: another face of the image is nearer that person"
    )
    confidence: str = Field(
        "",
        description='how sure, in words: "very likely", "likely", "uncertain" or "unknown", from how often a '
        "stranger comes this close to someone in this gallery (the pipeline's reference calibration)",
    )
    confidence_note: str = Field(
        "", description='the rate behind the words: "a stranger comes this close about 1 in 4,000 times"'
    )


class Identified(BaseModel):
    faces: list[IdentifiedFace]
    threshold: float | None = None
    threshold_source: str | None = None
    threshold_promise: str | None = Field(
        None,
        description='what the threshold promises, in words: "about 1 in 100 strangers would be named someone (...)"',
    )
    fpir: float | None = Field(None, description="the share of strangers the threshold would name someone")
    width: int
    height: int


class Verified(BaseModel):
    same: bool
    distance: float
    threshold: float
    threshold_source: str
    threshold_promise: str = Field("", description="what the threshold promises, in words")
    far: float | None = Field(None, description="the share of pairs of different people it lets pass, where measured")
    tar: float | None = Field(
        None, description="the share of pairs of one person's photos it lets pass, where measured"
    )


class Skipped(BaseModel):
    file: str
    error: str


class Enrolled(BaseModel):
    name: str
    added: int
    images: int
    skipped: list[Skipped]
    warnings: list[str] = Field(default_factory=list, description="what was stored but looks wrong")


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
    note: str = Field("", description="why the answer is not the track's own vote (a nearer track in the same frames)")


class VideoIdentified(BaseModel):
    tracks: list[VideoTrack]
    summary: dict = Field(description="frames, fps, size, every, people with their time ranges, threshold, notes")
