"""``facerec verify A B``: are two images (or two one-person folders) the same person?"""

from __future__ import annotations

import json
import sys

from facerec.cli.common import EXIT_OK, add, build_pipeline, model_pipeline, pipeline_args, store_token_arg
from facerec.errors import InputError
from facerec.pipeline.config import DEFAULT_VERIFY_FAR
from facerec.text import printable


def add_parser(sub) -> None:
    p = sub.add_parser("verify", help="are two images (or two one-person folders) the same person?")
    p.add_argument("a", help="image or folder of one person")
    p.add_argument("b", help="image or folder of one person")
    add(p, "--model", default=None, help="use this model's (file or store URI) pipeline and metric")
    store_token_arg(p)
    add(
        p,
        "--far",
        type=float,
        default=None,
        help="share of pairs of different people that may be called the same person "
        f"(default {DEFAULT_VERIFY_FAR:g}: 1 in 1,000), by the pipeline's reference calibration",
    )
    add(p, "--threshold", type=float, default=None, help="distance threshold (overrides --far)")
    add(p, "--metric", choices=("euclidean", "cosine"), default=None, help="default: the model's, else euclidean")
    add(p, "--format", choices=("text", "json"), default="text")
    pipeline_args(p, embedder_default=None)
    p.set_defaults(func=run)


def run(args) -> int:
    from facerec.api import load_model
    from facerec.datasets import Sample, collect_inputs
    from facerec.gallery.calibration import check_rate, check_threshold, verification_threshold
    from facerec.gallery.verify import verify_results

    if args.threshold is not None:
        check_threshold(args.threshold, "--threshold")
    if args.far is not None:
        check_rate(args.far, "--far")
    if args.model:
        gallery = load_model(args.model, token=args.store_token)
        if args.metric and args.metric != gallery.metric:
            raise InputError(
                f"--metric {args.metric} differs from the model's {gallery.metric}, "
                f"whose faces were enrolled in it; drop --metric"
            )
        metric = gallery.metric
        pipe = model_pipeline(args, gallery)
    else:
        metric = args.metric or "euclidean"
        pipe = build_pipeline(args)  # an open --embedder: the default one
    cal = verification_threshold(pipe.config, far=args.far, threshold=args.threshold, metric=metric)
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
        print(f"threshold: {v.threshold_promise}")
    return EXIT_OK


def as_json(v) -> dict:
    return {
        "same": v.same,
        "distance": round(v.distance, 6),
        "threshold": round(v.threshold, 6),
        "threshold_source": v.threshold_source,
        "threshold_note": v.threshold_note,
        "threshold_promise": v.threshold_promise,
        "far": v.far,
        "tar": v.tar,
        "images_a": v.images_a,
        "images_b": v.images_b,
    }
