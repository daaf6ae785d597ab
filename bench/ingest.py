"""Ingestion throughput: the same LFW photos through ``facerec ingest`` on the local engine and on
Ray Data with 1 and 2 face actors, each into a fresh Milvus Lite store, against the plain
pipeline (decode + detect + embed in this process, nothing stored) as the baseline.

The figure that matters is the steady rate (images per second after the first batch is stored:
no Ray start-up, no model load in it); the wall rate and the start-up are printed beside it.
Ray's overhead per image is local steady rate / Ray steady rate - 1 with the same number of
workers. On a 2-core machine two actors share the cores the one already used, so 2 workers
measures scheduling, not scaling; on a machine with cores (or GPUs) to spare it scales.

    python bench/ingest.py --images 400 --json bench/reported/ingest_cpu.json
    python bench/ingest.py --images 13233 --device cuda --gpus-per-worker 1 --batch-size 512   # one GPU actor
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, print_table, write_json  # noqa: E402


def lfw_paths(n: int, lfw_dir: str | None = None) -> list[str]:
    root = Path(os.environ.get("SCIKIT_LEARN_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    lfw = Path(lfw_dir) if lfw_dir else root / "lfw_home" / "lfw_funneled"
    if not lfw.is_dir():
        sys.exit(f"{lfw}: LFW not found (set SCIKIT_LEARN_DATA to the folder holding lfw_home)")
    # people in name order, up to 4 photos each: many identities, like a photo library
    paths = []
    for person in sorted(p for p in lfw.iterdir() if p.is_dir()):
        paths += [str(f) for f in sorted(person.glob("*.jpg"))[:4]]
        if len(paths) >= n:
            return paths[:n]
    return paths


def baseline(paths: list[str], options: dict, batch_size: int) -> dict:
    """The pipeline alone, in this process: what ingestion costs before any engine or store."""
    from facerec.pipeline import Pipeline

    pipe = Pipeline.create(**options)
    pipe.run(paths[:batch_size])  # models loaded and warm, as the engines' steady rate is
    t = time.perf_counter()
    faces = 0
    for i in range(0, len(paths), batch_size):
        faces += sum(len(r.faces) for r in pipe.run(paths[i : i + batch_size]))
    dt = time.perf_counter() - t
    return {
        "run": "pipeline only",
        "images": len(paths),
        "faces": faces,
        "steady_img_s": len(paths) / dt,
        "wall_img_s": len(paths) / dt,
        "first_batch_s": 0.0,
    }


def engine_run(
    listing: Path, workdir: Path, options: dict, engine: str, workers: int | None, batch_size: int, gpus: float = 0
) -> dict:
    from facerec.ingest import ingest

    name = f"{engine}-{workers or 1}"
    report = ingest(
        listing,
        f"milvus:{workdir / (name + '.db')}",
        engine=engine,
        workers=workers,
        batch_size=batch_size,
        calibrate=False,
        **({"gpus_per_worker": gpus} if engine == "ray" and gpus else {}),
        **options,
    )
    if report.failures:
        sys.exit(f"{name}: {report.failures} failures: {report.failed[:3]}")
    return {
        "run": f"{engine}, {workers or 1} worker" + ("s" if (workers or 1) > 1 else ""),
        "images": report.images,
        "faces": report.faces,
        "steady_img_s": report.steady_images_per_s,
        "wall_img_s": report.images_per_s,
        "first_batch_s": report.first_batch_s,
        "nodes": len(set(report.nodes)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=400)
    ap.add_argument("--embedder", default="facenet-casia")
    ap.add_argument("--detector", default="mtcnn", help="mtcnn (the seed's) or yunet")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--lfw-dir", default=None, help="person/person_NNNN.jpg folders (default: scikit-learn's LFW)")
    ap.add_argument("--gpus-per-worker", type=float, default=0, help="GPU runs: one Ray actor with this many GPUs")
    ap.add_argument("--json")
    a = ap.parse_args()
    ray_bin = Path(sys.executable).with_name("ray")  # the venv's, whether or not it is activated
    if ray_bin.exists():
        subprocess.run([str(ray_bin), "stop", "--force"], capture_output=True)  # no cluster left from a run before
    paths = lfw_paths(a.images, a.lfw_dir)
    options = dict(embedder=a.embedder, detector=a.detector, device=a.device)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "photos.txt"
        listing.write_text("\n".join(paths) + "\n")
        rows.append(baseline(paths, options, a.batch_size))
        rows.append(engine_run(listing, Path(tmp), options, "local", None, a.batch_size))
        for workers in (1,) if a.gpus_per_worker else (1, 2):  # a GPU run: the one actor against the pipeline
            rows.append(engine_run(listing, Path(tmp), options, "ray", workers, a.batch_size, a.gpus_per_worker))
    base, local, ray1 = rows[:3]
    ray2 = rows[3] if len(rows) > 3 else None
    for r in rows:
        r["vs_pipeline"] = r["steady_img_s"] / base["steady_img_s"]
    overhead = local["steady_img_s"] / ray1["steady_img_s"] - 1
    print(f"# ingest, {len(paths)} LFW photos, {a.embedder} + {a.detector} on {a.device}, batch {a.batch_size}")
    print_table(rows, ["run", "images", "faces", "steady_img_s", "wall_img_s", "first_batch_s", "vs_pipeline"])
    print(f"Ray overhead per image (1 worker vs local, steady): {overhead:+.1%}")
    if ray2:
        print(f"2 workers vs 1 (steady): {ray2['steady_img_s'] / ray1['steady_img_s']:.2f}x")
    print(f"Ray, 1 actor, against the single-process pipeline (steady): {ray1['vs_pipeline']:.1%}")
    write_json(
        a.json,
        {
            "machine": machine(),
            "options": options,
            "batch_size": a.batch_size,
            "rows": rows,
            "ray_overhead_per_image": overhead,
            "ray_2_vs_1_workers": ray2["steady_img_s"] / ray1["steady_img_s"] if ray2 else None,
            "ray_1_vs_pipeline": ray1["vs_pipeline"],
            "gpus_per_worker": a.gpus_per_worker,
        },
    )


if __name__ == "__main__":
    main()
