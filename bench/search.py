"""1:N search benchmark: recall@1 against exact, single-query latency, batched throughput.

Galleries: real LFW embeddings (``--real``) and, beyond them, synthetic galleries built like
real ones: people are points on the unit sphere with several images each, spread so that the
mean same-person and different-person distances match LFW's (measured from ``--real`` when
given). Queries are other images of enrolled people. Exact search and scikit-learn's brute-force
k-NN (what the original used) are the baselines, measured in the same run. Every backend is
given whose face each gallery row is; only ``faiss-people`` uses it.

    python bench/search.py --sizes 1000,100000,1000000 --json bench/results/search.json
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from facerec.gallery.index import create_index  # noqa: E402

from common import machine, print_table, write_json  # noqa: E402

# Mean distances between L2-normalised facenet-casia embeddings of LFW (MTCNN, 11,348 images):
# same person 0.756, different people 1.372. Used when --real is not given.
LFW_SAME, LFW_DIFF = 0.756, 1.372


def spread_from(same: float, diff: float) -> tuple[float, float]:
    """Noise sigma and shared-direction weight alpha giving these mean distances (d -> inf).

    image = unit(centre + sigma * n), centre = unit(alpha * m + z), n, z ~ N(0, I/d): two images of
    one person have cos = 1/(1+sigma^2); of two people cos = rho/(1+sigma^2), rho = alpha^2/(1+alpha^2).
    """
    sigma2 = 1.0 / (1.0 - same**2 / 2.0) - 1.0
    rho = (1.0 - diff**2 / 2.0) * (1.0 + sigma2)
    return float(np.sqrt(sigma2)), float(np.sqrt(max(rho, 0.0) / (1.0 - rho)))


def unit(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def synthetic(size: int, n_queries: int, dim: int, same: float, diff: float, seed: int):
    """``size`` gallery images of size/4 people (1..7 images each) and queries of enrolled people."""
    rng = np.random.default_rng(seed)
    sigma, alpha = spread_from(same, diff)
    per = rng.integers(1, 8, size=size)  # images per person, mean 4
    labels = np.repeat(np.arange(size), per)[:size]
    people = int(labels.max()) + 1
    m = unit(rng.standard_normal((1, dim)).astype(np.float32))
    centres = np.empty((people, dim), np.float32)
    gallery = np.empty((size, dim), np.float32)
    s = 1 / np.sqrt(dim)
    for a in range(0, people, 100_000):  # chunks bound the temporary memory at 10^6
        z = rng.standard_normal((min(100_000, people - a), dim), dtype=np.float32) * s
        centres[a : a + len(z)] = unit(alpha * m + z)
    for a in range(0, size, 100_000):
        lab = labels[a : a + 100_000]
        gallery[a : a + len(lab)] = unit(
            centres[lab] + sigma * s * rng.standard_normal((len(lab), dim), dtype=np.float32)
        )
    q_people = rng.choice(people, n_queries, replace=people < n_queries)
    queries = unit(centres[q_people] + sigma * s * rng.standard_normal((n_queries, dim), dtype=np.float32))
    return gallery, labels, queries


def covariance_model(path: str, dim_keep: int = 256) -> dict:
    """LFW's between-person and within-person covariances (top ``dim_keep`` principal directions):
    real embeddings vary in far fewer directions than isotropic noise, which is what lets an
    approximate index find neighbours quickly."""
    with np.load(path, allow_pickle=False) as d:
        emb, labels = d["embeddings"].astype(np.float64), d["labels"]
    people = [np.flatnonzero(labels == lab) for lab in np.unique(labels)]
    multi = [idx for idx in people if len(idx) > 1]
    means = np.stack([emb[idx].mean(0) for idx in people])
    within = np.concatenate([emb[idx] - emb[idx].mean(0) for idx in multi])
    # a person's mean over n images keeps 1/n of the within-person spread; take it out
    n_images = np.array([len(idx) for idx in people], float)
    cov_w = within.T @ within / max(1, len(within) - len(multi))
    cov_b = np.cov(means.T) - cov_w * np.mean(1.0 / n_images)
    out = {"mean": means.mean(0)}
    for key, cov in (("between", cov_b), ("within", cov_w)):
        vals, vecs = np.linalg.eigh(cov)
        vals, vecs = np.clip(vals[::-1][:dim_keep], 0, None), vecs[:, ::-1][:, :dim_keep]
        out[key] = (vecs * np.sqrt(vals)).T.astype(np.float32)  # (dim_keep, d): z @ this ~ N(0, cov)
    return out


def synthetic_lfw_like(size: int, n_queries: int, model: dict, seed: int):
    """Like :func:`synthetic`, but people and their images are drawn with LFW's measured between- and
    within-person covariances (then put back on the unit sphere)."""
    rng = np.random.default_rng(seed)
    per = rng.integers(1, 8, size=size)
    labels = np.repeat(np.arange(size), per)[:size]
    people = int(labels.max()) + 1
    kb, kw = len(model["between"]), len(model["within"])
    centres = np.empty((people, model["mean"].shape[0]), np.float32)
    for a in range(0, people, 100_000):
        z = rng.standard_normal((min(100_000, people - a), kb), dtype=np.float32)
        centres[a : a + len(z)] = model["mean"] + z @ model["between"]
    gallery = np.empty((size, centres.shape[1]), np.float32)
    for a in range(0, size, 100_000):
        lab = labels[a : a + 100_000]
        noise = rng.standard_normal((len(lab), kw), dtype=np.float32) @ model["within"]
        gallery[a : a + len(lab)] = unit(centres[lab] + noise)
    q_people = rng.choice(people, n_queries, replace=people < n_queries)
    noise = rng.standard_normal((n_queries, kw), dtype=np.float32) @ model["within"]
    return gallery, labels, unit(centres[q_people] + noise)


def real(path: str, n_queries: int, seed: int):
    """Gallery = every LFW embedding except one image per person with >= 2; those are the queries."""
    with np.load(path, allow_pickle=False) as d:
        emb, labels = d["embeddings"].astype(np.float32), d["labels"]
    rng = np.random.default_rng(seed)
    query_idx = []
    for lab in np.unique(labels):
        idx = np.flatnonzero(labels == lab)
        if len(idx) > 1:
            query_idx.append(rng.choice(idx))
    query_idx = np.array(query_idx[:n_queries] if n_queries else query_idx)
    mask = np.ones(len(emb), bool)
    mask[query_idx] = False
    return emb[mask], labels[mask], emb[query_idx]


def measured_distances(path: str) -> tuple[float, float]:
    with np.load(path, allow_pickle=False) as d:
        emb, labels = d["embeddings"].astype(np.float32), d["labels"]
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, len(emb), (2, 50_000))
    diff = np.linalg.norm(emb[i] - emb[j], axis=1)[labels[i] != labels[j]].mean()
    same = []
    for lab in np.unique(labels):
        idx = np.flatnonzero(labels == lab)
        same.extend(np.linalg.norm(emb[idx[:-1]] - emb[idx[1:]], axis=1)[:5])
    return float(np.mean(same)), float(diff)


class SklearnBrute:
    """The original's search: scikit-learn's brute-force k-NN."""

    name = "sklearn"
    params: dict = {}

    def build(self, x, labels=None):
        from sklearn.neighbors import NearestNeighbors

        self._nn = NearestNeighbors(n_neighbors=1, algorithm="brute").fit(x)
        self._x = x
        return self

    def search(self, q, k):
        return self._nn.kneighbors(q, n_neighbors=k)

    def memory_bytes(self):
        return int(self._x.nbytes)


SEARCH_PARAMS = {"nprobe", "ef_search", "people"}  # set on a built index; anything else means a new build


def parse_backend(spec: str) -> tuple[str, dict]:
    """``faiss-ivf:nprobe=64,nlist=4096`` -> ("faiss-ivf", {"nprobe": 64, "nlist": 4096})."""
    from facerec.gallery.index import parse_index_params

    name, _, rest = spec.partition(":")
    return name, parse_index_params([kv for kv in rest.split(";") if kv]) if rest else {}


def make_backend(name: str, params: dict, args):
    if name == "sklearn":
        return SklearnBrute()
    if name == "exact":
        return create_index("exact", device=args.device, **params)
    if name == "exact-fp16":
        return create_index("exact", device=args.device, precision="fp16", **params)
    return create_index(name, **params)


def single_latencies(index, queries: np.ndarray, max_n: int, budget_s: float) -> np.ndarray:
    """One query per call, as a service answers them; stops at max_n queries or budget_s seconds."""
    index.search(queries[:1], 1)  # warm-up
    times, start = [], time.perf_counter()
    for q in queries[:max_n]:
        t = time.perf_counter()
        index.search(q[None], 1)
        times.append(time.perf_counter() - t)
        if time.perf_counter() - start > budget_s and len(times) >= 10:
            break
    return np.array(times) * 1e3


def bench_gallery(
    label: str, gallery: np.ndarray, labels: np.ndarray, queries: np.ndarray, backends: list[str], args
) -> list[dict]:
    size = len(gallery)
    ref = create_index("exact", device=args.device).build(gallery)
    truth = ref.search(queries, 1)[1][:, 0]
    del ref
    rows, built = [], {}
    for spec in backends:
        name, params = parse_backend(spec)
        if name == "faiss-hnsw" and size > args.hnsw_max_size:
            print(f"  {spec} skipped at {size:,} (build cost on this machine; raise --hnsw-max-size)", flush=True)
            continue
        key = (name, tuple(sorted((k, v) for k, v in params.items() if k not in SEARCH_PARAMS)))
        if key not in built:
            built.clear()  # one big index in memory at a time
            gc.collect()
            index = make_backend(name, params, args)
            t = time.perf_counter()
            index.build(gallery, labels)  # whose face each row is: only faiss-people uses it
            built[key] = (index, time.perf_counter() - t)
        index, build_s = built[key]
        for k, v in params.items():
            if k in SEARCH_PARAMS:
                setattr(index, k, v)
        index.search(queries[:8], 1)  # warm-up (threads, lazy allocations)
        t = time.perf_counter()
        found = index.search(queries, 1)[1][:, 0]
        batch_s = time.perf_counter() - t
        lat = single_latencies(index, queries, args.single, args.single_budget)
        row = {
            "gallery": label,
            "size": size,
            "backend": spec,
            "params": dict(index.params),
            "recall_at_1": float(np.mean(found == truth)),
            "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99)),
            "single_queries": int(len(lat)),
            "qps": float(len(queries) / batch_s),
            "build_s": float(build_s),
            "memory_mb": index.memory_bytes() / 2**20,
        }
        rows.append(row)
        print_table([row], COLUMNS, header=False)
    built.clear()
    return rows


COLUMNS = ["gallery", "size", "backend", "recall_at_1", "p50_ms", "p99_ms", "qps", "build_s", "memory_mb"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,100000,1000000", help="synthetic gallery sizes")
    ap.add_argument(
        "--backends",
        default="sklearn,exact,faiss-ivf:nprobe=16,faiss-ivf:nprobe=64,faiss-hnsw,"
        "faiss-people:nprobe=64,faiss-people:nprobe=128,faiss-people:nprobe=256",
        help="comma-separated; options after a colon, separated by ';' (faiss-ivf:nprobe=64;nlist=4096)",
    )
    ap.add_argument("--real", default=None, help=".npz with embeddings (n, d) and labels (n,) of real faces (LFW)")
    ap.add_argument("--queries", type=int, default=1000, help="queries per gallery (batched throughput, recall)")
    ap.add_argument("--single", type=int, default=300, help="single-query calls timed per backend, at most")
    ap.add_argument("--single-budget", type=float, default=20.0, help="seconds of single-query timing per backend")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument(
        "--synthetic",
        default="auto",
        choices=("auto", "lfw-covariance", "isotropic"),
        help="how synthetic faces vary: with LFW's measured covariances (needs --real; the default "
        "when given) or isotropically (matching only LFW's mean distances)",
    )
    ap.add_argument("--device", default="auto", help="exact search device: auto, cpu, cuda")
    ap.add_argument("--hnsw-max-size", type=int, default=200_000, help="skip HNSW above this size (slow build)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    backends = [b for b in args.backends.split(",") if b]
    same, diff = LFW_SAME, LFW_DIFF
    rows = []
    print_table([], COLUMNS)
    if args.real:
        same, diff = measured_distances(args.real)
        g, lab, q = real(args.real, args.queries, args.seed)
        rows += bench_gallery("lfw", g, lab, q, backends, args)
    kind = args.synthetic if args.synthetic != "auto" else ("lfw-covariance" if args.real else "isotropic")
    if kind == "lfw-covariance" and not args.real:
        raise SystemExit("--synthetic lfw-covariance needs --real (LFW embeddings to measure)")
    model = covariance_model(args.real) if kind == "lfw-covariance" else None
    for size in [int(s) for s in args.sizes.split(",") if s]:
        if model is not None:
            g, lab, q = synthetic_lfw_like(size, args.queries, model, args.seed)
        else:
            g, lab, q = synthetic(size, args.queries, args.dim, same, diff, args.seed)
        rows += bench_gallery(f"synthetic-{kind}", g, lab, q, backends, args)
        del g, lab, q
        gc.collect()
    print()
    print_table(rows, COLUMNS)
    write_json(
        args.json,
        {
            "machine": machine(),
            "synthetic": kind,
            "same_person_distance": same,
            "different_person_distance": diff,
            "queries": args.queries,
            "rows": rows,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
