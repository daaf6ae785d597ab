"""What a user says about the groups: "this cluster is Ada" (its faces are enrolled in the gallery),
"these two clusters are one person", "this face is not this person". Each is kept in the people
folder (or the gallery) so that every later ``facerec cluster`` run honours it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facerec.errors import InputError
from facerec.names import check_name
from facerec.people.book import Book, locked


@dataclass
class Named:
    name: str
    cluster: str
    enrolled: int  # faces this call added to the gallery
    total: int  # the person's faces in the gallery now
    model: str
    created: bool  # a new gallery was made


def _rows(book: Book, faces: list[dict]):
    """The stored faces (ids, files, boxes, embeddings) of these answer entries."""
    stored = book.load_faces(int(book.pipeline["dim"]) if book.pipeline else 0)
    row = {str(f): i for i, f in enumerate(stored.ids)}
    missing = [f["face_id"] for f in faces if f["face_id"] not in row]
    if missing:
        raise InputError(f"{book.path}: faces.npz lacks {len(missing)} faces of clusters.json (e.g. {missing[0]})")
    return stored.take(np.array([row[f["face_id"]] for f in faces], np.int64))


@locked
def name_cluster(
    folder, cluster_id: str, name: str, *, model: str | None = None, token: str | None = None, served=None
) -> Named:
    """Enrol cluster ``cluster_id``'s faces as ``name`` in the gallery ``model`` (the folder's own
    when omitted; made when it does not exist yet), and record the cluster as that person.
    ``served``: a :class:`~facerec.store.ServedGallery` to enrol through instead (the service's,
    which holds its gallery's write lock)."""
    from facerec.pipeline.config import PipelineConfig

    name = check_name(name)  # the API's rule: a name given here can be addressed there
    book = Book.open(folder)
    faces = book.cluster_faces(cluster_id)
    got = _rows(book, faces)
    config = PipelineConfig.from_dict(book.pipeline)
    columns = {"face_id": list(got.ids), "source": list(got.files), "box": got.boxes}
    created = False
    if served is not None:
        model = _same_gallery(book, served.store.uri)
        served.gallery.check_pipeline(
            embedder=config.embedder, weights_id=config.weights_id, dim=config.dim, source=served.store.uri
        )
        before = served.gallery.count_of(name)
        total = served.enrol(name, got.embeddings, list(got.files), columns)
        enrolled = total - before
    else:
        # the folder's gallery, made inside it on the first name when none was given: naming a
        # cluster needs no flag, and `facerec infer --model FOLDER/gallery.npz` then knows them
        model = _same_gallery(book, model or book.model or str(Path(folder) / FOLDER_GALLERY))
        created, enrolled, total = _enrol_into(model, token, config, name, got, columns)
    answer = book.load_clusters()
    answer["clusters"].pop(str(cluster_id))
    answer.setdefault("people", {}).setdefault(name, []).extend(faces)
    answer["model"] = model
    book.model = model
    book.save_clusters(answer)
    book.save()
    _sheet(book, answer)
    return Named(name, str(cluster_id), enrolled, total, model, created)


#: The gallery a people folder's names go into when no --model was ever given.
FOLDER_GALLERY = "gallery.npz"


def _enrol_into(model: str, token, config, name: str, got, columns) -> tuple[bool, int, int]:
    """Enrol ``got``'s faces as ``name`` in the gallery ``model``, made when missing:
    (made, faces added, the person's faces now)."""
    from facerec.gallery import Gallery
    from facerec.gallery.calibration import open_set_calibration, per_sample_distances
    from facerec.store import ServedGallery, open_store

    with open_store(model, writer=True, token=token) as store:
        if not store.exists():
            labels = np.zeros(len(got), np.int64)
            g = Gallery(pipeline=config)
            g.fit(got.embeddings, labels, [name], list(got.files), columns)
            g.genuine_d_[:], g.impostor_d_[:] = per_sample_distances(got.embeddings, labels, g.metric)
            g.calibration = open_set_calibration(g)
            store.save(g)  # a model file: written to a temporary name and renamed
            return True, len(got), len(got)
        g = store.load()
        g.check_pipeline(embedder=config.embedder, weights_id=config.weights_id, dim=config.dim, source=model)
        served = ServedGallery(store, gallery=g, sync_s=0)
        before = g.count_of(name)
        total = served.enrol(name, got.embeddings, list(got.files), columns)
        return False, total - before, total


@locked
def merge_clusters(folder, keep: str, other: str) -> int:
    """Cluster ``other`` joins ``keep`` (for good: a must-link group); returns its size now."""
    book = Book.open(folder)
    if str(keep) == str(other):
        raise InputError(f"cannot merge cluster {keep} with itself")
    a, b = book.cluster_faces(keep), book.cluster_faces(other)
    answer = book.load_clusters()
    answer["clusters"][str(keep)] = sorted(a + b, key=lambda f: f.get("distance", 0))
    answer["clusters"].pop(str(other))
    book.must_link.append([f["face_id"] for f in a + b])
    book.save_clusters(answer)
    book.save()
    _sheet(book, answer)
    return len(a) + len(b)


@locked
def reject_face(
    folder, cluster_or_person: str, face_id: str, *, model: str | None = None, token: str | None = None, served=None
):
    """ "``face_id`` is not this person": it leaves the cluster (or the named person, whose gallery
    forgets it) and never joins those faces (or that person) again."""
    from facerec.store import ServedGallery, open_store

    book = Book.open(folder)
    answer = book.load_clusters()
    key = str(cluster_or_person)
    if key in answer.get("clusters", {}):
        group, person = answer["clusters"][key], None
    elif key in answer.get("people", {}):
        group, person = answer["people"][key], key
    else:
        raise InputError(f"{book.path}: no cluster or person {key!r} in clusters.json")
    face = next((f for f in group if f["face_id"] == face_id), None)
    if face is None:
        raise InputError(f"{book.path}: face {face_id} is not in {'person' if person else 'cluster'} {key}")
    rest = [f for f in group if f["face_id"] != face_id]
    if person is not None and served is not None:
        served.remove_faces([face_id])
    elif person is not None:
        model = model or book.model
        if not model:
            raise InputError("name the gallery the person is enrolled in: --model")
        with open_store(model, writer=True, token=token) as store:
            g = store.load()
            ServedGallery(store, gallery=g, sync_s=0).remove_faces([face_id])
    book.cannot_link.append({"face": face_id, "with": [f["face_id"] for f in rest], "cluster": key, "person": person})
    group[:] = rest
    if not rest:  # its last face: the cluster (or person's listing) is gone
        answer["clusters" if person is None else "people"].pop(key)
    answer["ungrouped"].append(
        {k: v for k, v in face.items() if k != "distance"} | {"reason": f"not this person: rejected from {key}"}
    )
    book.save_clusters(answer)
    book.save()
    _sheet(book, answer)
    return face


def gallery_name(model: str) -> str:
    """How the folder records its gallery: a store URI as given, a model file as an absolute path
    (so a run from another directory finds it)."""
    from facerec.store import is_store_uri

    return str(model) if is_store_uri(model) else os.path.abspath(str(model))


def _same_gallery(book: Book, model: str) -> str:
    """The gallery names go into: the folder's own; another one is refused (the folder's named
    people would then live in two galleries, and a later run would see only one)."""
    model = gallery_name(model)
    if book.model and gallery_name(book.model) != model:
        raise InputError(
            f"{book.path}: its people are named in {book.model}, not {model}; name them there "
            "(or start a new people folder for this gallery)"
        )
    return model


def _sheet(book: Book, answer: dict) -> None:
    from facerec.people.sheet import write_sheet

    write_sheet(book.path / "index.html", answer)
