"""Ingest a photo collection into a Milvus gallery: every image through the one pipeline, the
faces written to the store, on this process (``engine="local"``) or on Ray Data from a laptop to a
GPU cluster (``engine="ray"``).

    from facerec.ingest import ingest
    report = ingest("photos/", "milvus:./photos.db", embedder="facenet-casia", engine="ray")

A manifest's person column enrols each image's subject under that name (and the open-set
threshold is recalibrated at the end); without one every face is stored unnamed, for search and
for clustering. A rerun skips the images already stored; a bad image is reported, never fatal.
"""

from __future__ import annotations

import os

from facerec.errors import InputError, StoreError
from facerec.ingest.sink import IngestReport, StoreSink
from facerec.ingest.source import Item, read_source
from facerec.pipeline.config import DEFAULT_K
from facerec.pipeline.options import DEFAULT_CHOICES, PipelineOptions, as_options

ENGINES = ("local", "ray")
DEFAULT_INGEST_BATCH = 64  # images per batch through every stage (one detection batch)


def ingest(
    source: str | os.PathLike,
    store: str,
    *,
    options: PipelineOptions | None = None,
    engine: str = "local",
    batch_size: int = DEFAULT_INGEST_BATCH,
    workers: int | None = None,
    gpus_per_worker: float = 0,
    ray_address: str | None = None,
    k: int = DEFAULT_K,
    metric: str = "euclidean",
    calibrate: bool = True,
    store_token: str | None = None,
    quiet: bool = True,
    on_batch=None,
    **keywords,
) -> IngestReport:
    """Every image ``source`` names (a folder, a list of paths or URLs, a CSV/Parquet manifest)
    into the Milvus store ``store`` (``milvus:./x.db`` or ``http://host:19530``).

    The pipeline is the one ``options`` (a :class:`~facerec.pipeline.options.PipelineOptions`)
    describe, with ``keywords`` (its fields: ``embedder=``, ``detector=``, ``device=``...) over
    them. A new store records the choices they make (open ones: the seed's defaults); an
    existing one decides them, and a choice that disagrees with it is refused. ``batch_size``:
    images per batch through every stage (the pipeline's detection batch too). ``workers``: face
    actors (Ray; default one per GPU, or one per node on CPUs), each with one decoding thread
    (images arrive decoded). ``on_batch(sink)``: called after each batch is stored (tests,
    progress displays)."""
    from facerec.gallery import Gallery
    from facerec.store import is_store_uri, open_store

    if engine not in ENGINES:
        raise InputError(f"engine must be one of {ENGINES}, got {engine!r}")
    if batch_size < 1:
        raise InputError(f"batch size must be >= 1, got {batch_size}")
    if workers is not None and workers < 1:
        raise InputError(f"workers must be >= 1, got {workers}")
    if gpus_per_worker < 0:
        raise InputError(f"gpus per worker must be >= 0, got {gpus_per_worker}")
    if engine == "local" and (ray_address or workers not in (None, 1) or gpus_per_worker):
        raise InputError("--workers, --gpus-per-worker and --ray-address are for --engine ray")
    if not is_store_uri(store):
        raise StoreError(
            f"{store}: ingest writes to a Milvus store (milvus:./photos.db for Milvus Lite, http://host:19530 for "
            "a server); a model file is built by facerec train"
        )
    options = as_options(options, **keywords)  # checked before the source is read or the store opened
    items = read_source(source)
    report = IngestReport(engine=engine, source=str(source), store=str(store), images=len(items))
    with open_store(store, writer=True, token=store_token) as st:
        existed = st.exists()
        if existed:
            header_gallery = Gallery.from_header(st.header(), st.uri)
            config = header_gallery.pipeline
            wrong = options.differences(config)
            if wrong:
                have = {name: getattr(config, name) for name in DEFAULT_CHOICES}
                raise InputError(
                    f"{st.uri} holds faces made with {have}; ingesting with {wrong} would mix embeddings that "
                    "do not compare (leave those options out to use the store's, or choose another store)"
                )
        else:
            config = options.config()
        # the store's choices; the pipeline's own decoding threads: one (images arrive decoded)
        options = options.following(config).replace(batch_size=batch_size, workers=1)
        if not existed:
            st.create(Gallery(k=k, metric=metric, pipeline=config).header(), config.dim, expected=len(items))
        known = st.face_ids() if existed else None
        sink = StoreSink(st, report, insert=not existed, quiet=quiet)
        if engine == "local":
            from facerec.ingest.engines import run_local

            run_local(items, sink, options=options, known=known, batch_size=batch_size, on_batch=on_batch)
        else:
            from facerec.ingest.engines import run_ray

            report.workers = run_ray(
                items,
                sink,
                options=options,
                known=known,
                batch_size=batch_size,
                workers=workers,
                gpus_per_worker=gpus_per_worker,
                address=ray_address,
                on_batch=on_batch,
            )
        sink.finish()
        if calibrate and report.named_faces:
            report.calibration = _recalibrate(st)
        report.store_faces = st.count() + st.count(unnamed=True)
    return report


def _recalibrate(store) -> str:
    """The open-set threshold from every named face (as ``facerec calibrate`` does)."""
    from facerec.store import ServedGallery

    served = ServedGallery(store, gallery=store.load(), sync_s=0)
    cal = served.recalibrate()
    return f"threshold {cal.threshold:.4f}: {cal.describe()}"


__all__ = ["ENGINES", "IngestReport", "Item", "ingest", "read_source"]
