"""``facerec train`` (and the seed's ``src/train.py``): embed a labelled dataset, save a k-NN gallery."""

from __future__ import annotations

import sys

from facerec.cli.common import (
    EXIT_OK,
    EXIT_PARTIAL,
    NO_FACE_REMEDY,
    add,
    pipeline_args,
    pipeline_options,
    positive_int,
    store_token_arg,
)
from facerec.pipeline.config import DEFAULT_EMBEDDER, DEFAULT_FPIR, DEFAULT_K
from facerec.text import printable


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="embed a labelled dataset and save a k-NN gallery")
    add(p, "--data", required=True, help=".npz (X, y, names) or a folder with one subfolder per person")
    add(p, "--out_dir", default="models")
    add(p, "--model", default=None, help="model path (default OUT_DIR/knn_<embedder>_<data>.npz)")
    add(
        p,
        "--store",
        default=None,
        metavar="URI",
        help="keep the gallery in Milvus instead of a model file: milvus:./galleries/lfw.db (Milvus Lite, "
        "embedded) or http://host:19530 (a Milvus server or cluster); #name picks the collection",
    )
    store_token_arg(p)
    add(p, "--k", type=positive_int, default=DEFAULT_K, help="neighbours that vote")
    add(p, "--metric", choices=("euclidean", "cosine"), default="euclidean")
    add(
        p,
        "--fpir",
        "--far",
        dest="fpir",
        type=float,
        default=DEFAULT_FPIR,
        help="share of strangers the open-set threshold may name someone, whatever the gallery's size "
        f"(default {DEFAULT_FPIR:g}: 1 in 100; --far is its older name)",
    )
    add(
        p,
        "--index",
        choices=("exact", "faiss-hnsw", "faiss-ivf", "faiss-people"),
        default="exact",
        help="search backend stored with the model: exact (default), or approximate faiss for large galleries "
        "(faiss-people: closest people's mean faces first, then their faces exactly; best past 10^5 faces)",
    )
    add(
        p,
        "--index-param",
        action="append",
        metavar="KEY=VALUE",
        help="backend option, repeatable (faiss-hnsw: m, ef_construction, ef_search; faiss-ivf: nlist, nprobe; "
        "faiss-people: people, dims, nlist, nprobe)",
    )
    pipeline_args(p, embedder_default=DEFAULT_EMBEDDER)
    p.set_defaults(func=run)


def run(args) -> int:
    from facerec.api import train
    from facerec.gallery.calibration import check_rate
    from facerec.gallery.index import parse_index_params
    from facerec.store import check_store

    # --alignment has never reached train's pipeline: its galleries are cut from box crops. Passing
    # it on changes them (LFW, dlib on YuNet five-point: 0.975 of strangers unknown against the
    # tests' 0.98 floor), so that is a change of its own, not part of building the options here.
    options = pipeline_options(args, alignment=None)
    check_rate(args.fpir, "--fpir")
    check_store(args.store)
    r = train(
        args.data,
        options=options,
        k=args.k,
        metric=args.metric,
        out_dir=args.out_dir,
        model_path=args.model,
        store=args.store,
        store_token=args.store_token,
        art_dir=args.art_dir,
        cache=not args.no_cache,
        fpir=args.fpir,
        index=args.index,
        index_params=parse_index_params(args.index_param),
        quiet=args.quiet,
    )
    g = r.gallery
    print(
        f"enrolled {r.enrolled}/{r.images} images of {r.people} people "
        f"({g.pipeline.embedder}, detector {g.pipeline.detector}, k={g.k}, {g.metric}, index {g.index})"
    )
    if r.no_face:
        shown = ", ".join(r.no_face[:10]) + (" ..." if len(r.no_face) > 10 else "")
        print(f"no face found in {len(r.no_face)} images (not enrolled): {shown} ({NO_FACE_REMEDY})")
    for err in r.errors:
        print(f"error: {printable(err)}", file=sys.stderr)
    cal = r.gallery.calibration
    print(f"open-set threshold {cal.threshold:.4f}: {cal.promise()}")
    if cal.reason:
        print(f"  ({printable(cal.reason)})")
    print(f"model: {r.model_path}")
    if r.artifact_path:
        print(f"embeddings: {r.artifact_path}")
    return EXIT_PARTIAL if r.errors else EXIT_OK
