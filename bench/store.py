"""Enrolment and identification cost by gallery size and store: the model file, Milvus Lite, a
Milvus server (started here from the ``milvus`` package unless ``--milvus-uri`` is given).

For each backend and size: a synthetic LFW-like gallery (bench/search.py's generator, ~4 faces a
person) is stored, served (:class:`facerec.store.ServedGallery`, searching a ``faiss-people``
index in process), then ``--enrols`` one-face enrolments are timed one by one (each acknowledged
only once the store holds it) and ``--queries`` single identifications (the service's path:
search + vote + threshold), with recall@1 against exact search over the same rows. The file
backend rewrites the whole file per enrolment, so past 10^5 faces it is timed on fewer
(``--file-enrols-large``). The gallery's per-face leave-one-out distances are placeholders (an
O(n^2) calibration at 10^6 is not the point; an enrolment's update costs the same whatever
their values).

    python bench/store.py --sizes 10000,1000000 --backends file,milvus-lite,milvus --json OUT
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from facerec.gallery import Gallery  # noqa: E402
from facerec.gallery.identify import identify  # noqa: E402
from facerec.pipeline.config import PipelineConfig  # noqa: E402
from search import LFW_DIFF, LFW_SAME, synthetic  # noqa: E402

from common import machine, print_table, write_json  # noqa: E402

DIM = 512


def make_gallery(size: int, seed: int) -> tuple[Gallery, np.ndarray]:
    emb, labels, queries = synthetic(size, 200, DIM, LFW_SAME, LFW_DIFF, seed)
    from facerec.embed import get_spec

    spec = get_spec("facenet-casia")
    config = PipelineConfig(spec.name, spec.weights_id, "mtcnn", spec.input_size, 20.0, DIM)
    g = Gallery(k=3, pipeline=config, index="faiss-people")
    people = int(labels.max()) + 1
    rng = np.random.default_rng(seed)
    columns = {
        "genuine_d": rng.uniform(0.6, 0.9, size).astype(np.float32),
        "impostor_d": rng.uniform(1.0, 1.4, size).astype(np.float32),
        "enrolled_ms": np.arange(size, dtype=np.int64),
    }
    g.fit(emb, labels, [f"p{i}" for i in range(people)], [f"s{i}" for i in range(size)], columns)
    return g, queries


def exact_nearest(g: Gallery, queries: np.ndarray) -> np.ndarray:
    best = np.full(len(queries), -np.inf, np.float32)
    arg = np.zeros(len(queries), np.int64)
    for s in range(0, len(g), 200_000):
        sim = queries @ g.embeddings_[s : s + 200_000].T
        i = sim.argmax(1)
        better = sim[np.arange(len(queries)), i] > best
        best[better] = sim[np.arange(len(queries)), i][better]
        arg[better] = s + i[better]
    return arg


def open_backend(name: str, size: int, tmp: Path, milvus_uri: str):
    from facerec.store import open_store

    if name == "file":
        return open_store(tmp / f"g{size}.npz", writer=True)
    if name == "milvus-lite":
        return open_store(f"milvus:{tmp}/lite{size}.db")
    return open_store(f"{milvus_uri}#bench{size}")


def bench_one(name: str, size: int, args, tmp: Path, milvus_uri: str) -> dict:
    from facerec.store import ServedGallery

    g, queries = make_gallery(size, args.seed)
    truth = exact_nearest(g, queries)
    store = open_backend(name, size, tmp, milvus_uri)
    t0 = time.perf_counter()
    store.save(g)
    stored_s = time.perf_counter() - t0
    # a server flushes and indexes a large insert in the background: time enrolments once it is done
    indexed_s = store.wait_indexed() if hasattr(store, "wait_indexed") else 0.0
    served = ServedGallery(store, gallery=g, sync_s=0)
    n_enrol = args.enrols if (name != "file" or size <= 100_000) else args.file_enrols_large
    new, _, _ = synthetic(n_enrol, 1, DIM, LFW_SAME, LFW_DIFF, args.seed + 1)
    lat = []
    for i in range(n_enrol):
        t = time.perf_counter()
        served.enrol(f"new{i}", new[i : i + 1], [f"n{i}"])
        lat.append(time.perf_counter() - t)
    lat = np.array(lat) * 1000
    found, id_lat = [], []
    for q in queries:
        t = time.perf_counter()
        with served.reading() as (gal, cal):
            p = identify(gal, q[None], topk=5, calibration=cal)[0]
        id_lat.append(time.perf_counter() - t)
        found.append(p.neighbors[0].index if p.neighbors else -1)
    id_lat = np.array(id_lat) * 1000
    recall = float(np.mean(np.array(found) == truth))
    store.close()
    return {
        "backend": name,
        "size": size,
        "enrols": n_enrol,
        "enrol_p50_ms": round(float(np.percentile(lat, 50)), 2),
        "enrol_p99_ms": round(float(np.percentile(lat, 99)), 2),
        "identify_p50_ms": round(float(np.percentile(id_lat, 50)), 2),
        "identify_p99_ms": round(float(np.percentile(id_lat, 99)), 2),
        "recall_at_1": round(recall, 3),
        "store_s": round(stored_s, 1),
        "index_wait_s": round(indexed_s, 1),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--backends", default="file,milvus-lite,milvus")
    ap.add_argument("--enrols", type=int, default=100)
    ap.add_argument("--file-enrols-large", type=int, default=5)
    ap.add_argument("--milvus-uri", default=None, help="a running Milvus server (default: start one here)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    backends = args.backends.split(",")
    tmp = Path(tempfile.mkdtemp(prefix="facerec-bench-store-"))
    server = None
    uri = args.milvus_uri
    if "milvus" in backends and uri is None:
        from facerec.store.server_process import MilvusServer

        server = MilvusServer(tmp / "milvus").start()
        uri = server.uri
    rows = []
    cols = ["backend", "size", "enrols", "enrol_p50_ms", "enrol_p99_ms", "identify_p50_ms", "identify_p99_ms"]
    cols += ["recall_at_1", "store_s", "index_wait_s"]
    try:
        for size in sizes:
            for b in backends:
                rows.append(bench_one(b, size, args, tmp, uri))
                print_table(rows[-1:], cols, header=len(rows) == 1)
                write_json(args.json, {"machine": machine(), "args": vars(args), "rows": rows})  # so far
                gc.collect()
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print_table(rows, cols)
    for b in backends:
        mine = {r["size"]: r for r in rows if r["backend"] == b}
        if len(mine) > 1:
            lo, hi = mine[min(mine)], mine[max(mine)]
            print(
                f"{b}: enrolment p99 at {max(mine):,} faces is {hi['enrol_p99_ms'] / lo['enrol_p99_ms']:.2f}x "
                f"its value at {min(mine):,}"
            )
    write_json(args.json, {"machine": machine(), "args": vars(args), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
