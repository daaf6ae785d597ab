"""People discovery benchmarks.

python bench/cluster.py calibrate --json bench/reported/cluster_calibration.json
    the clustering threshold of a pipeline (``embed``'s options; default facerec cluster's): the
    distance between faces of different people at a pairwise false-accept rate of 1e-4 on
    LFW View 1's development people (peopleDevTrain.txt), what facerec.people.threshold holds.
    It also prints the LFW-wide pairwise/BCubed F1 at FARs around it (how sensitive it is).

python bench/cluster.py scale --sizes 10000,100000,1000000 --json bench/reported/cluster_scale_cpu.json
    clustering alone (after embedding) on synthetic faces: seconds and peak memory per size,
    each size in its own process; at 10^4 the graph average linkage that serves large
    collections is compared with the exact one on the same faces.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, print_table, write_json  # noqa: E402


def lfw_dir() -> Path:
    from facerec.lfw import sklearn_data_home

    return Path(sklearn_data_home(None)) / "lfw_home" / "lfw_funneled"


def embed_lfw(args):
    """Every LFW image's subject through the default clustering pipeline (cached under --art-dir)."""
    from facerec.cli.people import CLUSTER_ALIGNMENT, CLUSTER_DETECTOR, CLUSTER_EMBEDDER, CLUSTER_FLIP
    from facerec.datasets import load_dataset
    from facerec.evaluate.common import embed_samples
    from facerec.pipeline import Pipeline

    data = load_dataset(args.data or lfw_dir())
    pipe = Pipeline.create(
        embedder=CLUSTER_EMBEDDER,
        detector=CLUSTER_DETECTOR,
        alignment=CLUSTER_ALIGNMENT,
        flip=CLUSTER_FLIP,
        device="cpu",
        cache_dir=args.art_dir,
    )
    emb = embed_samples(pipe, data.samples, quiet=True)
    names = np.array([data.names[s.label] for s in data.samples])
    return pipe, emb.embeddings, data.labels, names


def cmd_embed(args) -> int:
    """One shard of LFW (every --shards-th image from --shard) into an .npz of subject embeddings:
    dlib runs on one core, so two shards in two processes use both."""
    from facerec.datasets import load_dataset
    from facerec.evaluate.common import embed_samples
    from facerec.pipeline import Pipeline

    data = load_dataset(args.data or lfw_dir())
    samples = data.samples[args.shard :: args.shards]
    pipe = Pipeline.create(
        embedder=args.embedder, detector=args.detector, alignment=args.alignment, flip=args.flip, device="cpu"
    )
    t0 = time.perf_counter()
    emb = embed_samples(pipe, samples, quiet=False)
    secs = time.perf_counter() - t0
    np.savez(
        args.out,
        files=np.array([str(s.source) for s in samples]),
        names=np.array([data.names[s.label] for s in samples]),
        embeddings=emb.embeddings,
        fallback=emb.fallback,
        seconds=secs,
        pipeline=json.dumps(pipe.config.to_dict()),
    )
    print(f"{len(samples)} images in {secs:.0f} s ({len(samples) / secs:.2f} img/s) -> {args.out}")
    return 0


def load_embeddings(paths: str):
    """Shards written by ``embed``, joined and put back in LFW's order."""
    parts = [np.load(p, allow_pickle=False) for p in paths.split(",")]
    files = np.concatenate([p["files"] for p in parts])
    order = np.argsort(files, kind="stable")
    names = np.concatenate([p["names"] for p in parts])[order]
    emb = np.concatenate([p["embeddings"] for p in parts])[order]
    fallback = int(sum(p["fallback"].sum() for p in parts))
    seconds = float(sum(float(p["seconds"]) for p in parts))
    pipeline = json.loads(str(parts[0]["pipeline"]))
    _, labels = np.unique(names, return_inverse=True)
    return pipeline, emb, labels, names, {"fallback": fallback, "embed_cpu_seconds": seconds, "shards": len(parts)}


def cmd_calibrate(args) -> int:
    """The threshold at CLUSTER_FAR on LFW View 1's development people, then all of LFW clustered
    with it: the chosen algorithm, every other one and the baselines (the evaluate-cluster
    contract), and how the F1 moves with the FAR."""
    from facerec.embed import get_spec
    from facerec.evaluate.clustering import evaluate_clustering
    from facerec.people.algorithms import DEFAULT_ALGORITHM, cluster
    from facerec.people.metrics import scores
    from facerec.people.threshold import CLUSTER_FAR, impostor_threshold

    if args.embeddings:
        config, emb, labels, names, extra = load_embeddings(args.embeddings)
    else:
        pipe, emb, labels, names = embed_lfw(args)
        config, extra = pipe.config.to_dict(), {}
    people_file = Path(args.data or lfw_dir()).parent / "peopleDevTrain.txt"
    dev = {line.split("\t")[0] for line in people_file.read_text().splitlines()[1:] if line.strip()}
    on_dev = np.isin(names, list(dev))
    rows = []
    for far in (1e-3, CLUSTER_FAR, 1e-5):
        thr = impostor_threshold(emb[on_dev], labels[on_dev], far)
        s = scores(labels, cluster(emb, thr, min_faces=args.min_faces))
        rows.append(
            {
                "far": f"{far:g}",
                "threshold": round(thr, 4),
                "pairwise_f1": round(s["pairwise"]["f1"], 4),
                "bcubed_f1": round(s["bcubed"]["f1"], 4),
                "clusters": s["clusters"],
            }
        )
    print_table(rows, ["far", "threshold", "pairwise_f1", "bcubed_f1", "clusters"])
    chosen = next(r for r in rows if r["far"] == f"{CLUSTER_FAR:g}")
    print(
        f"threshold at FAR {CLUSTER_FAR:g}: {chosen['threshold']} on {int(on_dev.sum())} dev images (the shipped one: bench/reference.py measure)"
    )
    result = evaluate_clustering(
        emb,
        labels,
        threshold=chosen["threshold"],
        algorithm=DEFAULT_ALGORITHM,
        min_faces=args.min_faces,
        embedder=config["embedder"],
        default_threshold=get_spec(config["embedder"]).default_threshold,
    )
    for title, r in (("all of LFW", result), ("people with >= 2 images", result["people_2plus"])):
        table = [{"run": f"{DEFAULT_ALGORITHM} (ours)", **_flat(r)}]
        table += [{"run": a, **_flat(v)} for a, v in r["tried"].items()]
        table += [{"run": f"{b} (baseline)", **_flat(v)} for b, v in r["baselines"].items()]
        print(f"# {title}: {r['faces']} faces, {r['people']} people")
        print_table(
            table, ["run", "clusters", "ungrouped", "pair_p", "pair_r", "pair_f1", "b3_p", "b3_r", "b3_f1", "s"]
        )
    write_json(
        args.json,
        result
        | {
            "machine": machine(),
            "command": "python bench/cluster.py " + " ".join(sys.argv[1:]),
            "pipeline": config,
            "far": CLUSTER_FAR,
            "calibration_images": int(on_dev.sum()),
            "calibration_people": len(dev),
            "sensitivity": rows,
            "sensitivity_note": "F1 on all of LFW, which includes the development people: it shows how sensitive "
            "the result is to the FAR; the FAR was not chosen on it",
            **extra,
        },
    )
    return 0


def _flat(r: dict) -> dict:
    p, b = r["pairwise"], r["bcubed"]
    return {
        "clusters": r["clusters"],
        "ungrouped": round(r["ungrouped"], 3),
        "pair_p": round(p["precision"], 4),
        "pair_r": round(p["recall"], 4),
        "pair_f1": round(p["f1"], 4),
        "b3_p": round(b["precision"], 4),
        "b3_r": round(b["recall"], 4),
        "b3_f1": round(b["f1"], 4),
        "s": r["seconds"],
    }


def synthetic(n: int, d: int = 128, seed: int = 0):
    """``n`` unit vectors of people with Zipf-like sizes (many people with one face, a few with
    hundreds, as in a photo library), the spread of a person's faces like dlib's on LFW."""
    rng = np.random.default_rng(seed)
    sizes = np.minimum(rng.zipf(1.8, size=n), 500)
    sizes = sizes[np.cumsum(sizes) <= n]
    sizes = np.append(sizes, n - sizes.sum()) if sizes.sum() < n else sizes
    labels = np.repeat(np.arange(len(sizes)), sizes)
    centres = rng.normal(size=(len(sizes), d)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = centres[labels] + rng.normal(scale=0.2 / np.sqrt(d) * np.sqrt(2), size=(n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), labels


def one_size(n: int, threshold: float, compare: bool) -> dict:
    from facerec.people.algorithms import average_linkage, graph_average_linkage, knn_graph, relabel
    from facerec.people.metrics import scores

    x, y = synthetic(n)
    t0 = time.perf_counter()
    labels = relabel(average_linkage(x, threshold), 3)
    secs = time.perf_counter() - t0
    out = {"faces": n, "people": int(len(np.unique(y))), "seconds": round(secs, 2)}
    s = scores(y, labels)
    out.update(pairwise_f1=round(s["pairwise"]["f1"], 4), bcubed_f1=round(s["bcubed"]["f1"], 4))
    if compare:  # the graph version against the exact one on the same faces
        t0 = time.perf_counter()
        g = relabel(graph_average_linkage(x, *knn_graph(x), threshold), 3)
        out["graph_seconds"] = round(time.perf_counter() - t0, 2)
        sg = scores(y, g)
        out["graph_pairwise_f1"] = round(sg["pairwise"]["f1"], 4)
        out["graph_bcubed_f1"] = round(sg["bcubed"]["f1"], 4)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def cmd_scale(args) -> int:
    from facerec.people.algorithms import EXACT_AVERAGE_MAX

    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        cmd = [sys.executable, __file__, "_one", str(n), str(args.threshold)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"{n} faces: {done.stderr[-2000:]}")
        row = json.loads(done.stdout.strip().splitlines()[-1])
        row["method"] = "exact" if n <= EXACT_AVERAGE_MAX else "k-NN graph"
        rows.append(row)
        cols = ["faces", "people", "method", "seconds", "peak_rss_mb", "pairwise_f1", "bcubed_f1"]
        print_table([row], cols + ["graph_seconds", "graph_pairwise_f1", "graph_bcubed_f1"], header=len(rows) == 1)
    write_json(
        args.json,
        {
            "machine": machine(),
            "command": "python bench/cluster.py " + " ".join(sys.argv[1:]),
            "threshold": args.threshold,
            "rows": rows,
        },
    )
    return 0


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_one":
        n, thr = int(sys.argv[2]), float(sys.argv[3])
        print(json.dumps(one_size(n, thr, compare=n <= 10_000)))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("calibrate")
    c.add_argument("--data", default=None, help="LFW's lfw_funneled folder (default: scikit-learn's)")
    c.add_argument("--art-dir", default="artifacts", help="the content cache (shared with facerec evaluate)")
    c.add_argument("--min-faces", type=int, default=3)
    c.add_argument("--embeddings", default=None, help="shards from `embed` (a,b), instead of embedding here")
    c.add_argument("--json", default=None)
    e = sub.add_parser("embed")
    e.add_argument("--data", default=None)
    e.add_argument("--shard", type=int, default=0)
    e.add_argument("--shards", type=int, default=1)
    e.add_argument("--out", required=True)
    from facerec.cli.people import CLUSTER_ALIGNMENT, CLUSTER_DETECTOR, CLUSTER_EMBEDDER, CLUSTER_FLIP

    e.add_argument("--embedder", default=CLUSTER_EMBEDDER)
    e.add_argument("--detector", "--align", default=CLUSTER_DETECTOR)
    e.add_argument("--alignment", default=CLUSTER_ALIGNMENT)
    e.add_argument("--flip", action="store_true", default=CLUSTER_FLIP)
    s = sub.add_parser("scale")
    s.add_argument("--sizes", default="10000,100000,1000000")
    s.add_argument("--threshold", type=float, default=0.5)
    s.add_argument("--json", default=None)
    args = ap.parse_args()
    return {"calibrate": cmd_calibrate, "embed": cmd_embed, "scale": cmd_scale}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
