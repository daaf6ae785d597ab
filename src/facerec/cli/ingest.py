"""``facerec ingest SOURCE --store URI``: a photo collection into a Milvus gallery, on this process
or on Ray Data (one machine or a cluster)."""

from __future__ import annotations

import json
import sys

from facerec.cli.common import (
    EXIT_OK,
    EXIT_PARTIAL,
    add,
    alignment_arg,
    detector_arg,
    pipeline_options,
    positive_int,
    store_token_arg,
)
from facerec.embed.registry import PRECISIONS
from facerec.text import printable


def add_parser(sub) -> None:
    from facerec.ingest import DEFAULT_INGEST_BATCH, ENGINES

    p = sub.add_parser(
        "ingest",
        help="detect and embed every face of a photo collection into a Milvus store (locally or on Ray)",
    )
    p.add_argument(
        "source",
        help="a folder (recursive), a text file of paths or URLs, or a CSV/Parquet manifest with path[,person] "
        "columns (a person enrols the image's subject; without, every face is stored unnamed)",
    )
    add(p, "--store", required=True, metavar="URI", help="milvus:./photos.db (Milvus Lite) or http://host:19530[#name]")
    store_token_arg(p)
    add(p, "--engine", choices=ENGINES, default="local", help="local (this process, default) or ray (Ray Data)")
    add(
        p,
        "--ray-address",
        default=None,
        help="a Ray cluster to join (host:6379, or auto for the one `ray start` made here); default: start a "
        "local one for this job",
    )
    add(p, "--workers", type=positive_int, default=None, help="face actors (ray; default one per GPU, or one per node)")
    add(p, "--gpus-per-worker", type=float, default=0, help="GPUs per face actor (ray; 1 on a GPU cluster; 0: CPUs)")
    add(p, "--batch_size", type=positive_int, default=DEFAULT_INGEST_BATCH, help="images per batch through every stage")
    add(p, "--embedder", default=None, help="a new store's embedder (default facenet-casia); an existing store's own")
    from facerec.align.croppers import ALIGNMENTS

    detector_arg(p, default=None, help="the detector (default mtcnn; a store's own)")
    add(
        p,
        "--alignment",
        type=alignment_arg,
        default=None,
        metavar="{" + ",".join(ALIGNMENTS) + ",A+B}",
        help="box (default) or five-point; a fused embedder's one per part (box+five-point)",
    )
    add(p, "--margin", type=float, default=None, help="pixels of margin around the detected face")
    add(p, "--flip", action="store_true", default=None, help="average each face with its mirror image")
    add(p, "--weights", default=None, help="explicit weights file for the embedder")
    add(p, "--weights-dir", default=None, help="a folder searched first for downloadable model files")
    add(p, "--device", default="auto", help="auto | cpu | cuda (the local engine; ray: --gpus-per-worker)")
    add(p, "--precision", choices=PRECISIONS, default="fp32")
    add(p, "--no-calibrate", action="store_true", help="do not recompute the open-set threshold after named faces")
    add(p, "--report", default=None, metavar="JSON", help="write the final report here (also printed)")
    add(p, "--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)


def run(args) -> int:
    from facerec.extras import require
    from facerec.ingest import ingest
    from facerec.paths import atomic_write_bytes
    from facerec.store import check_store

    # what is missing is said before anything is read or written
    if args.engine == "ray":
        require("ray")
    check_store(args.store)

    r = ingest(
        args.source,
        args.store,
        options=pipeline_options(args),
        engine=args.engine,
        batch_size=args.batch_size,
        workers=args.workers,
        gpus_per_worker=args.gpus_per_worker,
        ray_address=args.ray_address,
        calibrate=not args.no_calibrate,
        store_token=args.store_token,
        quiet=args.quiet,
    )
    report = r.to_dict()
    text = json.dumps(report, indent=2)
    if args.report:
        atomic_write_bytes(args.report, (text + "\n").encode())
    summary = {k: v for k, v in report.items() if k != "failed"}
    print(json.dumps(summary, indent=2))
    for f in r.failed[:20]:
        print(f"failed: {printable(f['error'])}", file=sys.stderr)
    if len(r.failed) > 20:
        print(f"... {len(r.failed) - 20} more failures (the report lists them all)", file=sys.stderr)
    print(
        f"ingested {r.stored_images}/{r.images} images: {r.faces} faces stored ({r.named_faces} named, "
        f"{r.unnamed_faces} unnamed), {r.no_face} without a face, {r.skipped} already stored, "
        f"{r.duplicates} duplicates, {r.failures} failed, in {r.duration_s:.1f} s ({r.images_per_s:.1f} img/s)"
    )
    return EXIT_PARTIAL if r.failures else EXIT_OK
