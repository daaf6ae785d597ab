"""``facerec ingest --engine ray`` on Ray Data with the real models (CASIA FaceNet, YuNet) and real
LFW photos, into Milvus Lite: the same faces as the local engine, a face actor killed mid-run, and
a two-node Ray cluster made of two ``ray start`` processes on loopback."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facerec.ingest import ingest
from facerec.store import open_store

from conftest import KNOWN, require_lfw

ray = pytest.importorskip("ray")
pytest.importorskip("milvus_lite")

REAL = dict(embedder="facenet-casia", detector="yunet", device="cpu")
PER_PERSON = 8  # 6 people x 8 photos: 48 images, a few with bystanders


@pytest.fixture(scope="module")
def photo_list(tmp_path_factory):
    lfw = require_lfw()
    paths = [str(f) for p in KNOWN for f in sorted((lfw / p).glob("*.jpg"))[:PER_PERSON]]
    out = tmp_path_factory.mktemp("ingest") / "photos.txt"
    out.write_text("\n".join(paths) + "\n")
    return out


@pytest.fixture(scope="module")
def local_store(photo_list):
    uri = f"milvus:{photo_list.parent / 'local.db'}"
    r = ingest(photo_list, uri, engine="local", calibrate=False, **REAL)
    assert r.failures == 0 and r.stored_images == len(KNOWN) * PER_PERSON
    assert r.faces >= r.stored_images  # every LFW photo has its subject, some a bystander too
    return uri, r, stored(uri)


def stored(uri):
    with open_store(uri) as st:
        return st.count(unnamed=True), st.face_ids()


def test_ray_stores_the_same_faces_as_local(photo_list, local_store):
    local_uri, local, local_rows = local_store
    uri = f"milvus:{photo_list.parent / 'ray.db'}"
    r = ingest(photo_list, uri, engine="ray", batch_size=16, calibrate=False, **REAL)
    assert r.engine == "ray" and r.failures == 0 and r.workers == 1
    assert (r.faces, r.stored_images, r.no_face) == (local.faces, local.stored_images, local.no_face)
    count, ids = stored(uri)
    assert (count, ids) == local_rows
    assert r.nodes and "local" not in r.nodes  # the faces ran in a Ray actor, not here
    assert os.getpid() not in r.worker_pids

    # the same answers: every stored face's nearest neighbours in one store are the same in the other
    from facerec.pipeline import Pipeline

    pipe = Pipeline.create(**REAL)
    queries = np.concatenate([pipe.embed(p) for p in photo_list.read_text().split()[::7]])
    with open_store(local_uri) as a, open_store(uri) as b:
        hits_a = a.search(queries, 5, unnamed=True)
        hits_b = b.search(queries, 5, unnamed=True)
    assert [[h["face_id"] for h in row] for row in hits_a] == [[h["face_id"] for h in row] for row in hits_b]
    for ra, rb in zip(hits_a, hits_b):
        assert np.allclose([h["distance"] for h in ra], [h["distance"] for h in rb], atol=1e-4)


def test_a_killed_face_actor_loses_and_repeats_nothing(photo_list, local_store):
    """SIGKILL the face actor's process after the first batch: Ray Data starts another and
    retries the batch it held; every image is stored exactly once and nothing is reported failed."""
    uri = f"milvus:{photo_list.parent / 'killed.db'}"
    killed = []

    def kill_once(sink):
        if not killed:
            pid = next(iter(sink.pids))
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    r = ingest(photo_list, uri, engine="ray", batch_size=4, calibrate=False, on_batch=kill_once, **REAL)
    assert killed
    assert r.failures == 0 and r.failed == []
    assert len(r.worker_pids) >= 2 and killed[0] in r.worker_pids  # a new actor took over
    assert (r.faces, r.stored_images) == (local_store[1].faces, local_store[1].stored_images)
    assert stored(uri) == local_store[2]  # every face once: count(*) would count a repeat


@pytest.fixture
def two_node_cluster(tmp_path):
    """A Ray head and a second node on loopback, each with one CPU (so that each holds one face
    actor), as `ray start` makes them on two machines."""
    from facerec.store.server_process import free_port

    ray_bin = str(Path(sys.executable).with_name("ray"))
    port = free_port()
    common = ["--num-cpus", "1", "--object-store-memory", str(300 << 20), "--disable-usage-stats"]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    try:
        head = [ray_bin, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port)]
        subprocess.run([*head, "--include-dashboard", "false", *common], env=env, check=True, timeout=120)
        join = [ray_bin, "start", "--address", f"127.0.0.1:{port}", "--node-ip-address", "127.0.0.1"]
        subprocess.run([*join, *common], env=env, check=True, timeout=120)
        yield f"127.0.0.1:{port}", env
    finally:
        subprocess.run([ray_bin, "stop", "--force"], env=env, timeout=120, capture_output=True)


def test_two_node_cluster_runs_the_ingest(photo_list, local_store, two_node_cluster, tmp_path):
    address, env = two_node_cluster
    uri = f"milvus:{tmp_path / 'cluster.db'}"
    report = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "facerec", "ingest", str(photo_list), "--store", uri, "--engine", "ray"]
    cmd += ["--ray-address", address, "--embedder", "facenet-casia", "--align", "yunet", "--batch-size", "8"]
    cmd += ["--no-calibrate", "--quiet", "--report", str(report)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    r = json.loads(report.read_text())
    assert r["workers"] == 2 and len(r["nodes"]) == 2  # one face actor on each node
    assert r["failures"] == 0 and r["faces"] == local_store[1].faces
    assert stored(uri) == local_store[2]
