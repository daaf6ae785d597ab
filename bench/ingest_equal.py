"""The same photo collection through ``facerec ingest --engine local`` and ``--engine ray``: do the
two Milvus Lite stores hold the same faces, and do they answer searches the same?

Runs the two CLI commands as a user would (each its own process; Ray's local cluster is started
by the command), then compares face counts, face ids, and for a sample of stored faces the ids and
distances of their nearest neighbours in both stores.

    python bench/ingest_equal.py ../shared/data/lfw_home/lfw_funneled --json bench/reported/ingest_equal_lfw.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, print_table, write_json  # noqa: E402


def run_engine(source: str, out: Path, engine: str, extra: list[str]) -> dict:
    store = f"milvus:{out / (engine + '.db')}"
    report = out / f"{engine}.json"
    cmd = [sys.executable, "-m", "facerec", "ingest", source, "--store", store, "--engine", engine]
    cmd += [*extra, "--no-calibrate", "--quiet", "--report", str(report)]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"{engine}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    r = json.loads(report.read_text())
    return {"engine": engine, "store": store, "wall_s": round(wall, 1), "report": r, "command": " ".join(cmd)}


def stored_vectors(uri: str) -> tuple[list[str], np.ndarray]:
    from facerec.store import open_store
    from facerec.store.milvus import _LIVE

    with open_store(uri) as st:
        hits = st._query_all(_LIVE, ["face_id", "vector"])
    hits.sort(key=lambda h: h["face_id"])
    return [h["face_id"] for h in hits], np.array([h["vector"] for h in hits], np.float32)


def compare(a_uri: str, b_uri: str, sample: int, k: int) -> dict:
    from facerec.store import open_store

    ids_a, vec_a = stored_vectors(a_uri)
    ids_b, vec_b = stored_vectors(b_uri)
    out = {"faces_a": len(ids_a), "faces_b": len(ids_b), "same_face_ids": ids_a == ids_b}
    if ids_a == ids_b:
        out["max_abs_embedding_diff"] = float(np.abs(vec_a - vec_b).max()) if len(ids_a) else 0.0
    pick = np.linspace(0, len(ids_a) - 1, min(sample, len(ids_a))).astype(int)
    queries = vec_a[pick]
    with open_store(a_uri) as a, open_store(b_uri) as b:
        unnamed_a, unnamed_b = a.count(unnamed=True), b.count(unnamed=True)
        hits_a = a.search(queries, k, unnamed=True)
        hits_b = b.search(queries, k, unnamed=True)
    same_ids = sum([h["face_id"] for h in ra] == [h["face_id"] for h in rb] for ra, rb in zip(hits_a, hits_b))
    gaps = [abs(x["distance"] - y["distance"]) for ra, rb in zip(hits_a, hits_b) for x, y in zip(ra, rb)]
    out.update(
        unnamed_a=unnamed_a,
        unnamed_b=unnamed_b,
        queries=len(pick),
        k=k,
        same_neighbour_lists=same_ids,
        max_distance_gap=float(max(gaps, default=0.0)),
    )
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", help="a photo folder (or any source facerec ingest takes)")
    ap.add_argument("--embedder", default="facenet-casia")
    ap.add_argument("--detector", "--align", default="yunet")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--sample", type=int, default=2000, help="stored faces used as search queries")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--out-dir", default=None, help="keep the two stores here (default: a temporary folder)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    extra = ["--embedder", args.embedder, "--detector", args.detector]
    if args.batch_size:
        extra += ["--batch-size", str(args.batch_size)]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out_dir or tmp)
        out.mkdir(parents=True, exist_ok=True)
        runs = [run_engine(args.source, out, e, extra) for e in ("local", "ray")]
        cmp = compare(runs[0]["store"], runs[1]["store"], args.sample, args.k)

    keys = ("images", "stored_images", "faces", "no_face", "failures", "workers")
    rows = [{"engine": r["engine"], "wall_s": r["wall_s"], **{k: r["report"].get(k) for k in keys}} for r in runs]
    print_table(rows, ["engine", "wall_s", *keys])
    same = {k: runs[0]["report"].get(k) == runs[1]["report"].get(k) for k in ("images", "stored_images", "faces")}
    equal = all(same.values()) and cmp["same_face_ids"] and cmp["same_neighbour_lists"] == cmp["queries"]
    print(
        f"faces {cmp['faces_a']} vs {cmp['faces_b']}; same face ids: {cmp['same_face_ids']}; "
        f"same top-{cmp['k']} answers for {cmp['same_neighbour_lists']}/{cmp['queries']} queries "
        f"(largest distance gap {cmp['max_distance_gap']:.2e}) -> {'EQUAL' if equal else 'DIFFERENT'}"
    )
    write_json(
        args.json,
        {
            "machine": machine(),
            "command": "python bench/ingest_equal.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "source": args.source,
            "runs": [{k: r[k] for k in ("engine", "wall_s", "command")} | {"report": r["report"]} for r in runs],
            "same_counts": same,
            "comparison": cmp,
            "equal": equal,
        },
    )
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
