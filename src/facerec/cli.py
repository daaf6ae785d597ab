"""``facerec`` command line: a thin edge that parses, calls the library, formats, maps errors.

Exit codes: 0 success; 1 some inputs failed (the rest were processed); 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import json
import sys

from .errors import FacerecError, InputError

EXIT_OK, EXIT_PARTIAL, EXIT_ERROR = 0, 1, 2


def _add(parser: argparse.ArgumentParser, *flags: str, **kw) -> None:
    """Accept both the seed's ``--out_dir`` and the conventional ``--out-dir`` spelling."""
    names = list(flags)
    for f in flags:
        alt = f.replace("_", "-") if "_" in f else None
        if alt and alt not in names:
            names.append(alt)
    parser.add_argument(*names, **kw)


def _pipeline_args(p: argparse.ArgumentParser, *, embedder_default: str | None, flip: bool = True) -> None:
    from .align import ALIGNERS

    _add(
        p,
        "--align",
        choices=ALIGNERS,
        default="mtcnn" if embedder_default else None,
        help="mtcnn: detect every face (default"
        + ("" if embedder_default else ": the model's alignment, else mtcnn")
        + "); dlib: dlib's HOG detector; dlib+mtcnn: HOG, and MTCNN where HOG finds no face "
        "(best for the dlib embedder); resize: whole image",
    )
    _add(
        p,
        "--embedder",
        default=embedder_default,
        help="facenet-vggface2 (default for train), facenet-casia or dlib; infer takes the model's",
    )
    _add(p, "--weights", default=None, help="explicit weights file for the embedder")
    _add(p, "--margin", type=float, default=None, help="pixels of margin around the detected face (default 32)")
    _add(p, "--device", default="auto", help="auto | cpu | cuda")
    _add(p, "--batch_size", type=int, default=64, help="images per batch")
    _add(p, "--art_dir", default="artifacts", help="embeddings artefacts and the embedding cache")
    if embedder_default and flip:  # train chooses; infer and verify follow the model
        _add(p, "--flip", action="store_true", help="average each face's embedding with its mirror image's")
    _add(p, "--quiet", action="store_true", help="no progress bars")


def _fast_args(p: argparse.ArgumentParser) -> None:
    _add(
        p,
        "--fast",
        action="store_true",
        help="the throughput path: batched MTCNN on the device, decoding overlapped (FaceNet, --align mtcnn)",
    )
    _add(
        p,
        "--precision",
        choices=("fp32", "bf16", "fp16"),
        default="fp32",
        help="with --fast: the embedding network's precision (bf16/fp16 for GPUs; same LFW accuracy)",
    )
    _add(
        p,
        "--compile",
        action="store_true",
        help="with --fast: torch.compile the embedding network (minutes of compiling; pays off on GPUs)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facerec", description="Face recognition with evidence.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare-lfw", help="write LFW as an .npz (X, y, names), holding some images out")
    _add(p, "--out", default="data/lfw_subset.npz")
    _add(p, "--min-faces", type=int, default=20, help="keep people with at least this many images")
    _add(p, "--holdout", type=int, default=0, help="hold N random images out as test_{i}_y{label}.jpg")
    _add(p, "--holdout-per-person", type=int, default=0, help="hold out this many images of every person")
    _add(p, "--max-per-person", type=int, default=0, help="keep at most this many images of each person")
    _add(p, "--holdout-dir", default="infer_images")
    _add(p, "--seed", type=int, default=0)
    _add(p, "--data-home", default=None, help="scikit-learn data home (default $SCIKIT_LEARN_DATA)")
    p.set_defaults(func=cmd_prepare_lfw)

    p = sub.add_parser("train", help="embed a labelled dataset and save a k-NN gallery")
    _add(p, "--data", required=True, help=".npz (X, y, names) or a folder with one subfolder per person")
    _add(p, "--out_dir", default="models")
    _add(p, "--model", default=None, help="model path (default OUT_DIR/knn_<embedder>_<data>.npz)")
    _add(p, "--k", type=int, default=3, help="neighbours that vote")
    _add(p, "--metric", choices=("euclidean", "cosine"), default="euclidean")
    _add(
        p,
        "--far",
        type=float,
        default=0.01,
        help="target false-accept rate for the open-set threshold calibrated on the gallery (default 0.01)",
    )
    _add(
        p,
        "--index",
        choices=("exact", "faiss-hnsw", "faiss-ivf", "faiss-people"),
        default="exact",
        help="search backend stored with the model: exact (default), or approximate faiss for large galleries "
        "(faiss-people: closest people's mean faces first, then their faces exactly; best past 10^5 faces)",
    )
    _add(
        p,
        "--index-param",
        action="append",
        metavar="KEY=VALUE",
        help="backend option, repeatable (faiss-hnsw: m, ef_construction, ef_search; faiss-ivf: nlist, nprobe; "
        "faiss-people: people, dims, nlist, nprobe)",
    )
    _pipeline_args(p, embedder_default="facenet-vggface2")
    _fast_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("infer", help="identify every face in an image or a folder")
    _add(p, "--input", required=True, help="an image or a folder (recursive)")
    _add(p, "--model", required=True)
    _add(p, "--topk", type=int, default=5, help="neighbours shown as evidence")
    _add(p, "--format", choices=("table", "json"), default="table")
    _add(p, "--threshold", type=float, default=None, help="open-set distance threshold (overrides the model's)")
    _add(p, "--closed-set", action="store_true", help="never answer unknown: always the nearest person (the seed)")
    _pipeline_args(p, embedder_default=None)
    p.set_defaults(func=cmd_infer)

    p = sub.add_parser("verify", help="are two images (or two one-person folders) the same person?")
    p.add_argument("a", help="image or folder of one person")
    p.add_argument("b", help="image or folder of one person")
    _add(p, "--model", default=None, help="use this model's embedder and calibrated threshold")
    _add(p, "--threshold", type=float, default=None, help="distance threshold (overrides the model's)")
    _add(p, "--metric", choices=("euclidean", "cosine"), default=None, help="default: the model's, else euclidean")
    _add(p, "--format", choices=("text", "json"), default="text")
    _pipeline_args(p, embedder_default=None)
    p.set_defaults(func=cmd_verify)

    from .evaluate.commands import add_parsers

    add_parsers(sub, _add, _pipeline_args, _fast_args)

    p = sub.add_parser("serve", help="HTTP service and web page: identify, verify, enrol")
    _add(p, "--model", required=True, help="model file to serve; enrolments are saved back to it")
    _add(p, "--host", default="127.0.0.1")
    _add(p, "--port", type=int, default=8000)
    _add(
        p, "--api-key", default=None, help="require this key in X-API-Key on every /v1 call (default: $FACEREC_API_KEY)"
    )
    _add(p, "--insecure-no-key", action="store_true", help="allow serving on a non-loopback address without an API key")
    _add(p, "--workers", type=int, default=2, help="requests that embed at the same time")
    _add(p, "--max-upload-mb", type=float, default=10.0)
    _add(p, "--max-pixels", type=int, default=40_000_000)
    _add(p, "--max-faces", type=int, default=20, help="faces per image")
    _add(p, "--device", default="auto")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("embedders", help="list the embedders")
    p.set_defaults(func=cmd_embedders)
    return parser


def cmd_serve(args) -> int:
    import os

    from .server import Limits, create_app, is_loopback

    key = args.api_key or os.environ.get("FACEREC_API_KEY") or None
    if not key and not is_loopback(args.host) and not args.insecure_no_key:
        raise InputError(
            f"--host {args.host} is reachable from other machines: set --api-key (or FACEREC_API_KEY), "
            "or pass --insecure-no-key to serve without one"
        )
    for name, value in (
        ("--port", args.port),
        ("--workers", args.workers),
        ("--max-faces", args.max_faces),
        ("--max-pixels", args.max_pixels),
    ):
        if value < 1:
            raise InputError(f"{name} must be >= 1, got {value}")
    if args.max_upload_mb <= 0:
        raise InputError(f"--max-upload-mb must be > 0, got {args.max_upload_mb}")
    import uvicorn

    app = create_app(
        args.model,
        api_key=key,
        workers=args.workers,
        device=args.device,
        limits=Limits(
            max_upload_bytes=int(args.max_upload_mb * 2**20), max_pixels=args.max_pixels, max_faces=args.max_faces
        ),
    )
    print(
        f"serving {args.model} on http://{args.host}:{args.port}/ (API docs at /docs)"
        + ("" if key else "; no API key"),
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return EXIT_OK


def cmd_prepare_lfw(args) -> int:
    from .lfw import prepare_lfw

    r = prepare_lfw(
        args.out,
        min_faces=args.min_faces,
        holdout=args.holdout,
        holdout_per_person=args.holdout_per_person,
        max_per_person=args.max_per_person,
        holdout_dir=args.holdout_dir,
        seed=args.seed,
        data_home=args.data_home,
    )
    print(f"wrote {r.out}: {r.images} images of {r.people} people")
    if r.holdout:
        print(f"held out {len(r.holdout)} images in {args.holdout_dir}/ (test_{{i}}_y{{label}}.jpg)")
    return EXIT_OK


def cmd_train(args) -> int:
    from .api import train
    from .index import parse_index_params

    r = train(
        args.data,
        embedder=args.embedder,
        align=args.align,
        margin=32 if args.margin is None else args.margin,
        k=args.k,
        metric=args.metric,
        weights=args.weights,
        device=args.device,
        batch_size=args.batch_size,
        out_dir=args.out_dir,
        model_path=args.model,
        art_dir=args.art_dir,
        far=args.far,
        flip=args.flip,
        index=args.index,
        index_params=parse_index_params(args.index_param),
        fast=args.fast,
        precision=args.precision,
        compile=args.compile,
        quiet=args.quiet,
    )
    g = r.gallery
    print(
        f"enrolled {r.enrolled}/{r.images} images of {r.people} people "
        f"({g.pipeline['embedder']}, align {g.pipeline['aligner']}, k={g.k}, {g.metric}, index {g.index})"
    )
    if r.no_face:
        shown = ", ".join(r.no_face[:10]) + (" ..." if len(r.no_face) > 10 else "")
        print(f"no face found in {len(r.no_face)} images (not enrolled): {shown}")
    for err in r.errors:
        print(f"error: {err}", file=sys.stderr)
    from .calibrate import Calibration

    cal = Calibration.from_dict(r.gallery.calibration)
    print(f"open-set threshold {cal.threshold:.4f}: {cal.describe()}")
    print(f"model: {r.model_path}")
    if r.artifact_path:
        print(f"embeddings: {r.artifact_path}")
    return EXIT_PARTIAL if r.errors else EXIT_OK


def cmd_infer(args) -> int:
    from .api import infer, load_model, pipeline_for_model

    gallery = load_model(args.model)
    align = args.align or gallery.pipeline.get("aligner", "mtcnn")
    pipe = pipeline_for_model(
        gallery,
        align=align,
        margin=args.margin,
        embedder=args.embedder,
        weights=args.weights,
        device=args.device,
        art_dir=args.art_dir,
        batch_size=args.batch_size,
    )
    from .calibrate import resolve_threshold

    try:
        calibration = resolve_threshold(gallery, threshold=args.threshold, closed_set=args.closed_set, align=align)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    report = infer(args.input, gallery, pipe, topk=args.topk, calibration=calibration, quiet=args.quiet)
    if report.align_note:
        print(report.align_note, file=sys.stderr)
    (_print_json if args.format == "json" else _print_table)(report, gallery)
    for img in report.images:
        if img.error:
            print(f"error: {img.error}", file=sys.stderr)
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
    return f"open-set threshold {cal.threshold:.4f}: {cal.describe()}"


def _print_table(report, gallery) -> None:
    print(_threshold_line(report.calibration))
    for note in report.skipped:
        print(f"skipped (not an image type): {note}")
    for img in report.images:
        truth = (
            f"   truth: {gallery.names_[img.label]}"
            if img.label is not None and img.label < len(gallery.names_)
            else ""
        )
        if img.error:
            print(f"{img.file}: ERROR {img.error}")
            continue
        if not img.faces:
            print(f"{img.file}: no face found{truth}")
            continue
        for f in img.faces:
            p = f.prediction
            mark = ""
            if img.label is not None and f.face == 0:
                mark = "  [correct]" if p.label == img.label else "  [WRONG]"
            answer = f"unknown (nearest: {p.candidate})" if p.unknown else p.name
            print(
                f"{img.file} face {f.face} {_fmt_box(f.box)}: {answer}  distance {p.distance:.4f}  "
                f"votes {p.votes}/{min(gallery.k, len(gallery))}{truth if f.face == 0 else ''}{mark}"
            )
            for rank, n in enumerate(p.neighbors, 1):
                print(f"    {rank}. {n.name:<28} {n.distance:.4f}  (sample {n.sample_id})")
    correct, total = report.accuracy()
    print(
        f"images: {len(report.images)}  faces: {report.n_faces}  errors: {report.n_errors}  "
        f"skipped: {len(report.skipped)}"
    )
    if total:
        print(f"Accuracy: {correct}/{total} = {correct / total:.4f}")


def _print_json(report, gallery) -> None:
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
                        "score": round(f.score, 4),
                        "topk": [
                            {"name": n.name, "distance": round(n.distance, 6), "sample": n.sample_id}
                            for n in p.neighbors
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
                }
            }
        )
    )


def cmd_verify(args) -> int:
    from .api import load_model, pipeline_for_model
    from .calibrate import Calibration, default_threshold, resolve_threshold
    from .datasets import Sample, collect_inputs
    from .embed import get_spec
    from .pipeline import FacePipeline
    from .verify import verify

    if args.model:
        gallery = load_model(args.model)
        if args.metric and args.metric != gallery.metric:
            raise InputError(
                f"--metric {args.metric} differs from the model's {gallery.metric}, "
                f"for which its threshold was calibrated; drop --metric"
            )
        metric = gallery.metric
        align = args.align or gallery.pipeline.get("aligner", "mtcnn")
        pipe = pipeline_for_model(
            gallery,
            align=align,
            margin=args.margin,
            embedder=args.embedder,
            weights=args.weights,
            device=args.device,
            art_dir=args.art_dir,
            batch_size=args.batch_size,
        )
        cal = resolve_threshold(gallery, threshold=args.threshold, align=align)
    else:
        embedder = args.embedder or "facenet-vggface2"
        metric = args.metric or "euclidean"
        pipe = FacePipeline.create(
            embedder=embedder,
            align=args.align or "mtcnn",
            margin=32 if args.margin is None else args.margin,
            weights=args.weights,
            device=args.device,
            art_dir=args.art_dir,
            batch_size=args.batch_size,
        )
        if args.threshold is not None:
            cal = Calibration(args.threshold, "explicit")
        else:
            cal = Calibration(
                default_threshold(get_spec(embedder).default_threshold, metric),
                "default",
                reason=f"{embedder}'s documented threshold; pass --model to use a calibrated one",
            )
    sides = []
    for side in (args.a, args.b):
        files, _ = collect_inputs(side)
        if not files:
            raise InputError(f"{side}: no image files found")
        results = pipe.run([Sample(str(f), str(f)) for f in files], quiet=args.quiet)
        for r in results:
            if r.error:
                print(f"error: {r.error}", file=sys.stderr)
        sides.append(results)
    v = verify(sides[0], sides[1], cal, metric=metric, labels=(args.a, args.b))
    if args.format == "json":
        print(
            json.dumps(
                {
                    "same": v.same,
                    "distance": round(v.distance, 6),
                    "threshold": round(v.threshold, 6),
                    "threshold_source": v.threshold_source,
                    "threshold_note": v.threshold_note,
                    "images_a": v.images_a,
                    "images_b": v.images_b,
                }
            )
        )
    else:
        verdict = "same person" if v.same else "different people"
        op = "<=" if v.same else ">"
        print(f"{verdict}: distance {v.distance:.4f} {op} threshold {v.threshold:.4f}")
        print(f"threshold: {v.threshold_note}")
    return EXIT_OK


def cmd_embedders(args) -> int:
    from .embed import embedder_names, get_spec

    for name in embedder_names():
        s = get_spec(name)
        print(f"{name:<18} {s.dim:>4}-d  {s.input_size}px  {s.description}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except FacerecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
