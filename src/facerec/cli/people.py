"""``facerec cluster PHOTOS`` (group the faces of a collection into people) and ``facerec people
name|merge|reject|list`` (what the user says about the groups, kept for every later run)."""

from __future__ import annotations

import argparse
import json

from facerec.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_PARTIAL,
    add,
    build_pipeline,
    model_pipeline,
    pipeline_args,
    store_token_arg,
)
from facerec.names import shown_name
from facerec.pipeline.config import DEFAULT_DETECTOR, DEFAULT_EMBEDDER
from facerec.text import printable

#: Clustering's pipeline: the commands' one set of defaults (offline, shipped in the core install).
#: `--detector yunet` clustered all of LFW best here (docs "People discovery": pairwise F1 0.971
#: with CASIA FaceNet against dlib five-point + flip's 0.931) and detects faster, but its model is
#: a download (230 KB, hash-checked): it is the fast choice to ask for, not the default.
CLUSTER_EMBEDDER, CLUSTER_DETECTOR, CLUSTER_ALIGNMENT, CLUSTER_FLIP = DEFAULT_EMBEDDER, DEFAULT_DETECTOR, "box", False
DEFAULT_FOLDER = "people"
#: the quality gate's flags, in QualityGate's field order: (flag, field, what it bounds)
GATE_FLAGS = (
    ("--min-face-size", "min_size", "smallest face side, px"),
    ("--min-score", "min_score", "lowest detector score"),
    ("--min-sharpness", "min_sharpness", "lowest variance of the face's Laplacian at 64x64 (blur)"),
    ("--max-yaw", "max_yaw", "most the head may turn (eye distances)"),
    ("--min-inside", "min_inside", "share of the face inside the image"),
)


def parse_threshold(text: str) -> float | str:
    """``--threshold``: auto, or a distance."""
    from facerec.errors import InputError

    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise InputError(f"--threshold must be auto or a distance, got {text!r}") from None


def cluster_defaults(args) -> None:
    """The clustering pipeline's defaults where the options leave them open (no gallery to follow)."""
    args.embedder = args.embedder or CLUSTER_EMBEDDER
    args.detector = args.detector or CLUSTER_DETECTOR
    args.alignment = args.alignment or CLUSTER_ALIGNMENT


def add_parsers(sub) -> None:
    from facerec.people.algorithms import ALGORITHMS, DEFAULT_ALGORITHM, DEFAULT_MIN_FACES
    from facerec.people.quality import QualityGate

    gate = QualityGate()
    p = sub.add_parser(
        "cluster",
        help="group every face of a photo collection into people (known people first, with --model)",
        description="Every face of every photo (recursive) through the pipeline and a quality gate, the people "
        "enrolled in --model recognised first, the rest grouped. Writes DIR/clusters.json and an offline contact "
        "sheet DIR/index.html; a later run on more photos adds to DIR and keeps every name, merge and rejection.",
    )
    p.add_argument("photos", help="a photo or a folder of photos (recursive)")
    add(p, "--out", default=DEFAULT_FOLDER, help=f"the people folder (default ./{DEFAULT_FOLDER})")
    add(p, "--model", default=None, help="a gallery whose people are recognised first (model file or store URI)")
    store_token_arg(p)
    add(
        p,
        "--min-faces",
        type=int,
        default=DEFAULT_MIN_FACES,
        help="smallest group that is a person (default %(default)s)",
    )
    add(
        p,
        "--threshold",
        default="auto",
        help="distance under which two faces may be one person: auto (the embedder's calibration at a "
        "pairwise false-accept rate of 1e-4, or the gallery's) or a number",
    )
    add(p, "--algorithm", choices=ALGORITHMS, default=DEFAULT_ALGORITHM, help="how faces are grouped")
    for flag, field, what in GATE_FLAGS:
        add(p, flag, type=float, default=getattr(gate, field), help=f"quality gate: {what} (default %(default)s)")
    add(p, "--flip", dest="flip", action="store_true", help="average each face with its mirror image")
    add(p, "--no-flip", dest="flip", action="store_false", help=argparse.SUPPRESS)
    add(p, "--format", choices=("table", "json"), default="table")
    pipeline_args(p, embedder_default=None)
    add(
        p,
        "--alignment",
        choices=("box", "five-point"),
        default=None,
        help=f"box or five-point (default {CLUSTER_ALIGNMENT}; a gallery's own with --model)",
    )
    p.set_defaults(func=run_cluster, flip=CLUSTER_FLIP)

    pp = sub.add_parser("people", help="name, merge or reject the groups `facerec cluster` found")
    ps = pp.add_subparsers(dest="action", required=True)

    def folder(q):
        add(q, "--out", default=DEFAULT_FOLDER, help=f"the people folder (default ./{DEFAULT_FOLDER})")

    q = ps.add_parser("name", help="this cluster is NAME: its faces are enrolled in the gallery")
    q.add_argument("cluster_id")
    q.add_argument("name")
    add(q, "--model", default=None, help="the gallery to enrol into (made if missing; default: the folder's)")
    store_token_arg(q)
    folder(q)
    q.set_defaults(func=run_name)

    q = ps.add_parser("merge", help="clusters A and B are one person (B joins A, for good)")
    q.add_argument("a")
    q.add_argument("b")
    folder(q)
    q.set_defaults(func=run_merge)

    q = ps.add_parser("reject", help="FACE_ID is not the person of this cluster (or named person), for good")
    q.add_argument("cluster_id", help="a cluster id, or a named person")
    q.add_argument("face_id")
    add(q, "--model", default=None, help="the gallery a named person is enrolled in (default: the folder's)")
    store_token_arg(q)
    folder(q)
    q.set_defaults(func=run_reject)

    q = ps.add_parser("list", help="the clusters and people of the last run")
    folder(q)
    add(q, "--format", choices=("table", "json"), default="table")
    q.set_defaults(func=run_list)


def run_cluster(args) -> int:
    from facerec.api import load_model
    from facerec.gallery.calibration import resolve_threshold
    from facerec.people.book import Book
    from facerec.people.discover import discover
    from facerec.people.quality import QualityGate

    gate = QualityGate(args.min_face_size, args.min_score, args.min_sharpness, args.max_yaw, args.min_inside)
    threshold = parse_threshold(args.threshold)
    model = args.model or Book.open(args.out).model
    gallery = calibration = None
    if model:
        gallery = load_model(model, token=args.store_token)
        pipe = model_pipeline(args, gallery)
        calibration = resolve_threshold(gallery, detector=pipe.config.detector)
    else:
        cluster_defaults(args)
        pipe = build_pipeline(args)
    r = discover(
        args.photos,
        args.out,
        pipe=pipe,
        gallery=gallery,
        model=model,
        calibration=calibration,
        threshold=threshold,
        algorithm=args.algorithm,
        min_faces=args.min_faces,
        gate=gate,
        quiet=args.quiet,
    )
    a = r.answer
    if args.format == "json":
        print(json.dumps(a, indent=1))
    else:
        print(
            f"{r.images} images: {r.new_faces} new faces ({a['faces']} in {printable(str(r.folder))}); "
            f"{len(a['clusters'])} clusters, {len(a['people'])} named people, {len(a['ungrouped'])} ungrouped, "
            f"{len(a['rejected'])} rejected by the quality gate"
        )
        print(f"threshold {a['threshold_source']}; {a['algorithm']}, min faces {a['min_faces']}")
        for cid, faces in list(a["clusters"].items())[:20]:
            print(f"  cluster {cid}: {len(faces)} faces, e.g. {printable(faces[0]['file'])}")
        if len(a["clusters"]) > 20:
            print(f"  ... and {len(a['clusters']) - 20} more clusters")
        for name, faces in a["people"].items():
            print(f"  {printable(shown_name(name))}: {len(faces)} faces")
        for rej in a["rejected"][:20]:
            print(f"  rejected {printable(rej['file'])} face {rej['face_id']}: {rej['reason']}")
        print(f"wrote {printable(str(r.folder / 'clusters.json'))} and {printable(str(r.folder / 'index.html'))}")
    for e in a["errors"]:
        print(f"error: {printable(e)}")
    if not r.images:
        print(f"error: {printable(args.photos)}: no image files found")
        return EXIT_ERROR
    return EXIT_PARTIAL if a["errors"] else EXIT_OK


def run_name(args) -> int:
    from facerec.people.naming import name_cluster

    r = name_cluster(args.out, args.cluster_id, args.name, model=args.model, token=args.store_token)
    made = " (a new gallery)" if r.created else ""
    print(
        f"cluster {r.cluster} is {printable(r.name)}: {r.enrolled} faces enrolled in {printable(r.model)}{made}; "
        f"{r.total} faces of theirs there now"
    )
    return EXIT_OK


def run_merge(args) -> int:
    from facerec.people.naming import merge_clusters

    n = merge_clusters(args.out, args.a, args.b)
    print(f"cluster {args.b} joined cluster {args.a}: {n} faces; later runs keep them together")
    return EXIT_OK


def run_reject(args) -> int:
    from facerec.people.naming import reject_face

    reject_face(args.out, args.cluster_id, args.face_id, model=args.model, token=args.store_token)
    print(f"face {args.face_id} is not {printable(args.cluster_id)}: it left, and later runs keep it apart")
    return EXIT_OK


def run_list(args) -> int:
    from facerec.people.book import Book

    a = Book.open(args.out).load_clusters()
    if not a:
        print(f"error: {printable(args.out)}: no clusters.json; run `facerec cluster PHOTOS --out {args.out}` first")
        return EXIT_ERROR
    if args.format == "json":
        print(
            json.dumps(
                {
                    "clusters": {c: len(f) for c, f in a["clusters"].items()},
                    "people": {n: len(f) for n, f in a["people"].items()},
                }
            )
        )
        return EXIT_OK
    for cid, faces in a["clusters"].items():
        print(f"cluster {cid}: {len(faces)} faces, e.g. {printable(faces[0]['file'])}")
    for name, faces in a["people"].items():
        example = f", e.g. {printable(faces[0]['file'])}" if faces else ""
        print(f"{printable(shown_name(name))}: {len(faces)} faces{example}")
    print(f"{len(a['ungrouped'])} ungrouped, {len(a['rejected'])} rejected by the quality gate")
    for rej in a["rejected"]:  # each with its whole reason
        print(f"  rejected {printable(rej['file'])} face {rej['face_id']}: {printable(rej['reason'])}")
    return EXIT_OK
