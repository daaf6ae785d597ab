"""Video without real models: the tracker through crossings and misses, the vote, every broken
file a user can hand us (made here with PyAV), a live stream that drops and comes back, and the
CLI and the HTTP endpoint giving the same tracks (the fake detector and embedder)."""

import json
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from facerec.video import VideoError, open_video
from facerec.video.tracker import Tracker, TrackerConfig

from conftest import BASE, person_image

FPS = 25


class Face:
    def __init__(self, box, score=0.99):
        self.box, self.score, self.landmarks = tuple(float(v) for v in box), score, None


def unit(i: int, d: int = 8) -> np.ndarray:
    v = np.zeros(d, np.float32)
    v[i] = 1.0
    return v


def run_tracker(steps, appearance: dict, every: int = 1, **config):
    """steps: per frame, [(person, box)]; appearance: person -> embedding. Returns each
    person's track ids, in order of sightings, and the tracker."""
    tr = Tracker(TrackerConfig(appearance_threshold=0.8, **config))
    seen: dict = {}
    for f, faces in enumerate(steps):
        if f % every:
            continue
        dets = [Face(box) for _, box in faces]
        out = tr.step(f, f / FPS, dets, lambda idx, faces=faces: np.stack([appearance[faces[j][0]] for j in idx]))
        for (person, _), (track, _) in zip(faces, out):
            seen.setdefault(person, []).append(track.id)
    return seen, tr


def test_two_faces_crossing_stay_two_tracks():
    # A walks right, B walks left, on the same line: their boxes overlap for several frames
    steps = []
    for f in range(40):
        a = (100 + 10 * f, 100, 160 + 10 * f, 160)
        b = (500 - 10 * f, 104, 560 - 10 * f, 164)
        steps.append([("A", a), ("B", b)])
    seen, tr = run_tracker(steps, {"A": unit(0), "B": unit(1)})
    assert len(set(seen["A"])) == 1 and len(set(seen["B"])) == 1
    assert seen["A"][0] != seen["B"][0] and len(tr.tracks) == 2


def test_a_short_miss_keeps_the_track_a_long_one_ends_it():
    # hidden for 10 frames (0.4 s, under the 0.5 s gap): one track, even though it moved meanwhile
    steps = [[] if 20 <= f < 30 else [("A", (100 + 2 * f, 100, 160 + 2 * f, 160))] for f in range(60)]
    seen, _ = run_tracker(steps, {"A": unit(0)}, max_gap_s=0.5)
    assert len(seen["A"]) == 50 and len(set(seen["A"])) == 1
    # hidden for 30 frames (1.2 s): the track ended; the face starts a new one
    steps = [[("A", (100, 100, 160, 160))] if f < 10 or f >= 40 else [] for f in range(50)]
    seen, _ = run_tracker(steps, {"A": unit(0)}, max_gap_s=0.5)
    assert len(set(seen["A"])) == 2


def test_a_different_face_in_the_same_place_is_a_new_track():
    # A leaves and B steps into the same box the next frame: overlap says one track, faces say two
    steps = [[("A", (100, 100, 160, 160))] for _ in range(10)] + [[("B", (102, 100, 162, 160))] for _ in range(10)]
    seen, _ = run_tracker(steps, {"A": unit(0), "B": unit(1)}, refresh=1)
    assert len(set(seen["A"])) == 1 and len(set(seen["B"])) == 1 and seen["A"][0] != seen["B"][0]


def test_a_clear_track_is_embedded_on_a_schedule_not_every_step():
    calls = []
    tr = Tracker(TrackerConfig(appearance_threshold=0.8, min_embeddings=3, refresh=4))
    for f in range(40):
        box = (100 + f, 100, 160 + f, 160)

        def embed(idx, f=f):
            calls.append(f)
            return np.stack([unit(0)] * len(idx))

        tr.step(f, f / FPS, [Face(box)], embed)
    assert calls[:3] == [0, 1, 2] and 8 <= len(calls) <= 14  # 3 views, then about one in four
    assert tr.tracks[0].embedded == len(calls)


def test_faces_entering_far_apart_are_separate_tracks():
    steps = [[("A", (100, 100, 160, 160)), ("B", (900, 100, 960, 160))] for _ in range(5)]
    seen, tr = run_tracker(steps, {"A": unit(0), "B": unit(0)})  # even with the same appearance
    assert len(tr.tracks) == 2 and seen["A"][0] != seen["B"][0]


@pytest.mark.parametrize(
    "votes, want",
    [
        (["x", "x", "unknown"], "x"),
        (["x", "unknown"], "unknown"),  # half the views doubting is not an identification
        (["unknown", "unknown", "x"], "unknown"),
        (["x", "y", "y"], "y"),
    ],
)
def test_the_vote(votes, want):
    from facerec.gallery.identify import Prediction
    from facerec.video.analyze import _vote

    views = [
        (None, Prediction(n, -1 if n == "unknown" else 0, 0.5, 1, [], "x" if n == "unknown" else n)) for n in votes
    ]
    assert _vote(views)[0] == want


def test_boxes_between_detections_move_in_a_straight_line():
    from facerec.video.analyze import TrackResult
    from facerec.video.annotate import boxes_at

    t = TrackResult(1, "A", 0.3, 0, 0.4, 2, 2, {}, "A", {}, path=[[0, 0.0, 0, 0, 10, 10], [10, 0.4, 100, 0, 110, 10]])
    assert boxes_at([t], 5) == [(1, [50.0, 0.0, 60.0, 10.0], "A")]
    assert boxes_at([t], 11) == [] and boxes_at([t], 0)[0][1] == [0, 0, 10, 10]


# -- files and streams ---------------------------------------------------------------------------
def write_video(path: Path, frames, *, codec="mpeg4", fps=FPS, fmt=None):
    import av

    with av.open(str(path), "w", format=fmt) as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for img in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def person_frames(n=30, size=96):
    """A synthetic person (the fake detector finds its centre) in every frame, slowly changing."""
    return [person_image(3, 60 + (i % 3), size) for i in range(n)]


def test_a_good_file_reads_every_frame_with_times(tmp_path):
    path = write_video(tmp_path / "ok.mp4", person_frames(30))
    src = open_video(path)
    frames = list(src.frames())
    assert (src.width, src.height, src.fps) == (96, 96, 25.0)
    assert [f.index for f in frames] == list(range(30))
    assert frames[25].time_s == pytest.approx(1.0, abs=1e-3) and frames[0].rgb().shape == (96, 96, 3)
    assert src.truncated is None


def test_broken_files_each_get_a_clear_message(tmp_path):
    import av

    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 100)
    good = write_video(tmp_path / "good.mp4", person_frames(30))
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])  # mp4 keeps its index at the end
    audio = tmp_path / "voice.m4a"
    with av.open(str(audio), "w", format="mp4") as c:
        s = c.add_stream("aac", rate=16000)
        for _ in range(20):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate = 16000
            for p in s.encode(frame):
                c.mux(p)
    empty = tmp_path / "empty.mkv"
    with av.open(str(empty), "w") as c:
        s = c.add_stream("mpeg4", rate=FPS)
        s.width, s.height, s.pix_fmt = 64, 64, "yuv420p"
        c.start_encoding()  # the header, with its video stream, and not one frame
    avi = write_video(tmp_path / "clip.avi", person_frames(10))
    data = avi.read_bytes()
    assert b"FMP4" in data
    odd = tmp_path / "odd.avi"
    odd.write_bytes(data.replace(b"FMP4", b"QQQ9").replace(b"mp4v", b"QQQ9"))
    cases = {
        junk: "not a video we can read",
        cut: "not a video we can read",
        audio: "no video stream (only audio streams)",
        empty: "holds no frames",
        odd: "codec",
        tmp_path / "missing.mp4": "no such video file",
    }
    for path, words in cases.items():
        with pytest.raises(VideoError) as err:
            list(open_video(path).frames())
        assert str(path) in str(err.value) and words in str(err.value), str(err.value)


def test_a_truncated_stream_keeps_its_frames_and_says_where_it_stopped(tmp_path):
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for _ in range(60)]  # every frame costs bytes
    good = write_video(tmp_path / "good.mkv", noise)  # Matroska plays without its index
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(good.read_bytes()[: int(good.stat().st_size * 0.6)])
    src = open_video(cut)
    n = len(list(src.frames()))
    assert 20 < n < 50 and src.truncated and f"{n} frames" in src.truncated, src.truncated


def test_a_file_over_the_length_limit_is_refused(tmp_path):
    from facerec.video.frames import VideoTooLong

    path = write_video(tmp_path / "long.mp4", person_frames(50))
    with pytest.raises(VideoTooLong, match="over the limit of 1 s"):
        open_video(path, max_seconds=1)


class DroppingServer:
    """Serves an MPEG-TS stream over TCP: the first connection gets part of it and is cut, the
    second all of it; then the camera is gone (nothing listens)."""

    def __init__(self, data: bytes, first: int):
        self.data, self.first, self.connections = data, first, 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            try:
                conn.sendall(self.data[: self.first] if self.connections == 1 else self.data)
            except OSError:
                pass
            conn.close()
            if self.connections == 2:
                self.sock.close()
                return


def test_a_dropped_stream_reconnects_and_says_so(tmp_path):
    ts = write_video(tmp_path / "cam.ts", person_frames(50), fmt="mpegts").read_bytes()
    server = DroppingServer(ts, len(ts) // 3)
    notes = []
    src = open_video(f"tcp://127.0.0.1:{server.port}", reconnects=2, reconnect_wait_s=0.05, note=notes.append)
    frames = list_until_error(src)
    assert server.connections == 2 and src.reconnected == 1
    assert any("reconnecting" in n and "attempt 1 of 2" in n for n in notes)
    assert any("attempt 2 of 2" in n for n in notes)  # the camera gone: two tries, then the error
    assert 50 < len(frames) < 100  # the part before the drop, then the whole stream again
    assert [f.index for f in frames] == list(range(len(frames)))


def list_until_error(src):
    out = []
    try:
        for f in src.frames():
            out.append(f)
    except VideoError as exc:
        assert "gave up after 2 reconnection attempts" in str(exc)
    return out


def test_a_stream_that_never_answers_gives_up_after_the_bounded_tries():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there
    t = time.monotonic()
    with pytest.raises(VideoError, match="cannot open the stream"):
        open_video(f"tcp://127.0.0.1:{port}", reconnects=1, reconnect_wait_s=0.01)
    assert time.monotonic() - t < 15


# -- the CLI and the service on the same file ------------------------------------------------------
def test_cli_and_http_give_the_same_tracks(tmp_path, fake_model, capsys):
    from fastapi.testclient import TestClient

    from facerec.cli import main
    from facerec.server import create_app

    video = write_video(tmp_path / "walk.mp4", person_frames(40))
    out, faces = tmp_path / "drawn.mp4", tmp_path / "faces"
    rc = main(
        [
            "infer",
            str(video),
            "--model",
            str(fake_model),
            "--every",
            "2",
            "--format",
            "json",
            "--annotate",
            str(out),
            "--faces-dir",
            str(faces),
        ]
    )
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert rc == 0
    cli_tracks, summary = lines[:-1], lines[-1]["summary"]
    assert len(cli_tracks) == 1 and cli_tracks[0]["pred"] == "person_3" and cli_tracks[0]["frames"] == 20
    assert summary["people"] == {"person_3": [[0.0, cli_tracks[0]["end_s"]]]} and summary["every"] == 2
    assert len(list(open_video(out).frames())) == 40 and len(list(faces.glob("track_*_person_3.jpg"))) == 1
    with TestClient(create_app(fake_model, device="cpu", workers=1), base_url=BASE) as c:
        r = c.post("/v1/identify-video?every=2", files={"video": ("walk.mp4", video.read_bytes(), "video/mp4")})
        assert r.status_code == 200, r.text
        assert r.json()["tracks"] == cli_tracks
        r = c.post("/v1/identify-video", files={"video": ("walk.mp4", b"not a video at all", "video/mp4")})
        assert r.status_code == 400 and "video (walk.mp4)" in r.json()["error"]
        r = c.post("/v1/identify-video", files={"video": ("walk.txt", video.read_bytes(), "text/plain")})
        assert r.status_code == 415


def test_the_service_bounds_video_size_and_length(tmp_path, fake_model):
    from fastapi.testclient import TestClient

    from facerec.server import create_app
    from facerec.server.limits import Limits

    video = write_video(tmp_path / "walk.mp4", person_frames(75))  # 3 s
    limits = Limits(max_video_seconds=2.0, max_video_bytes=video.stat().st_size + 10)
    with TestClient(create_app(fake_model, device="cpu", workers=1, limits=limits), base_url=BASE) as c:
        r = c.post("/v1/identify-video", files={"video": ("walk.mp4", video.read_bytes(), "video/mp4")})
        assert r.status_code == 413 and "over the limit of 2 s" in r.json()["error"]
        big = video.read_bytes() + b"\0" * 2000
        r = c.post("/v1/identify-video", files={"video": ("big.mp4", big, "video/mp4")})
        assert r.status_code == 413


def test_cli_names_a_broken_video_and_exits_non_zero(tmp_path, fake_model, capsys):
    from facerec.cli import main

    bad = tmp_path / "broken.mkv"
    bad.write_bytes(b"\x1a\x45\xdf\xa3 truncated")
    rc = main(["infer", str(bad), "--model", str(fake_model)])
    err = capsys.readouterr().err
    assert rc != 0 and "broken.mkv" in err and "not a video we can read" in err
