"""The issue's load check, as CI runs it: 2,000 identify requests at concurrency 16 on loopback with
50 enrolments during the load; zero errors, every enrolment present afterwards."""

import json
import sys

from conftest import LFW_DIR, ROOT, require_lfw

sys.path.insert(0, str(ROOT / "bench"))


def test_load_on_loopback(served_model, tmp_path):
    import load

    require_lfw()
    out = tmp_path / "load.json"
    code = load.main(
        [
            "--model",
            str(served_model),
            "--lfw-dir",
            str(LFW_DIR),
            "--requests",
            "2000",
            "--concurrency",
            "16",
            "--enrolments",
            "50",
            "--json",
            str(out),
        ]
    )
    r = json.loads(out.read_text())
    print(
        f"load: {r['requests']} requests, {r['errors']} errors, {r['throughput_rps']:.1f} req/s, "
        f"p50 {r['p50_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms, enrolments present "
        f"{r['enrolments_present']}/{r['enrolments']}"
    )
    assert r["requests"] == 2000 and r["errors"] == 0, r["error_samples"]
    assert r["enrolments_acknowledged"] == r["enrolments_present"] == 50
    assert code == 0
