"""Load test of ``facerec serve`` on loopback: identify requests at a fixed concurrency while
people are enrolled, then check that every enrolment is there.

    python bench/load.py --model models/knn_facenet-casia_lfw20.npz --requests 2000 --concurrency 16 \\
        --enrolments 50 --json bench/results/load.json

The server runs in this process on 127.0.0.1 (a free port); nothing leaves the machine. The
request loop is bounded by --requests and by --max-seconds.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from common import machine, print_table, write_json  # noqa: E402


def run_load(
    base: str,
    probes: list[Path],
    enrol_sets: list[tuple[str, list[Path]]],
    *,
    requests: int,
    concurrency: int,
    max_seconds: float,
    api_key: str | None = None,
) -> dict:
    import httpx

    headers = {"X-API-Key": api_key} if api_key else {}
    payloads = [(p.name, p.read_bytes()) for p in probes]
    latencies, errors, lock = [], [], threading.Lock()
    local = threading.local()
    stop_at = time.time() + max_seconds

    def client():
        if not hasattr(local, "c"):
            local.c = httpx.Client(base_url=base, headers=headers, timeout=120)
        return local.c

    def one(i: int):
        if time.time() > stop_at:
            return
        name, data = payloads[i % len(payloads)]
        t = time.perf_counter()
        try:
            r = client().post("/v1/identify", files={"image": (name, data, "image/jpeg")})
            ok = r.status_code == 200 and "faces" in r.json()
            detail = f"{r.status_code} {r.text[:200]}"
        except Exception as exc:  # connection errors count as errors, not crashes of the test
            ok, detail = False, repr(exc)
        with lock:
            latencies.append(time.perf_counter() - t)
            if not ok:
                errors.append(detail)

    enrolled, enrol_errors = [], []

    def enrol_all():
        c = httpx.Client(base_url=base, headers=headers, timeout=120)
        gap = max_seconds / max(1, len(enrol_sets)) / 4
        for name, files in enrol_sets:
            r = c.post(
                f"/v1/people/{name}/faces", files=[("images", (f.name, f.read_bytes(), "image/jpeg")) for f in files]
            )
            (enrolled if r.status_code == 201 else enrol_errors).append(name if r.status_code == 201 else r.text)
            time.sleep(random.uniform(0, gap))

    start = time.perf_counter()
    enroller = threading.Thread(target=enrol_all)
    enroller.start()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(requests)))
    enroller.join()
    wall = time.perf_counter() - start
    people = {p["name"] for p in httpx.get(f"{base}/v1/people", headers=headers).json()["people"]}
    lat = np.array(latencies) * 1e3
    return {
        "requests": len(latencies),
        "concurrency": concurrency,
        "errors": len(errors),
        "error_samples": errors[:5],
        "seconds": wall,
        "throughput_rps": len(latencies) / wall,
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "enrolments": len(enrol_sets),
        "enrolments_acknowledged": len(enrolled),
        "enrolment_errors": enrol_errors[:5],
        "enrolments_present": sum(1 for n in enrolled if n in people),
    }


def lfw_sets(lfw: Path, n_probes: int, n_enrol: int, seed: int = 0):
    """Probe images (people with >= 2 images), and n_enrol people (2 images each) to enrol."""
    rng = random.Random(seed)
    people = sorted(p for p in lfw.iterdir() if p.is_dir())
    rng.shuffle(people)
    enrol, probes = [], []
    for person in people:
        files = sorted(person.glob("*.jpg"))
        if len(enrol) < n_enrol and len(files) >= 2:
            enrol.append((f"load {person.name}", files[:2]))
        else:
            probes.extend(files)
        if len(enrol) >= n_enrol and len(probes) >= n_probes:
            break
    return probes[:n_probes], enrol


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="a trained model (a copy is served: enrolments change it)")
    ap.add_argument("--lfw-dir", default=str(ROOT.parent / "shared" / "data" / "lfw_home" / "lfw_funneled"))
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--enrolments", type=int, default=50)
    ap.add_argument("--distinct", type=int, default=2000, help="distinct probe images (the rest repeat)")
    ap.add_argument("--workers", type=int, default=2, help="server requests that embed at once")
    ap.add_argument("--max-seconds", type=float, default=1500)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    import shutil
    import tempfile

    from facerec.server import create_app, serving

    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "served.npz"
        shutil.copy(args.model, model)
        app = create_app(model, workers=args.workers, device="cpu")
        probes, enrol = lfw_sets(Path(args.lfw_dir), args.distinct, args.enrolments)
        with serving(app) as base:
            r = run_load(
                base, probes, enrol, requests=args.requests, concurrency=args.concurrency, max_seconds=args.max_seconds
            )
    print_table(
        [r],
        [
            "requests",
            "concurrency",
            "errors",
            "throughput_rps",
            "p50_ms",
            "p99_ms",
            "enrolments_acknowledged",
            "enrolments_present",
        ],
    )
    write_json(args.json, {"machine": machine(), "model": str(args.model), "server_workers": args.workers, **r})
    return 0 if r["errors"] == 0 and r["enrolments_present"] == r["enrolments"] else 1


if __name__ == "__main__":
    sys.exit(main())
