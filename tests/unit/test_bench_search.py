"""bench/search.py runs, keeps its JSON contract, and every backend is near-exact on a small gallery."""

import json
import runpy
import sys

import pytest

from conftest import ROOT


def test_search_benchmark_contract(tmp_path, monkeypatch):
    """Run as ``python bench/search.py ...`` runs it (``__main__``), in this process: torch, faiss
    and scikit-learn are imported already (a subprocess spent most of its time importing them)."""
    out = tmp_path / "search.json"
    monkeypatch.setattr(
        sys,
        "argv",
        [
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
    )
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script puts src/ and bench/ in front
    monkeypatch.chdir(ROOT)
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(sys.argv[0], run_name="__main__")
    assert exited.value.code == 0
    rows = json.loads(out.read_text())["rows"]
    backends = {r["backend"] for r in rows}
    assert {"sklearn", "exact", "faiss-hnsw", "faiss-people:nprobe=128"} <= backends
    for r in rows:
        assert {"size", "backend", "recall_at_1", "p50_ms", "p99_ms", "qps"} <= set(r) and r["size"] == 2000
        assert r["recall_at_1"] >= (0.9 if r["backend"].startswith("faiss-ivf") else 0.98), r
