"""bench/search.py runs, keeps its JSON contract, and every backend is near-exact on a small gallery."""

import json
import subprocess
import sys

from conftest import ROOT


def test_search_benchmark_contract(tmp_path):
    out = tmp_path / "search.json"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "search.py"),
            "--sizes",
            "2000",
            "--queries",
            "100",
            "--single",
            "10",
            "--single-budget",
            "2",
            "--json",
            str(out),
        ],
        check=True,
        cwd=ROOT,
    )
    rows = json.loads(out.read_text())["rows"]
    backends = {r["backend"] for r in rows}
    assert {"sklearn", "exact", "faiss-hnsw", "faiss-people:nprobe=128"} <= backends
    for r in rows:
        assert {"size", "backend", "recall_at_1", "p50_ms", "p99_ms", "qps"} <= set(r) and r["size"] == 2000
        assert r["recall_at_1"] >= (0.9 if r["backend"].startswith("faiss-ivf") else 0.98), r
