"""``facerec verify A B``: are two images (or two one-person folders) the same person?"""

from __future__ import annotations

import json
import sys

from ..errors import InputError
from ..pipeline.config import DEFAULT_EMBEDDER
from ..text import printable
from .common import EXIT_OK, add, build_pipeline, model_pipeline, pipeline_args, store_token_arg


def add_parser(sub) -> None:
    p = sub.add_parser("verify", help="are two images (or two one-person folders) the same person?")
    p.add_argument("a", help="image or folder of one person")
    p.add_argument("b", help="image or folder of one person")
    add(p, "--model", default=None, help="use this model's (file or store URI) embedder and calibrated threshold")
    store_token_arg(p)
    add(p, "--threshold", type=float, default=None, help="distance threshold (overrides the model's)")
    add(p, "--metric", choices=("euclidean", "cosine"), default=None, help="default: the model's, else euclidean")
    add(p, "--format", choices=("text", "json"), default="text")
    pipeline_args(p, embedder_default=None)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..api import default_calibration, load_model
    from ..calibrate import check_threshold, resolve_threshold
    from ..datasets import Sample, collect_inputs
    from ..verify import verify_results

    if args.threshold is not None:
        check_threshold(args.threshold, "--threshold")
    if args.model:
        gallery = load_model(args.model, token=args.store_token)
        if args.metric and args.metric != gallery.metric:
            raise InputError(
                f"--metric {args.metric} differs from the model's {gallery.metric}, "
                f"for which its threshold was calibrated; drop --metric"
            )
        metric = gallery.metric
        pipe = model_pipeline(args, gallery)
        cal = resolve_threshold(gallery, threshold=args.threshold, align=pipe.config.detector)
    else:
        embedder = args.embedder or DEFAULT_EMBEDDER
        metric = args.metric or "euclidean"
        pipe = build_pipeline(args, embedder=embedder, flip=False)
        cal = default_calibration(embedder, metric, args.threshold)
    sides = []
    for side in (args.a, args.b):
        files, _ = collect_inputs(side)
        if not files:
            raise InputError(f"{side}: no image files found")
        results = pipe.run([Sample(str(f), str(f)) for f in files], quiet=args.quiet)
        for r in results:
            if r.error:
                print(f"error: {printable(r.error)}", file=sys.stderr)
        sides.append(results)
    v = verify_results(sides[0], sides[1], cal, metric=metric, labels=(args.a, args.b))
    if args.format == "json":
        print(json.dumps(as_json(v)))
    else:
        verdict = "same person" if v.same else "different people"
        op = "<=" if v.same else ">"
        print(f"{verdict}: distance {v.distance:.4f} {op} threshold {v.threshold:.4f}")
        print(f"threshold: {v.threshold_note}")
    return EXIT_OK


def as_json(v) -> dict:
    return {
        "same": v.same,
        "distance": round(v.distance, 6),
        "threshold": round(v.threshold, 6),
        "threshold_source": v.threshold_source,
        "threshold_note": v.threshold_note,
        "images_a": v.images_a,
        "images_b": v.images_b,
    }
