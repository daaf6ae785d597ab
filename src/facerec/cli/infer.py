"""``facerec infer`` (and the seed's ``src/infer.py``): identify every face in images, with top-k evidence."""

from __future__ import annotations

import json
import sys

from facerec.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_PARTIAL,
    NO_FACE_REMEDY,
    add,
    model_pipeline,
    non_negative_int,
    pipeline_args,
    store_token_arg,
)
from facerec.cli.video import add_video_args
from facerec.gallery.confidence import ConfidenceScale
from facerec.names import shown_name
from facerec.pipeline.config import DEFAULT_TOPK
from facerec.text import printable


def add_parser(sub) -> None:
    p = sub.add_parser("infer", help="identify every face in an image, a folder, a video or a live stream")
    p.add_argument("source", nargs="?", default=None, help="the same as --input")
    add(
        p,
        "--input",
        default=None,
        help="an image, a folder (recursive), a video file (.mp4 .mkv .avi .webm .mov), a stream URL "
        "(rtsp:// http:// tcp:// ...) or webcam:N",
    )
    add(p, "--model", required=True, help="a model file, or a store URI (milvus:./g.db, http://host:19530)")
    store_token_arg(p)
    add(p, "--topk", type=non_negative_int, default=DEFAULT_TOPK, help="neighbours shown as evidence (0: none)")
    add(p, "--format", choices=("table", "json"), default="table")
    add(
        p,
        "--brief",
        action="store_true",
        help="one line per face: the file, the name and how sure, in words (no evidence, no boxes)",
    )
    add(
        p,
        "--fpir",
        type=float,
        default=None,
        help="share of strangers the open-set threshold may name someone, e.g. 0.001 for 1 in 1,000 "
        "(default: the model's, 0.01 unless trained otherwise)",
    )
    add(
        p,
        "--threshold",
        type=float,
        default=None,
        help="open-set distance threshold (overrides the model's and --fpir)",
    )
    add(p, "--closed-set", action="store_true", help="never answer unknown: always the nearest person (the seed)")
    pipeline_args(p, embedder_default=None)
    add_video_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from facerec.api import infer, load_model
    from facerec.errors import InputError
    from facerec.gallery.calibration import check_threshold, resolve_threshold
    from facerec.video import is_video

    if args.source and args.input and args.source != args.input:
        raise InputError(f"two inputs given ({args.source} and --input {args.input}): give one")
    args.input = args.input or args.source
    if not args.input:
        raise InputError("no input: facerec infer PHOTO|FOLDER|VIDEO|URL --model MODEL (or --input ...)")
    if args.threshold is not None:
        check_threshold(args.threshold, "--threshold")
    if args.brief and args.format == "json":
        raise InputError("--brief is a way to print the table; --format json already has one line per face")
    check_source(args.input)  # before any model loads: a mistyped path is said at once
    gallery = load_model(args.model, token=args.store_token)
    pipe = model_pipeline(args, gallery)
    calibration = resolve_threshold(
        gallery, threshold=args.threshold, closed_set=args.closed_set, detector=pipe.config.detector, fpir=args.fpir
    )
    if is_video(args.input):
        from facerec.cli.video import run_video

        return run_video(args, gallery, pipe, calibration)
    # the evidence is cut to --topk when printed: 0 shows none, the answer is the same
    report = infer(args.input, gallery, pipe, topk=max(args.topk, 1), calibration=calibration, quiet=args.quiet)
    if report.detector_note:
        print(report.detector_note, file=sys.stderr)
    if args.format == "json":
        print_json(report, gallery, topk=args.topk)
    else:
        (print_brief if args.brief else print_table)(report, gallery, topk=args.topk)
    for img in report.images:  # said once, on stderr (the table leaves them out)
        if img.error:
            print(f"error: {printable(img.error)}", file=sys.stderr)
    if not report.images:
        print(f"error: {args.input}: no image files found", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_PARTIAL if report.n_errors else EXIT_OK


def _fmt_box(box) -> str:
    x1, y1, x2, y2 = box
    return f"({x1:.0f},{y1:.0f})-({x2:.0f},{y2:.0f})"


def _threshold_line(cal) -> str:
    if cal is None:
        return "closed set: every face is answered with its nearest person (--closed-set)"
    return f"open-set threshold {cal.threshold:.4f}: {cal.promise()}"


def check_source(source: str) -> None:
    """A file or folder that does not exist is refused before any model loads (a stream, a URL or
    a webcam is opened later: only it can say whether it answers)."""
    from pathlib import Path

    from facerec.errors import ImageError
    from facerec.video.frames import is_live

    if not is_live(str(source)) and not Path(source).exists():
        raise ImageError(f"{source}: no such file or folder")


def print_brief(report, gallery, topk: int = 0) -> None:
    """One line per face: ``file: Name (very likely)``; a photo without a face says so."""
    scale = ConfidenceScale(gallery, report.calibration)
    for img in report.images:
        if img.error:
            continue  # on stderr, once
        if not img.faces:
            print(f"{printable(img.file)}: no face found")
            continue
        many = len(img.faces) > 1
        for f in img.faces:
            p, where = f.prediction, f" face {f.face + 1} of {len(img.faces)}" if many else ""
            sure = scale.of(p)
            if p.unknown:
                answer = f"unknown (looks most like {shown_name(p.candidate)}, but not enough)"
            else:
                answer = f"{shown_name(p.name)} ({sure.words})"
            print(f"{printable(img.file)}{where}: {printable(answer)}")


def print_table(report, gallery, topk: int = DEFAULT_TOPK) -> None:
    scale = ConfidenceScale(gallery, report.calibration)
    print(_threshold_line(report.calibration))
    for note in report.skipped:
        print(f"skipped (not an image type): {note}")
    for img in report.images:
        truth = (
            f"   truth: {shown_name(gallery.names_[img.label])}"
            if img.label is not None and img.label < len(gallery.names_)
            else ""
        )
        if img.error:
            continue  # on stderr, once
        if not img.faces:
            print(f"{printable(img.file)}: no face found{truth}")
            continue
        for f in img.faces:
            p = f.prediction
            mark = ""
            if img.label is not None and f.face == 0:
                mark = "  [correct]" if p.label == img.label else "  [WRONG]"
            sure = scale.of(p)
            answer = (
                f"unknown (nearest: {shown_name(p.candidate)})" if p.unknown else f"{shown_name(p.name)} ({sure.words})"
            )
            print(
                f"{printable(img.file)} face {f.face} {_fmt_box(f.box)}: {printable(answer)}  distance {p.distance:.4f}  "
                f"votes {p.votes}/{min(gallery.k, len(gallery))}{truth if f.face == 0 else ''}{mark}"
            )
            if p.note:
                print(f"    ({printable(p.note)})")
            for rank, n in enumerate(p.neighbors[:topk], 1):
                print(
                    f"    {rank}. {printable(shown_name(n.name)):<28} {n.distance:.4f}  (sample {printable(n.sample_id)})"
                )
    correct, total = report.accuracy()
    print(
        f"images: {len(report.images)}  faces: {report.n_faces}  errors: {report.n_errors}  "
        f"skipped: {len(report.skipped)}"
    )
    if total:
        print(f"Accuracy: {correct}/{total} = {correct / total:.4f}")
    if any(not img.error and not img.faces for img in report.images):
        print(f"(no face found in some images: {NO_FACE_REMEDY})")


def print_json(report, gallery, topk: int = DEFAULT_TOPK) -> None:
    for img in report.images:
        if img.error:
            print(json.dumps({"file": img.file, "error": img.error, "label": img.label}))
            continue
        if not img.faces:
            print(
                json.dumps(
                    {
                        "file": img.file,
                        "face": None,
                        "box": None,
                        "pred": None,
                        "distance": None,
                        "topk": [],
                        "label": img.label,
                    }
                )
            )
        for f in img.faces:
            p = f.prediction
            print(
                json.dumps(
                    {
                        "file": f.file,
                        "face": f.face,
                        "box": [round(v, 1) for v in f.box],
                        "pred": p.name,
                        "distance": round(p.distance, 6),
                        "candidate": p.candidate,
                        "votes": p.votes,
                        "note": p.note,
                        "score": round(f.score, 4),
                        "topk": [
                            {"name": n.name, "distance": round(n.distance, 6), "sample": n.sample_id}
                            for n in p.neighbors[:topk]
                        ],
                        "label": img.label,
                    }
                )
            )
    correct, total = report.accuracy()
    cal = report.calibration
    print(
        json.dumps(
            {
                "summary": {
                    "images": len(report.images),
                    "faces": report.n_faces,
                    "errors": report.n_errors,
                    "correct": correct,
                    "total": total,
                    "accuracy": round(correct / total, 6) if total else None,
                    "threshold": cal.threshold if cal else None,
                    "threshold_source": cal.source if cal else "closed-set",
                    "threshold_promise": cal.promise() if cal else "closed set: no face is answered unknown",
                    "fpir": cal.fpir if cal else None,
                }
            }
        )
    )
