"""The two engines that run the ingest stages: ``local`` (this process: decoding one batch ahead in
a thread while the pipeline works) and ``ray`` (Ray Data: decoding as tasks, faces as a pool of
actors each holding one pipeline, the store sink in this process), on one machine or a cluster.

Ray Data restarts an actor that dies and retries its batch (its defaults for actor pools); the
sink sees each batch's output once, and writes are idempotent by content anyway.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np

from facerec.errors import InputError
from facerec.extras import require
from facerec.ingest.sink import StoreSink
from facerec.ingest.source import Item
from facerec.ingest.stages import FaceStage, decode_batch
from facerec.limits import DEFAULT_MAX_PIXELS
from facerec.pipeline.options import PipelineOptions

#: CPUs each decoding task asks Ray for: small, so that CPU actors never hold every CPU and leave
#: the decoding with none (on 2 CPUs, two actors of 1 CPU each stalled the job).
DECODE_CPUS = 0.25
#: The share of its CPUs a CPU actor asks for; the rest is for the decoding tasks beside it.
ACTOR_CPU_SHARE = 0.75


def columns_of(items: list[Item]) -> dict:
    return {
        "path": np.array([it.path for it in items], dtype=object),
        "person": np.array([it.person or "" for it in items], dtype=object),
    }


def run_local(
    items: list[Item], sink: StoreSink, *, options: PipelineOptions, known, batch_size: int, on_batch=None
) -> None:
    """Every stage in this process: batch i+1 is read and decoded while batch i is embedded."""
    stage = FaceStage(options)
    chunks = [items[s : s + batch_size] for s in range(0, len(items), batch_size)]
    decode = partial(decode_batch, known=known, max_pixels=options.max_pixels)
    with ThreadPoolExecutor(1) as ahead:
        pending = ahead.submit(decode, columns_of(chunks[0])) if chunks else None
        for c in range(len(chunks)):
            decoded = pending.result()
            if c + 1 < len(chunks):
                pending = ahead.submit(decode, columns_of(chunks[c + 1]))
            sink.write(stage(decoded))
            if on_batch:
                on_batch(sink)


def _decode_task(batch: dict, known_ref=None, max_pixels: int = DEFAULT_MAX_PIXELS) -> dict:
    known = None
    if known_ref is not None:
        import ray

        known = _KNOWN.get(known_ref[0].hex())
        if known is None:
            known = _KNOWN.setdefault(known_ref[0].hex(), ray.get(known_ref[0]))
    return decode_batch(batch, known=known, max_pixels=max_pixels)


_KNOWN: dict = {}  # per worker process: the known face ids, fetched once per job


def start_ray(address: str | None):
    """Join the cluster at ``address`` (``auto``: the one ``ray start`` made here), or start a local
    one for this job. Returns whether this call started Ray (and so should stop it)."""
    ray = require("ray")  # the ray extra pins the release this was built and measured with
    if ray.is_initialized():
        return False
    kw = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    try:
        if address:
            ray.init(address=address, **kw)
        else:
            ray.init(num_cpus=os.cpu_count() or 1, **kw)
    except ConnectionError as exc:
        raise InputError(
            f"cannot join the Ray cluster at {address} ({exc}); a cluster started with token "
            "authentication (Ray's default from 2.59) needs RAY_AUTH_MODE=token and its token "
            "(RAY_AUTH_TOKEN, or ~/.ray/auth_token on the head) here too"
        ) from None
    return True


def run_ray(
    items: list[Item],
    sink: StoreSink,
    *,
    options: PipelineOptions,
    known,
    batch_size: int,
    workers: int | None,
    gpus_per_worker: float,
    address: str | None,
    on_batch=None,
) -> int:
    """The stages on Ray Data; returns the number of face workers (actors) used."""
    import ray
    from ray.data import ActorPoolStrategy, DataContext

    started = start_ray(address)
    try:
        ctx = DataContext.get_current()
        ctx.enable_progress_bars = False  # the sink prints one progress line for the job
        resources = ray.cluster_resources()
        cpus, gpus = float(resources.get("CPU", 1)), float(resources.get("GPU", 0))
        nodes = max(1, sum(1 for n in ray.nodes() if n.get("Alive")))
        if gpus_per_worker > 0:
            if gpus < gpus_per_worker:
                raise InputError(f"--gpus-per-worker {gpus_per_worker:g}, but the Ray cluster has {gpus:g} GPUs")
            workers = workers or int(gpus // gpus_per_worker)
            actor = {"num_gpus": gpus_per_worker, "num_cpus": 1}
            threads = None
            options = options.replace(device="cuda")
        else:
            workers = workers or nodes
            per = cpus / workers
            actor = {"num_cpus": round(max(0.1, per * ACTOR_CPU_SHARE), 3)}
            threads = max(1, math.floor(per))  # the CPU runtimes' threads: the cores this actor stands for
            options = options.replace(device="cpu")
        known_ref = [ray.put(frozenset(known))] if known else None
        ds = ray.data.from_items(
            [{"path": it.path, "person": it.person or ""} for it in items],
            override_num_blocks=max(1, math.ceil(len(items) / batch_size)),
        )
        ds = ds.map_batches(
            _decode_task,
            fn_kwargs={"known_ref": known_ref, "max_pixels": options.max_pixels},
            batch_size=batch_size,
            batch_format="numpy",
            num_cpus=DECODE_CPUS,
        )
        ds = ds.map_batches(
            FaceStage,
            fn_constructor_kwargs={"options": options, "threads": threads},
            batch_size=batch_size,
            batch_format="numpy",
            compute=ActorPoolStrategy(size=workers),
            **actor,
        )
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=1):
            sink.write(batch)
            if on_batch:
                on_batch(sink)
        return workers
    finally:
        if started:
            ray.shutdown()
