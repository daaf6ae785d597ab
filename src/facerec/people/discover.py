"""``facerec cluster``: every face of a photo collection through the pipeline and the quality gate,
the enrolled people recognised first, the rest grouped into people.

A run adds its photos' faces to the people folder's (a photo seen before adds nothing) and groups
every face that is not a named person's again, so clusters grow as the collection does. What the
user said lasts: named people are in the gallery (their faces are theirs by id, new ones by the
open-set rule of ``infer``), merges hold the merged faces together, and a rejected face never
rejoins the faces it was rejected from. Unnamed clusters keep their ids from run to run: a new
cluster takes the id of the old one it shares the most faces with.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from facerec.datasets import Sample, collect_inputs
from facerec.errors import InputError
from facerec.gallery.estimator import face_key
from facerec.people.algorithms import DEFAULT_ALGORITHM, DEFAULT_MIN_FACES, cluster
from facerec.people.book import QUALITY_FIELDS, Book, Faces, locked
from facerec.people.metrics import UNGROUPED
from facerec.people.quality import QualityGate
from facerec.people.threshold import cluster_threshold

GROUP_TOO_SMALL = "fewer similar faces than --min-faces"


@dataclass
class Scan:
    faces: Faces  # faces that passed the gate, with embeddings
    rejected: list[dict] = field(default_factory=list)  # {face_id, file, box, quality, reason}
    no_face: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    images: int = 0


def scan(files: list[Path], pipe, gate: QualityGate, *, quiet: bool = True) -> Scan:
    """Every face of every file, embedded, measured and gated. A face's id is its image's content
    and its place in the image, so the same photo under another name is the same faces."""
    results = pipe.run([Sample(str(f), str(f)) for f in files], quiet=quiet, desc="cluster")
    out = Scan(Faces.empty(pipe.config.dim), images=len(files))
    cols = {k: [] for k in ("ids", "files", "boxes", "scores", "quality", "embeddings")}
    for r in results:
        file = os.path.abspath(str(r.sample.source))  # thumbnails and names work from any directory
        if r.error:
            out.errors.append(r.error)
            continue
        if not r.faces:
            out.no_face.append(file)
            continue
        try:
            _, raw = r.sample.read()
            image = r.sample.decode(raw, pipe.max_pixels)
        except Exception as exc:  # noqa: BLE001 - it decoded a moment ago; report, never crash the run
            out.errors.append(f"{file}: {exc}")
            continue
        content = hashlib.blake2b(raw if isinstance(raw, bytes) else image.tobytes(), digest_size=16).hexdigest()
        for j, f in enumerate(r.faces):
            q = gate.measure(image, f.box, f.score, f.landmarks)
            fid = face_key(content, j)
            why = gate.reason(q)
            if why:
                out.rejected.append({"face_id": fid, "file": file, "box": _box(f.box), "quality": q, "reason": why})
                continue
            cols["ids"].append(fid)
            cols["files"].append(file)
            cols["boxes"].append(f.box)
            cols["scores"].append(f.score)
            cols["quality"].append([np.nan if q[k] is None else q[k] for k in QUALITY_FIELDS])
            cols["embeddings"].append(f.embedding)
    if cols["ids"]:
        out.faces = Faces(
            np.array(cols["ids"]),
            np.array(cols["files"]),
            np.array(cols["boxes"], np.float32).reshape(-1, 4),
            np.array(cols["scores"], np.float32),
            np.array(cols["quality"], np.float32).reshape(-1, len(QUALITY_FIELDS)),
            np.stack(cols["embeddings"]).astype(np.float32),
        )
    return out


@dataclass
class Discovery:
    answer: dict  # what clusters.json holds
    folder: Path
    images: int
    new_faces: int


@locked
def discover(
    photos,
    folder,
    *,
    pipe,
    gallery=None,
    model: str | None = None,
    calibration=None,
    threshold: float | str | None = "auto",
    algorithm: str = DEFAULT_ALGORITHM,
    min_faces: int = DEFAULT_MIN_FACES,
    gate: QualityGate | None = None,
    quiet: bool = True,
    thumbnails: bool = True,
) -> Discovery:
    """Add ``photos`` (a file or folder, recursive) to the people ``folder`` and group its faces.

    ``gallery`` (from ``model``) names the people it knows first, with ``calibration`` (the
    open-set rule of ``infer``); the rest are clustered with ``algorithm`` under the distance
    ``threshold`` (``auto``: :func:`facerec.people.threshold.cluster_threshold`)."""
    gate = gate or QualityGate()
    files, skipped = collect_inputs(photos)
    if not files:  # before anything is written: no empty people folder is left behind
        raise InputError(f"{photos}: no image files (.jpg, .png, ...) in this folder or below it; nothing was written")
    book = Book.open(folder)
    config = pipe.config.to_dict()
    if book.pipeline is not None and book.pipeline != config:
        diff = sorted(k for k in set(config) | set(book.pipeline) if config.get(k) != book.pipeline.get(k))
        raise InputError(
            f"{book.path}: its faces were embedded with another pipeline ({', '.join(diff)} differ: "
            f"folder {', '.join(f'{k}={book.pipeline.get(k)!r}' for k in diff)}); use a new --out folder, "
            "or the same options"
        )
    found = scan(files, pipe, gate, quiet=quiet)
    before = book.load_faces(pipe.config.dim)
    stored = before.union(found.faces)  # every face kept, even one this run's gate rejects
    previous = book.load_clusters()
    # faces the gate rejected earlier stay listed (a later run may not see their photo again)
    rejected = {r["face_id"]: r for r in previous.get("rejected", [])}
    rejected.update({r["face_id"]: r for r in found.rejected})
    faces, now_rejected = regate(stored, gate)  # this run's gate holds for every face, old ones too
    rejected.update(now_rejected)
    for fid in faces.ids:  # a face this gate passes is not listed as rejected
        rejected.pop(str(fid), None)

    thr = cluster_threshold(pipe.config, threshold=threshold, gallery=gallery)
    if calibration is not None and calibration.threshold > thr.value:
        # a face joins a named person only as near as it would have to be to join their cluster: a
        # small gallery's open-set threshold (the embedder's equal-error point) takes in strangers
        calibration = replace(calibration, threshold=thr.value, reason=f"the clustering threshold, {thr.describe()}")
    person = assign_known(faces, gallery, calibration, book)
    rest = np.flatnonzero(person == "")
    labels = np.full(len(faces), UNGROUPED, np.int64)
    if len(rest):
        labels[rest] = cluster(faces.embeddings[rest], thr.value, algorithm=algorithm, min_faces=min_faces)
    labels = apply_merges(labels, faces, book, person)
    labels, why = apply_rejections(labels, faces, book)
    labels = join_people(labels, person, faces, thr.value, book)
    ids = stable_ids(labels, faces, previous, book)

    answer = build_answer(faces, labels, ids, person, why, rejected, found, skipped)
    answer.update(
        pipeline=config,
        algorithm=algorithm,
        threshold=round(thr.value, 4),
        threshold_source=thr.describe(),
        min_faces=min_faces,
        quality_gate=asdict(gate),
        model=model or book.model,
        made_ms=int(time.time() * 1000),
    )
    book.pipeline = config
    if model:
        from facerec.people.naming import gallery_name

        book.model = gallery_name(model)
    book.save_faces(stored)
    book.save_clusters(answer)
    book.save()
    if thumbnails:
        from facerec.people.sheet import write_sheet

        write_sheet(book.path / "index.html", answer)
    return Discovery(answer, book.path, found.images, len(stored) - len(before))


def regate(faces: Faces, gate: QualityGate) -> tuple[Faces, dict]:
    """The stored faces this gate passes, and the ones it rejects now (a stricter gate than the
    run that stored them), as rejection records."""
    if not len(faces):
        return faces, {}
    keep = np.ones(len(faces), bool)
    out = {}
    for i in range(len(faces)):
        q = faces.record(i)["quality"]
        why = gate.reason(q)
        if why:
            keep[i] = False
            out[str(faces.ids[i])] = faces.record(i) | {"reason": why}
    return faces.take(keep), out


def assign_known(faces: Faces, gallery, calibration, book: Book) -> np.ndarray:
    """Each face's enrolled person ("" for none): a face enrolled under a name is that person's;
    another is whoever the open-set rule of ``infer`` names, unless the user rejected that face
    from that person."""
    person = np.full(len(faces), "", dtype=object)
    if gallery is None or not len(faces):
        return person
    from facerec.gallery.identify import identify

    enrolled = dict(zip((str(f) for f in gallery.face_ids_), (gallery.names_[i] for i in gallery.labels_)))
    refused = {(c["face"], c["person"]) for c in book.cannot_link if c.get("person")}
    todo = []
    for i, fid in enumerate(faces.ids):
        name = enrolled.get(str(fid))
        if name is not None:
            person[i] = name
        else:
            todo.append(i)
    if todo:
        preds = identify(gallery, faces.embeddings[todo], topk=1, calibration=calibration)
        for i, p in zip(todo, preds):
            if not p.unknown and (str(faces.ids[i]), p.name) not in refused:
                person[i] = p.name
    return person


def join_people(labels: np.ndarray, person: np.ndarray, faces: Faces, threshold: float, book: Book) -> np.ndarray:
    """A new cluster whose faces are, on average, within the threshold of a named person's (and
    nearer to them than to anyone else named) is that person's: the faces one by one were a little
    too far to be sure, together they are not. The average is exact for unit vectors: the mean
    squared distance between two groups is 2 - 2 mean(A).mean(B). Faces the user rejected from
    that person stay out. Changes ``person`` in place; returns the labels without those clusters."""
    names = sorted({p for p in person if p})
    grouped = np.unique(labels[labels != UNGROUPED])
    if not names or not len(grouped):
        return labels
    refused = {(c["face"], c["person"]) for c in book.cannot_link if c.get("person")}
    means = np.stack([faces.embeddings[person == n].mean(0) for n in names])
    labels = labels.copy()
    limit = 1.0 - threshold * threshold / 2.0
    for lab in grouped:
        rows = np.flatnonzero(labels == lab)
        sim = means @ faces.embeddings[rows].mean(0)
        best = int(np.argmax(sim))
        if sim[best] >= limit:
            for i in rows:
                if (str(faces.ids[i]), names[best]) not in refused:
                    person[i] = names[best]
                    labels[i] = UNGROUPED
    return labels


def apply_merges(labels: np.ndarray, faces: Faces, book: Book, person: np.ndarray) -> np.ndarray:
    """Faces the user merged share one cluster again (the one most of them are in); a face that
    belongs to a named person now stays theirs."""
    if not book.must_link:
        return labels
    labels = labels.copy()
    row = {str(f): i for i, f in enumerate(faces.ids)}
    for group in book.must_link:
        rows = [row[f] for f in group if f in row and person[row[f]] == ""]
        grouped = [labels[r] for r in rows if labels[r] != UNGROUPED]
        if not grouped:
            continue
        target = Counter(grouped).most_common(1)[0][0]
        merged = np.isin(labels, list(set(grouped)))
        labels[merged] = target
        labels[rows] = target
    return labels


def apply_rejections(labels: np.ndarray, faces: Faces, book: Book) -> tuple[np.ndarray, dict]:
    """A face the user said is not the person of a cluster leaves any cluster that holds the faces
    it was rejected from (it is then ungrouped, with the reason)."""
    why: dict[int, str] = {}
    if not book.cannot_link:
        return labels, why
    labels = labels.copy()
    row = {str(f): i for i, f in enumerate(faces.ids)}
    for c in book.cannot_link:
        i = row.get(c["face"])
        if i is None or labels[i] == UNGROUPED:
            continue
        others = [row[f] for f in c.get("with", []) if f in row]
        if any(labels[j] == labels[i] for j in others):
            labels[i] = UNGROUPED
            why[i] = f"not this person: rejected from cluster {c.get('cluster')}"
    return labels, why


def stable_ids(labels: np.ndarray, faces: Faces, previous: dict, book: Book) -> dict[int, int]:
    """label -> cluster id: the previous id a cluster shares the most faces with, else a new one."""
    old = {f["face_id"]: int(cid) for cid, fs in previous.get("clusters", {}).items() for f in fs}
    known = [int(c) for c in previous.get("clusters", {})]
    book.next_id = max([book.next_id, *(c + 1 for c in known)])  # a stale people.json never reuses an id
    ids: dict[int, int] = {}
    taken: set[int] = set()
    order = [lab for lab, _ in Counter(labels[labels != UNGROUPED].tolist()).most_common()]
    for lab in order:
        votes = Counter(old[str(f)] for f in faces.ids[labels == lab] if str(f) in old)
        best = next((cid for cid, _ in votes.most_common() if cid not in taken), None)
        if best is None:
            best = book.next_id
            book.next_id += 1
        ids[lab] = best
        taken.add(best)
    return ids


def build_answer(faces, labels, ids, person, why, rejected, found: Scan, skipped) -> dict:
    """clusters.json: clusters biggest first (faces nearest their centre first), the people the
    gallery named, the ungrouped faces with why, and every face the gate rejected with why."""
    clusters = {}
    for lab in sorted(ids, key=lambda lab: -int((labels == lab).sum())):
        clusters[str(ids[lab])] = _members(faces, np.flatnonzero(labels == lab))
    people = {}
    for name in sorted({p for p in person if p}):
        people[name] = _members(faces, np.flatnonzero(person == name))
    loose = np.flatnonzero((labels == UNGROUPED) & (person == ""))
    ungrouped = [faces.record(i) | {"reason": why.get(i, GROUP_TOO_SMALL)} for i in loose]
    return {
        "faces": int(len(faces)),
        "clusters": clusters,
        "people": people,
        "ungrouped": ungrouped,
        "rejected": sorted(rejected.values(), key=lambda r: (r["file"], r["face_id"])),
        "images": found.images,
        "no_face": found.no_face,
        "errors": found.errors,
        "skipped": [str(s) for s in skipped],
    }


def _members(faces: Faces, rows: np.ndarray) -> list[dict]:
    emb = faces.embeddings[rows]
    centre = emb.mean(0)
    centre /= max(float(np.linalg.norm(centre)), 1e-12)
    d = np.linalg.norm(emb - centre, axis=1)
    return [faces.record(int(i)) | {"distance": round(float(dd), 4)} for dd, i in sorted(zip(d, rows))]


def _box(box) -> list[float]:
    return [round(float(v), 1) for v in box]
