"""The service as an attacker and a careless client would try it, with the fake detector and
embedder (no weights): one test per finding of the hardening issue, each named after its case."""

import io
import json
import socket
import threading
import time

import httpx
import numpy as np
import pytest
from PIL import Image

from facerec.gallery import Gallery

from conftest import BASE, person_image, png


def enrol(client, name, person=2, **kw):
    files = [("images", (f"{i}.png", png(person_image(person, 90 + i)), "image/png")) for i in range(2)]
    return client.post(f"/v1/people/{name}/faces", files=files, **kw)


def names(path) -> set:
    return {n for n, _ in Gallery.load(path).people()}


# -- 1. cross-site writes ----------------------------------------------------------------------------
def test_cross_site_enrolment_is_refused(fake_client):
    r = enrol(fake_client, "Mallory", headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and "cross-site" in r.json()["error"]
    r = enrol(fake_client, "Mallory", headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    assert "Mallory" not in names(fake_client.model_path)
    ok = enrol(fake_client, "Alice", headers={"Origin": BASE, "Sec-Fetch-Site": "same-origin"})  # the page itself
    assert ok.status_code == 201, ok.text


def test_dns_rebinding_host_is_refused(fake_client):
    assert enrol(fake_client, "Bob").status_code == 201
    r = fake_client.delete("/v1/people/Bob", headers={"Host": "evil.example"})
    assert r.status_code == 421 and "host" in r.json()["error"]
    assert fake_client.get("/healthz", headers={"Host": "evil.example:8000"}).status_code == 421
    assert "Bob" in names(fake_client.model_path)
    assert fake_client.get("/healthz", headers={"Host": "localhost:8000"}).status_code == 200


# -- 2. connection exhaustion ------------------------------------------------------------------------
def test_idle_and_slowloris_connections_do_not_starve_healthz_or_identify(fake_server, monkeypatch):
    from facerec.server import protocol

    monkeypatch.setattr(protocol, "HEAD_TIMEOUT", 2.0)
    monkeypatch.setattr(protocol, "BODY_TIMEOUT", 3.0)
    base, _, _ = fake_server
    host, port = base.removeprefix("http://").split(":")
    idle = [socket.create_connection((host, int(port)), timeout=5) for _ in range(200)]
    slow = []
    for _ in range(20):
        s = socket.create_connection((host, int(port)), timeout=5)
        s.sendall(
            b"POST /v1/identify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n\r\n"
        )
        slow.append(s)
    try:
        t0 = time.monotonic()
        for i in range(6):  # ~3 s of trickled bodies while ordinary clients are served
            for s in slow:
                try:
                    s.send(b"x")
                except OSError:
                    pass
            t = time.monotonic()
            assert httpx.get(f"{base}/healthz", timeout=2).json()["ready"] is True
            r = httpx.post(
                f"{base}/v1/identify", files={"image": ("p.png", png(person_image(1, 70 + i)), "image/png")}, timeout=2
            )
            assert r.status_code == 200 and time.monotonic() - t < 2.0
            time.sleep(0.5)
        # the idle sockets are closed by the server once their head timeout passes
        time.sleep(max(0.0, 2.5 - (time.monotonic() - t0)))
        closed = 0
        for s in idle[:20]:
            s.settimeout(1)
            try:
                closed += s.recv(1) == b""
            except (ConnectionResetError, TimeoutError):
                closed += 1
        assert closed == 20
    finally:
        for s in idle + slow:
            s.close()


def test_accept_errors_are_logged_once_per_interval():
    import logging

    from facerec.server.protocol import OncePerInterval

    f = OncePerInterval(seconds=60)
    records = [
        logging.LogRecord(
            "asyncio",
            logging.ERROR,
            __file__,
            1,
            "socket.accept() out of system resource",
            None,
            (OSError, OSError(24, "Too many open files"), None),
        )
        for _ in range(500)
    ]
    passed = [r for r in records if f.filter(r)]
    assert len(passed) == 1 and passed[0].exc_info is None


# -- 3. event-loop stalls and work bounds --------------------------------------------------------------
def test_max_faces_is_enforced_before_any_embedding(fake_client):
    from facerec.pipeline import Pipeline

    from conftest import FAKE_INSTANCES

    wide = np.concatenate([person_image(1, 0), person_image(2, 0)], axis=1)  # the fake finds two faces
    pipe = Pipeline.create(embedder="fake", detector="fake", device="cpu", margin=4)
    before = sum(f.calls for f in FAKE_INSTANCES)
    (r,) = pipe.run([wide], max_faces=1)
    assert r.error.endswith("2 faces, over the limit of 1 per image") and r.faces == []
    assert sum(f.calls for f in FAKE_INSTANCES) == before


def test_a_full_queue_answers_503_with_retry_after(fake_model):
    from fastapi.testclient import TestClient

    from facerec.server import Limits, create_app

    gate = threading.Event()

    def slow_factory(gallery):
        from facerec.pipeline import Pipeline

        pipe = Pipeline.for_model(gallery, device="cpu")
        run = pipe.run
        pipe.run = lambda *a, **k: (gate.wait(30), run(*a, **k))[1]
        return pipe

    app = create_app(fake_model, device="cpu", workers=1, limits=Limits(max_pending=2), pipeline_factory=slow_factory)
    with TestClient(app, base_url=BASE) as c:
        files = {"image": ("p.png", png(person_image(1, 1)), "image/png")}
        out = []
        threads = [threading.Thread(target=lambda: out.append(c.post("/v1/identify", files=files))) for _ in range(2)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        while app.state.service.pending < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        r = c.post("/v1/identify", files=files)
        assert r.status_code == 503 and r.headers["retry-after"] == "1" and "busy" in r.json()["error"]
        assert c.get("/healthz").status_code == 200  # the event loop is free meanwhile
        gate.set()
        for t in threads:
            t.join(30)
        assert [x.status_code for x in out] == [200, 200]


def test_request_pixel_budget_counts_all_images_of_a_request(fake_model):
    from fastapi.testclient import TestClient

    from facerec.server import Limits, create_app

    app = create_app(fake_model, device="cpu", workers=1, limits=Limits(max_request_pixels=64 * 64 * 3))
    with TestClient(app, base_url=BASE) as c:
        files = [("images", (f"{i}.png", png(person_image(3, i)), "image/png")) for i in range(4)]
        r = c.post("/v1/people/Carol/faces", files=files)
        assert r.status_code == 413 and "images[3]" in r.json()["error"] and "budget" in r.json()["error"]


# -- 4. failed saves --------------------------------------------------------------------------------
def test_a_failed_save_rolls_back_and_says_so(fake_client, monkeypatch):
    before = fake_client.get("/v1/people").json()

    def read_only(self, path):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(Gallery, "save", read_only)
    r = enrol(fake_client, "Dave")
    assert r.status_code == 500 and r.headers["content-type"] == "application/json"
    assert "could not be saved" in r.json()["error"] and "nothing was changed" in r.json()["error"]
    assert fake_client.get("/v1/people").json() == before  # not in memory either
    r = fake_client.delete("/v1/people/person_1")
    assert r.status_code == 500 and "nothing was changed" in r.json()["error"]
    assert "person_1" in {p["name"] for p in fake_client.get("/v1/people").json()["people"]}
    monkeypatch.undo()
    assert enrol(fake_client, "Erin").status_code == 201  # the next save holds Erin only: Dave never comes back
    saved = names(fake_client.model_path)
    assert "Erin" in saved and "Dave" not in saved and "person_1" in saved


# -- 5. oversized uploads ---------------------------------------------------------------------------
def test_oversized_upload_gets_413_json_not_a_reset(fake_server):
    base, _, _ = fake_server
    body = b"\0" * (60 * 2**20)
    r = httpx.post(f"{base}/v1/identify", content=body, headers={"content-type": "image/png"}, timeout=30)
    assert r.status_code == 413 and "upload limit" in r.json()["error"]

    def chunks():
        for _ in range(30):
            yield b"\0" * 2**20

    r = httpx.post(f"{base}/v1/identify", content=chunks(), headers={"content-type": "image/png"}, timeout=30)
    assert r.status_code == 413 and "upload limit" in r.json()["error"]  # chunked: 413 too (was 400)


def test_unauthenticated_body_is_not_read_before_401(fake_model):
    from facerec.server import create_app, serving

    app = create_app(fake_model, device="cpu", workers=1, api_key="s3cret")
    with serving(app) as base:
        host, port = base.removeprefix("http://").split(":")
        s = socket.create_connection((host, int(port)), timeout=10)
        s.sendall(b"POST /v1/identify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 50000000\r\n\r\n" + b"x" * 1000)
        t = time.monotonic()
        answer = b""
        while b"API key" not in answer and time.monotonic() - t < 5:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
        answer = answer.decode("latin-1")
        s.close()
        assert answer.startswith("HTTP/1.1 401") and "API key" in answer and time.monotonic() - t < 3


# -- 6./7. small images, exact matches ---------------------------------------------------------------
def test_tiny_upload_is_no_face_not_a_crash(fake_client):
    for size in ((5, 5), (15, 19)):
        r = fake_client.post(
            "/v1/identify", files={"image": ("t.png", png(np.zeros((*size, 3), np.uint8)), "image/png")}
        )
        assert r.status_code == 200 and r.json()["faces"] == []


def test_an_enrolled_photo_probed_again_names_its_person(fake_client):
    photo = person_image(5, 123)
    files = [("images", ("one.png", png(photo), "image/png"))]
    assert fake_client.post("/v1/people/Frank/faces", files=files).status_code == 201
    r = fake_client.post("/v1/identify", files={"image": ("same.png", png(photo), "image/png")})
    assert r.json()["faces"][0]["pred"] == "Frank"


# -- 8. numbers, headers, ports ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "flags, message",
    [
        (["--port", "70000"], "--port must be between 1 and 65535"),
        (["--max-upload-mb", "inf"], "--max-upload-mb must be a finite number"),
        (["--max-upload-mb", "nan"], "--max-upload-mb must be a finite number"),
        (["--workers", "0"], "--workers: must be >= 1"),
    ],
)
def test_serve_numbers_are_validated(fake_model, capsys, flags, message):
    from facerec.cli import main

    assert main(["serve", "--model", str(fake_model), *flags]) == 2
    assert message in capsys.readouterr().err


def test_a_port_in_use_is_a_clear_error_before_serving(fake_model, capsys):
    from facerec.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--model", str(fake_model), "--port", str(port)]) == 2
    out, err = capsys.readouterr()
    assert "cannot listen on 127.0.0.1" in err and "serving" not in out


def test_names_stored_as_a_string_are_refused(fake_model, tmp_path):
    with np.load(fake_model, allow_pickle=False) as d:
        arrays = {k: d[k] for k in d.files}
    meta = json.loads(bytes(arrays["meta"]).decode())
    meta["names"] = "".join(meta["names"])
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    from facerec.errors import ModelFileError

    with pytest.raises(ModelFileError, match="names must be a list of strings"):
        Gallery.load(bad)


# -- 9. the smaller ones -----------------------------------------------------------------------------
def test_terminal_escapes_in_upload_names_are_neutralised(fake_client):
    evil = "a\x1b[2J\x1b]0;pwned\x07.png"
    files = [("images", (evil, png(person_image(4, 5)), "image/png"))]
    assert fake_client.post("/v1/people/Grace/faces", files=files).status_code == 201
    g = Gallery.load(fake_client.model_path)
    ids = [s for s in g.sample_ids_ if s.startswith("api:Grace")]
    assert ids and all("\x1b" not in s and "\x07" not in s for s in ids) and "\\x1b" in ids[0]


def test_only_the_listed_formats_are_parsed(fake_client):
    for fmt in ("PCX", "TGA", "ICO", "SGI"):
        buf = io.BytesIO()
        Image.fromarray(person_image(1, 3)).save(buf, format=fmt)
        r = fake_client.post("/v1/identify", files={"image": ("x.png", buf.getvalue(), "image/png")})
        assert r.status_code == 400 and "not one of the formats read" in r.json()["error"], fmt


def test_confusable_names_are_refused(fake_client):
    r = enrol(fake_client, "G\u0435orge")  # Cyrillic е inside a Latin name
    assert r.status_code == 400 and "cyrillic" in r.json()["error"] and "latin" in r.json()["error"]
    assert enrol(fake_client, "Jos\u00e9 \u00d1\u00fa\u00f1ez").status_code == 201  # one script, accents and all


def test_security_headers_and_docs_without_a_cdn(fake_client):
    for path in ("/", "/healthz", "/docs"):
        r = fake_client.get(path)
        assert r.status_code == 200, path
        assert "default-src 'self'" in r.headers["content-security-policy"]
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"
    page = fake_client.get("/docs").text
    assert "http" not in page.replace("/openapi.json", "")  # every asset from this server
    assert fake_client.get("/docs/swagger-ui-bundle.js").status_code == 200


def test_api_key_from_a_file_or_the_environment(fake_model, tmp_path, monkeypatch):
    import argparse

    from facerec.cli.serve import api_key

    key = tmp_path / "key"
    key.write_text("s3cret\n")
    args = argparse.Namespace(api_key_file=str(key), api_key=None)
    assert api_key(args) == "s3cret"
    monkeypatch.setenv("FACEREC_API_KEY", "from-env")
    assert api_key(argparse.Namespace(api_key_file=None, api_key=None)) == "from-env"


def test_healthz_answers_at_once_while_the_models_load(fake_model):
    from fastapi.testclient import TestClient

    from facerec.server import create_app

    release = threading.Event()

    def slow_factory(gallery):
        release.wait(30)
        from facerec.pipeline import Pipeline

        return Pipeline.for_model(gallery, device="cpu")

    t = time.monotonic()
    app = create_app(fake_model, device="cpu", workers=1, pipeline_factory=slow_factory)
    with TestClient(app, base_url=BASE) as c:
        h = c.get("/healthz").json()
        assert h["ready"] is False and h["status"] == "ok" and time.monotonic() - t < 2
        release.set()
        app.state.service.ready.wait(30)
        assert c.get("/healthz").json()["ready"] is True
        r = c.post("/v1/identify", files={"image": ("p.png", png(person_image(1, 1)), "image/png")})
        assert r.status_code == 200


# -- found by review ---------------------------------------------------------------------------------
def test_an_upload_cut_off_mid_body_enrols_nothing(fake_server):
    base, app, model = fake_server
    host, port = base.removeprefix("http://").split(":")
    files = [("images", (f"{i}.png", png(person_image(2, 40 + i)), "image/png")) for i in range(3)]
    request = httpx.Request("POST", f"{base}/v1/people/Heidi/faces", files=files)
    body = request.read()
    head = (
        f"POST /v1/people/Heidi/faces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
        f"Content-Type: {request.headers['content-type']}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(head + body[: int(len(body) * 0.8)])  # two whole files and part of the third
        time.sleep(0.5)
    time.sleep(1.0)
    people = {p["name"] for p in httpx.get(f"{base}/v1/people").json()["people"]}
    assert "Heidi" not in people and "Heidi" not in names(model)


def test_a_cached_image_still_obeys_max_faces():
    from facerec.pipeline import Pipeline

    wide = np.concatenate([person_image(1, 0), person_image(2, 0)], axis=1)
    pipe = Pipeline.create(embedder="fake", detector="fake", device="cpu", margin=4)
    pipe.limit_caches(16)  # an in-memory cache, as the server has
    assert len(pipe.run([wide])[0].faces) == 2
    (again,) = pipe.run([wide], max_faces=1)
    assert again.faces == [] and again.error.endswith("2 faces, over the limit of 1 per image")


def test_a_failed_recalibration_rolls_back_too(fake_client, monkeypatch):
    import facerec.store.served

    before = fake_client.get("/v1/people").json()

    def broken(*a, **k):
        raise MemoryError("no room for the leave-one-out distances")

    monkeypatch.setattr(facerec.store.served, "open_set_calibration", broken)
    with pytest.raises(MemoryError):
        enrol(fake_client, "Ivan")
    assert fake_client.get("/v1/people").json() == before


def test_a_model_with_a_bad_calibration_rate_loads_with_its_threshold_derived_again(fake_model, tmp_path, caplog):
    with np.load(fake_model, allow_pickle=False) as d:
        arrays = {k: d[k] for k in d.files}
    meta = json.loads(bytes(arrays["meta"]).decode())
    meta["calibration"]["far"] = 2
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    g = Gallery.load(bad)  # a threshold is derived data: never a reason not to serve the gallery
    assert g.calibration is not None and g.calibration.far != 2
    assert "calibration far must be a rate between 0 and 1" in caplog.text and str(bad) in caplog.text
