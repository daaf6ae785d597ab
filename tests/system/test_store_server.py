"""The gallery on a real Milvus server (the ``milvus`` package's standalone server, started here):
the same answers as a model file, replicas that share it, kill -9 of the service, the database
going away and coming back. The fake detector and embedder keep the models out of it."""

import signal
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from facerec.api import load_model, train
from facerec.errors import StoreUnavailable
from facerec.store.server_process import MilvusServer, free_port

from conftest import FAKE_TRAIN, answers, person_image, png, queries, serve_fake, wait_up

pytest.importorskip("milvus")

#: How long a replica may take to show another's change (a sync every 1 s, two Strong queries;
#: 1.6-4.7 s measured on 2 busy cores).
SYNC_BOUND_S = 10.0


@pytest.fixture(scope="module")
def milvus(tmp_path_factory):
    server = MilvusServer(tmp_path_factory.mktemp("milvus")).start()
    yield server
    server.stop()


def npz(tmp_path, people: int, per: int) -> Path:
    X = np.stack([person_image(p, v) for p in range(people) for v in range(per)])
    path = tmp_path / f"d{people}.npz"
    np.savez(path, X=X, y=np.repeat(np.arange(people), per), names=np.array([f"person_{p}" for p in range(people)]))
    return path


def enrol(base, name, person, variants=(90, 91), client=httpx):
    files = [("images", (f"{v}.png", png(person_image(person, v)), "image/png")) for v in variants]
    return client.post(f"{base}/v1/people/{name}/faces", files=files, timeout=30)


def test_a_server_gallery_answers_as_the_file_gallery(tmp_path, milvus, synthetic_npz, capsys):
    train(synthetic_npz, model_path=tmp_path / "m.npz", **FAKE_TRAIN)
    uri = f"{milvus.uri}#same_answers"
    train(synthetic_npz, store=uri, **FAKE_TRAIN)
    folder = queries(tmp_path)
    assert answers(uri, folder, capsys) == answers(tmp_path / "m.npz", folder, capsys)
    assert load_model(uri).people() == load_model(tmp_path / "m.npz").people()


def test_two_replicas_share_enrolments_and_removals(tmp_path, milvus):
    from facerec.server import create_app, serving

    uri = f"{milvus.uri}#replicas"
    train(npz(tmp_path, 26, 3), store=uri, **FAKE_TRAIN)  # person_6 .. person_25 are the ones removed
    apps = [create_app(uri, device="cpu", workers=2, sync_s=1.0) for _ in range(2)]
    for app in apps:
        app.state.service.ready.wait(60)
    errors, lags = [], []
    with serving(apps[0]) as a, serving(apps[1]) as b:
        stop = threading.Event()

        def identify(base, n):
            with httpx.Client() as c:
                for i in range(n):
                    img = png(person_image(i % 6, 60 + i % 7))
                    r = c.post(f"{base}/v1/identify", files={"image": ("q.png", img, "image/png")}, timeout=30)
                    if r.status_code != 200:
                        errors.append(("identify", r.status_code, r.text))

        def enrolments():
            with httpx.Client() as c:
                for i in range(100):
                    r = enrol(a, f"new_{i}", 100 + i, client=c)
                    if r.status_code != 201:
                        errors.append(("enrol", r.status_code, r.text))

        def removals():
            with httpx.Client() as c:
                for p in range(6, 26):
                    r = c.delete(f"{b}/v1/people/person_{p}", timeout=30)
                    if r.status_code != 200:
                        errors.append(("remove", r.status_code, r.text))

        threads = [threading.Thread(target=identify, args=(base, 250)) for base in (a, b, a, b)]
        threads += [threading.Thread(target=enrolments), threading.Thread(target=removals)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(600)
        stop.set()
        assert errors == []
        want = {f"person_{p}" for p in range(6)} | {f"new_{i}" for i in range(100)}
        deadline = time.time() + SYNC_BOUND_S
        while True:
            seen = [{p["name"] for p in httpx.get(f"{base}/v1/people").json()["people"]} for base in (a, b)]
            if seen[0] == seen[1] == want or time.time() > deadline:
                break
            time.sleep(0.2)
        assert seen[0] == want and seen[1] == want
        # how long one replica's enrolment takes to show on the other
        for i in range(3):
            assert enrol(a, f"lag_{i}", 300 + i).status_code == 201
            t0 = time.time()
            while f"lag_{i}" not in {p["name"] for p in httpx.get(f"{b}/v1/people").json()["people"]}:
                assert time.time() - t0 < SYNC_BOUND_S
                time.sleep(0.05)
            lags.append(time.time() - t0)
    for app in apps:
        app.state.service.store.close()
    print(f"replica lag: {', '.join(f'{x:.2f}' for x in lags)} s (bound {SYNC_BOUND_S} s)")


@pytest.mark.parametrize("backend", ["file", "milvus"])
def test_kill_9_loses_no_acknowledged_enrolment(tmp_path, milvus, backend):
    model = tmp_path / "m.npz" if backend == "file" else f"{milvus.uri}#crash"
    if backend == "file":
        train(npz(tmp_path, 6, 3), model_path=model, **FAKE_TRAIN)
    else:
        train(npz(tmp_path, 6, 3), store=model, **FAKE_TRAIN)
    acked, sent = set(), set()
    rng = np.random.default_rng(0)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "serve.log", "ab")
    n = 0
    for round_ in range(5):
        proc = serve_fake(model, port, log)
        wait_up(base, proc)
        stop, warm = threading.Event(), threading.Event()

        def stream(round_=round_, stop=stop, warm=warm):
            nonlocal n
            with httpx.Client() as c:
                while not stop.is_set():
                    name = f"r{round_}_{n}"
                    n += 1
                    sent.add(name)
                    try:
                        if enrol(base, name, 200 + n % 500, client=c).status_code == 201:
                            acked.add(name)
                            warm.set()
                    except httpx.HTTPError:
                        return  # the service died under this request

        t = threading.Thread(target=stream)
        t.start()
        assert warm.wait(60), "no enrolment succeeded"  # the first one warms the models up
        time.sleep(float(rng.uniform(0.3, 1.5)))  # then kill it at some moment of the stream
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        stop.set()
        t.join(60)
    proc = serve_fake(model, port, log)
    try:
        wait_up(base, proc)
        people = {p["name"]: p["images"] for p in httpx.get(f"{base}/v1/people").json()["people"]}
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert len(acked) >= 10
    missing = sorted(acked - set(people))
    assert missing == [], f"acknowledged but lost: {missing}"
    half = {name: c for name, c in people.items() if name in sent and c != 2}
    assert half == {}, f"half-present enrolments: {half}"


def test_the_database_going_away_gives_503_and_the_service_comes_back(tmp_path, milvus):
    # last in this file: it stops the module's server and starts it again (one server per machine)
    from facerec.server import create_app, serving
    from facerec.store.milvus import TIMEOUT_S

    server = milvus
    try:
        uri = f"{server.uri}#outage"
        train(npz(tmp_path, 6, 3), store=uri, **FAKE_TRAIN)
        app = create_app(uri, device="cpu", workers=2, sync_s=1.0)
        app.state.service.ready.wait(60)
        with serving(app) as base:
            assert enrol(base, "before", 101).status_code == 201
            server.stop()
            worst = 0.0
            for i in range(3):
                t0 = time.time()
                r = enrol(base, f"during_{i}", 110 + i)
                worst = max(worst, time.time() - t0)
                assert r.status_code == 503 and "unavailable" in r.json()["error"], r.text
            assert worst < 2 * TIMEOUT_S + 5, f"a request waited {worst:.1f} s"
            # identification needs no database: it searches the service's own copy
            img = png(person_image(1, 70))
            r = httpx.post(f"{base}/v1/identify", files={"image": ("q.png", img, "image/png")}, timeout=30)
            assert r.status_code == 200 and r.json()["faces"][0]["pred"] == "person_1"
            server.start()
            back = time.time()
            while True:
                r = enrol(base, "after", 120)
                if r.status_code == 201:
                    break
                assert r.status_code == 503 and time.time() - back < 30, r.text
                time.sleep(0.5)
            recovered = time.time() - back
            names = {p["name"] for p in httpx.get(f"{base}/v1/people").json()["people"]}
            assert {"before", "after"} <= names and not any(n.startswith("during") for n in names)
        app.state.service.store.close()
        deadline = time.time() + 120  # a restarted server loads the collection back in its own time
        while True:
            try:
                stored = {n for n, _ in load_model(uri).people()}
                break
            except StoreUnavailable:
                assert time.time() < deadline
                time.sleep(2)
        assert {"before", "after"} <= stored
        print(f"503s answered within {worst:.1f} s; serving enrolments again {recovered:.1f} s after the database")
    finally:
        if server.proc is None or server.proc.poll() is not None:
            server.start()  # the module's server, for whatever runs after
