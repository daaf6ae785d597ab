"""The second hardening pass (issue 31): budgets and consistency. One test per finding, each named
after its case, with the fake detector and embedder (no weights); servers listen on loopback only.
The cases that need the service as a process of its own are in system/test_serve_processes.py."""

import io
import os
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from facerec.api import train

from conftest import BASE, FAKE_TRAIN, identify_within, person_image, png


def test_a_body_spooled_to_disk_reaches_the_app_whole(fake_model):
    """A body past the in-memory spool (here: a 3 MB enrolment) still arrives byte for byte."""
    from fastapi.testclient import TestClient

    from facerec.server import create_app

    noise = np.random.default_rng(0).integers(0, 255, (1000, 1000, 3), dtype=np.uint8)  # ~3 MB as PNG
    files = [("images", (f"{i}.png", png(person_image(2, 90 + i)), "image/png")) for i in range(2)]
    files.append(("images", ("big.png", png(noise), "image/png")))
    assert sum(len(f[1][1]) for f in files) > 2**21
    app = create_app(fake_model, device="cpu", workers=1)
    with TestClient(app, base_url=BASE) as c:
        r = c.post("/v1/people/Spooled/faces", files=files)
        assert r.status_code == 201, r.text  # a corrupted body would fail to decode (400)
        assert r.json()["added"] + len(r.json()["skipped"]) == 3


def test_bodies_inside_the_app_past_the_budget_get_503():
    from facerec.server.security import BodyBudget

    budget = BodyBudget(memory=10, admitted=100)
    assert budget.admit(60) and not budget.admit(60)  # 120 > 100 while the first is inside
    budget.release(60)
    assert budget.admit(500)  # alone, a body within the upload limit always fits
    assert not budget.admit(1)
    assert budget.take(6) and not budget.take(6)  # in-memory spooling is counted too


# -- 7. smaller: two Origin headers ------------------------------------------------------------------
def test_two_origin_headers_are_refused_not_the_last_one_wins(fake_client):
    files = [("images", ("0.png", png(person_image(2, 90)), "image/png"))]
    r = fake_client.post(
        "/v1/people/Mallory/faces", files=files, headers=[("Origin", "http://evil.example"), ("Origin", BASE)]
    )
    assert r.status_code == 400 and "origin header" in r.json()["error"]
    assert "Mallory" not in {p["name"] for p in fake_client.get("/v1/people").json()["people"]}


# -- 3. a symlinked model path -----------------------------------------------------------------------
def test_a_store_through_a_symlink_locks_the_real_file(fake_model, tmp_path):
    from facerec.errors import StoreError
    from facerec.store.file import FileStore

    link = tmp_path / "link.npz"
    link.symlink_to(fake_model)
    with FileStore(fake_model, writer=True):
        with pytest.raises(StoreError, match=r"through a link to .*model\.npz.*open for writing"):
            FileStore(link, writer=True)
    with FileStore(link, writer=True) as store:
        store.save(store.load())
    assert link.is_symlink() and not (tmp_path / "link.npz.lock").exists()


# -- 4. float and 16-bit images ----------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["F", "I;16"])
def test_a_float_or_16_bit_tiff_decodes_without_whole_image_float_copies(mode):
    import tracemalloc

    from facerec.images import decode_image

    side = 3000  # 9 MP: its float64 copy alone would be 72 MB
    ramp = np.linspace(0, 1, side, dtype=np.float32)[None, :].repeat(side, axis=0)
    img = Image.fromarray(ramp, "F") if mode == "F" else Image.fromarray((ramp * 65535).astype(np.uint16))
    buf = io.BytesIO()
    img.save(buf, format="TIFF", compression="tiff_deflate")
    del img, ramp
    tracemalloc.start()
    try:
        out = decode_image(buf.getvalue(), label="deep.tif")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.shape == (side, side, 3) and out[0, 0, 0] == 0 and out[0, -1, 0] == 255
    answer = side * side * 3
    print(f"\n{mode} {side}x{side} TIFF ({len(buf.getvalue()):,} bytes): numpy peak {peak / 2**20:.0f} MiB")
    assert peak < answer + 32 * 2**20  # the uint8 answer and a few MB of blocks, not ~20 bytes a pixel


# -- 2. work amplification from tiny-frame videos ----------------------------------------------------
def tiny_frames_video(path: Path, frames: int, fps: int) -> Path:
    """``frames`` 16x16 frames at ``fps`` (a few hundred KB: the size and length limits pass it)."""
    import av

    with av.open(str(path), "w") as c:
        stream = c.add_stream("mpeg4", rate=fps)
        stream.width = stream.height = 16
        stream.pix_fmt = "yuv420p"
        image = np.zeros((16, 16, 3), np.uint8)
        for i in range(frames):
            image[:] = i % 251
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                c.mux(packet)
        for packet in stream.encode():
            c.mux(packet)
    return path


def test_a_10000_frame_16x16_video_is_refused_and_identify_still_answers(fake_server, tmp_path):
    base, app, _ = fake_server
    video = tiny_frames_video(tmp_path / "tiny.mkv", 10_000, 1000)
    answers = []

    def send():
        t = time.monotonic()
        r = httpx.post(
            f"{base}/v1/identify-video",
            files={"video": ("tiny.mkv", video.read_bytes(), "video/x-matroska")},
            timeout=60,
        )
        answers.append((r, time.monotonic() - t))

    sender = threading.Thread(target=send)
    sender.start()
    took = identify_within(base, 2)
    sender.join(60)
    ((r, video_s),) = answers
    print(f"\n10,000-frame 16x16 video: {r.status_code} in {video_s:.2f} s; identify meanwhile {took:.2f} s")
    assert r.status_code == 413 and "1000 frames a second, over the limit of 120" in r.json()["error"]
    assert video_s < 2
    config = httpx.get(f"{base}/v1/config").json()
    assert config["max_video_frames"] == 7_200 and config["max_video_fps"] == 120 and config["max_video_faces"] > 0


def test_a_video_over_the_frame_budget_is_refused_before_decoding_and_while_decoding(tmp_path):
    from facerec.video import open_video
    from facerec.video.frames import VideoOverBudget

    video = tiny_frames_video(tmp_path / "long.mkv", 300, 100)  # 3 s: within any length limit
    with pytest.raises(VideoOverBudget, match="300 frames, over the limit of 200 frames"):
        open_video(video, max_seconds=120, max_frames=200, max_fps=120)
    source = open_video(video, max_seconds=120, max_frames=1000, max_fps=120)
    source.max_frames = 50  # as if its header had said fewer frames than it holds
    with pytest.raises(VideoOverBudget, match="more than the limit of 50 frames"):
        sum(1 for _ in source.frames())


def test_faces_embedded_per_video_are_budgeted():
    from facerec.server.limits import EmbedBudget
    from facerec.video.frames import VideoOverBudget

    class Pipe:
        detector = "the detector"

        def embed(self, image, faces):
            return [0.0] * len(faces)

    budget = EmbedBudget(Pipe(), 5, "video (v.mp4)")
    assert budget.detector == "the detector" and budget.embed(None, [1, 2, 3]) == [0.0] * 3
    with pytest.raises(VideoOverBudget, match="limit of 5 faces embedded"):
        budget.embed(None, [4, 5, 6])


# -- 5. names: one rule for the CLI, the API, the page and every store --------------------------------
@pytest.mark.parametrize(
    "given, stored",
    [
        ("山田 花子", "山田 花子"),  # Kanji
        ("田中ハナ", "田中ハナ"),  # Kanji with Katakana: one Japanese name
        ("やまだ はなこ", "やまだ はなこ"),
        ("김민준", "김민준"),
        ("सीता", "सीता"),  # ends with a vowel sign (a mark)
        ("Ａｄａ", "Ada"),  # fullwidth Latin: NFKC
        ("Ada  \t Lovelace ", "Ada Lovelace"),  # whitespace folded
        ("Jose\u0301", "José"),  # a combining accent composed
        ("O'Brien", "O'Brien"),
    ],
)
def test_names_of_any_script_are_normalised_to_one_form(given, stored):
    from facerec.names import check_name

    assert check_name(given) == stored


@pytest.mark.parametrize("name", ["a/b", "..", "x..y", 'say "hi"', "<b>", "back\\slash", "G\u0435orge", "Ken 渡辺", ""])
def test_names_that_cannot_be_addressed_or_mix_scripts_are_refused_everywhere(name, tmp_path):
    from facerec.errors import InputError
    from facerec.ingest.source import read_source
    from facerec.names import check_name
    from facerec.people.naming import name_cluster
    from facerec.server.limits import HTTPError
    from facerec.server.limits import check_name as api_check_name

    with pytest.raises(InputError, match="invalid person name"):
        check_name(name)
    with pytest.raises(HTTPError, match="invalid person name"):
        api_check_name(name)
    with pytest.raises(InputError, match="invalid person name"):  # the CLI: before the folder is read
        name_cluster(tmp_path, "0", name)
    if name:
        (tmp_path / "m.csv").write_text(f'path,person\na.png,"{name.replace(chr(34), chr(34) * 2)}"\n')
        with pytest.raises(InputError, match="row 2: invalid person name"):
            read_source(tmp_path / "m.csv")


def test_the_api_enrols_a_japanese_name_and_fullwidth_or_spaced_twins_are_one_person(fake_client):
    files = [("images", ("0.png", png(person_image(2, 90)), "image/png"))]
    assert fake_client.post("/v1/people/山田 花子/faces", files=files).status_code == 201
    assert fake_client.post("/v1/people/田中ハナ/faces", files=files).status_code == 201
    assert fake_client.post("/v1/people/Ada Lovelace/faces", files=files).status_code == 201
    twin = [("images", ("1.png", png(person_image(2, 91)), "image/png"))]
    r = fake_client.post("/v1/people/Ａｄａ  Lovelace/faces", files=twin)
    assert r.status_code == 201 and r.json()["name"] == "Ada Lovelace" and r.json()["images"] == 2
    people = {p["name"]: p["images"] for p in fake_client.get("/v1/people").json()["people"]}
    assert people["Ada Lovelace"] == 2 and "Ａｄａ  Lovelace" not in people
    assert fake_client.delete("/v1/people/田中ハナ").status_code == 200


def test_a_per_person_milvus_search_works_for_a_non_ascii_name(tmp_path, synthetic_npz):
    pytest.importorskip("milvus_lite")
    from facerec.store import open_store

    with np.load(synthetic_npz) as data:
        names = [str(n) for n in data["names"]]
        names[0] = "山田 花子"
        np.savez(tmp_path / "jp.npz", X=data["X"], y=data["y"], names=np.array(names))
    lite = f"milvus:{tmp_path}/g.db"
    train(tmp_path / "jp.npz", store=lite, **FAKE_TRAIN)
    with open_store(lite) as store:
        g = store.load()
        vector = g.embeddings_[g.labels_ == g.names_.index("山田 花子")][:1]
        hits = store.search(vector, 3, person="山田 花子")[0]  # was "database unavailable"
        assert hits and {h["name"] for h in hits} == {"山田 花子"}
        assert store.search(vector, 3, person=names[1])[0][0]["name"] == names[1]


# -- 6. ingest reads only regular files, within a deadline, and never stops on one path -------------
def decode_within(paths: list[str], seconds: float) -> dict:
    """``decode_batch`` of ``paths``, which must finish within ``seconds`` (a hang fails the test)."""
    from facerec.ingest.stages import decode_batch

    out = {}
    worker = threading.Thread(
        target=lambda: out.update(decode_batch({"path": paths, "person": [""] * len(paths)})), daemon=True
    )
    t = time.monotonic()
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"decoding {paths} did not finish within {seconds} s"
    out["seconds"] = time.monotonic() - t
    return out


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_list_naming_a_fifo_or_dev_zero_fails_those_images_not_the_job(tmp_path):
    from facerec.ingest.source import read_source

    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    Image.fromarray(person_image(1, 0)).save(tmp_path / "ok.png")
    (tmp_path / "list.txt").write_text(f"{fifo}\n/dev/zero\nok.png\n")
    paths = [it.path for it in read_source(tmp_path / "list.txt")]
    try:
        out = decode_within(paths, 10)
    finally:
        try:  # a reader stuck on the FIFO (the old code) is let go
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass
    assert list(out["status"]) == ["failed", "failed", "face"]
    assert "not a regular file: a named pipe (FIFO)" in out["error"][0]
    assert "not a regular file: a character device" in out["error"][1]


def test_a_trickling_url_is_cut_off_at_its_deadline(monkeypatch):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from facerec.ingest import stages

    class Trickle(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "200")
            self.end_headers()
            for _ in range(200):  # 10 s in all, each byte well within the per-read timeout
                try:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.05)

        def log_message(self, *args):
            pass

    monkeypatch.setattr(stages, "URL_DEADLINE_S", 1.0, raising=False)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        out = decode_within([f"http://127.0.0.1:{server.server_address[1]}/slow.png"], 15)
    finally:
        server.shutdown()
    assert out["status"][0] == "failed" and "did not finish within 1 s" in out["error"][0]
    assert out["seconds"] < 3


def test_a_path_over_the_length_limit_is_a_reported_failure_not_the_end_of_the_scan(tmp_path):
    from facerec.datasets import collect_inputs
    from facerec.ingest.source import read_source

    Image.fromarray(person_image(1, 0)).save(tmp_path / "ok.png")
    fd = os.open(tmp_path, os.O_RDONLY)
    for _ in range(25):  # 25 x 200 characters: past PATH_MAX (4,096) on Linux
        os.mkdir("d" * 200, dir_fd=fd)
        deeper = os.open("d" * 200, os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = deeper
    os.close(os.open("deep.png", os.O_CREAT | os.O_WRONLY, dir_fd=fd))
    os.close(fd)
    paths = [it.path for it in read_source(tmp_path)]  # was: OSError "File name too long", the job gone
    assert paths[-1].endswith("ok.png") and len(paths) == 2 and len(paths[0]) > 4096
    out = decode_within(paths, 10)
    assert list(out["status"]) == ["failed", "face"] and "too long" in out["error"][0].lower()
    images, _ = collect_inputs(tmp_path)
    assert len(images) == 2


# -- 7. smaller: /healthz shows the store only to clients with the key --------------------------------
def test_healthz_shows_the_store_uri_only_to_clients_with_the_key(fake_model):
    from fastapi.testclient import TestClient

    from facerec.server import create_app

    with TestClient(create_app(fake_model, device="cpu", workers=1, api_key="s3cret"), base_url=BASE) as c:
        anonymous = c.get("/healthz").json()
        assert anonymous["status"] == "ok" and str(fake_model) not in str(anonymous) and anonymous["store"] == ""
        assert c.get("/healthz", headers={"X-API-Key": "s3cret"}).json()["store"] == str(fake_model)
    with TestClient(create_app(fake_model, device="cpu", workers=1), base_url=BASE) as c:  # no key: nothing to hide
        assert c.get("/healthz").json()["store"] == str(fake_model)


# -- 7. smaller: cluster on an empty folder -----------------------------------------------------------
def test_cluster_on_an_empty_folder_writes_no_people_folder(tmp_path, capsys):
    from facerec.cli import main

    (tmp_path / "empty").mkdir()
    out = tmp_path / "people"
    fake = ["--embedder", "fake", "--align", "fake", "--alignment", "box", "--no-cache", "--device", "cpu"]
    code = main(["cluster", str(tmp_path / "empty"), "--out", str(out), *fake, "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "no image files" in err and "nothing was written" in err
    assert not out.exists()
