"""The tests' one conftest: tiers by folder, a deterministic fake detector and embedder, real LFW data,
session-scoped real models, and the helpers and fixtures several test files share.

Tiers: ``unit/`` (the fakes only, no model weights), ``integration/`` (real weights on real LFW
images: marked ``integration``) and ``system/`` (the slow ones: the CLI end to end, the service as
a process, the page in a browser, the Milvus server, Ray, the LFW protocols, load: marked
``slow``). The Makefile selects by marker: ``-m "not slow and not integration"`` (test-fast),
``-m "integration and not slow"`` (test-integration), no ``-m`` (everything)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from facerec.detect import Detection, Detector, register_detector
from facerec.embed import Embedder, EmbedderSpec, register_embedder
from facerec.embed.base import l2_normalize

TESTS = Path(__file__).resolve().parent  # this folder: serve_fake.py and this conftest live here
ROOT = TESTS.parent
SHARED_DATA = Path(os.environ.get("FACEREC_SHARED_DATA", ROOT.parent / "shared" / "data"))
LFW_HOME = SHARED_DATA / "lfw_home"
LFW_DIR = LFW_HOME / "lfw_funneled"
# YuNet's model file, which the project may not download in tests (../shared/models/yunet/README.md)
SHARED_MODELS = ROOT.parent / "shared" / "models" / "yunet"
if SHARED_MODELS.is_dir():
    os.environ.setdefault("FACEREC_MODELS", str(SHARED_MODELS))

FAKE = EmbedderSpec(
    name="fake",
    dim=16,
    input_size=32,
    crop="margin",
    weights_id="fake-v1",
    default_threshold=0.5,
    description="deterministic test embedder",
)


class FakeEmbedder(Embedder):
    """Mean colour of a 2x2 grid of cells plus brightness: similar images -> near vectors."""

    spec = FAKE

    def __init__(self):
        self.calls = 0

    def embed(self, crops):
        crops = self._check_crops(crops)
        self.calls += len(crops)
        x = crops.astype(np.float32) / 255.0
        cells = x.reshape(len(x), 2, 16, 2, 16, 3).mean(axis=(2, 4)).reshape(len(x), 12)
        feats = np.concatenate([cells - 0.5, x.mean(axis=(1, 2)) - 0.5, x.std(axis=(1, 2, 3))[:, None]], axis=1)
        return l2_normalize(feats)


FAKE_INSTANCES: list[FakeEmbedder] = []


def _make_fake(spec, *, weights=None, device="auto"):
    inst = FakeEmbedder()
    FAKE_INSTANCES.append(inst)
    return inst


register_embedder(FAKE, _make_fake)


class FakeDetector(Detector):
    """Finds "faces" in synthetic images without weights, a whole batch at once:
    an image whose central half is all black has none (so a black image has none, nor has the
    grey-bordered copy the pipeline searches again when nothing was found); an image at least twice as wide as it is high has two
    (its left third, a small bystander, and its right half, the subject); any other has one,
    its centre 60% (room around it: a face that fills the frame is searched again on a padded copy).
    Landmarks are the box's corners and centre."""

    name = id = "fake"
    batches: list[int] = []  # sizes of the batches it was called with, across instances

    def __init__(self, device="cpu", batch_size=64):
        self.device = device

    def detect(self, batch):
        # (N, 3, H, W): host arrays on a CPU (the core install has no torch), the device tensor on a GPU
        x = np.stack(batch.host).transpose(0, 3, 1, 2) if batch.on_host else batch.tensor
        FakeDetector.batches.append(len(batch))
        h, w = batch.height, batch.width
        out = []
        for img in x:
            if float(img[:, h // 4 : h - h // 4, w // 4 : w - w // 4].max()) == 0:
                out.append([])
            elif w >= 2 * h:
                out.append([_det(0, h * 0.3, w / 3, h * 0.7), _det(w / 2, 0, w, h)])
            else:
                out.append([_det(w * 0.2, h * 0.2, w * 0.8, h * 0.8)])
        return out


def _det(x1, y1, x2, y2):
    marks = np.array([[x1, y1], [x2, y1], [(x1 + x2) / 2, (y1 + y2) / 2], [x1, y2], [x2, y2]], np.float32)
    return Detection((float(x1), float(y1), float(x2), float(y2)), 0.99, marks)


register_detector("fake", FakeDetector)

# A test's tier is the folder it is in; these are the markers each folder implies.
FOLDER_MARKS = {"unit": (), "integration": ("integration",), "system": ("slow",)}


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config, items):
    for item in items:
        try:
            folder = item.path.relative_to(TESTS).parts[0]
        except ValueError:
            continue
        for name in FOLDER_MARKS.get(folder, ()):
            item.add_marker(name)


def person_image(person: int, variant: int, size: int = 64) -> np.ndarray:
    """A synthetic 'face' of a person: a colour pattern unique to the person, lightly perturbed."""
    rng = np.random.default_rng(1000 * person + variant)
    base = np.random.default_rng(person).integers(30, 225, size=(2, 2, 3))
    img = np.kron(base, np.ones((size // 2, size // 2, 1))).astype(np.float32)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def clusters(people=20, per=10, spread=0.15, dim=16, seed=0):
    """Unit embeddings of ``people`` people, ``per`` each, around random centres: (x, labels)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(people, dim))
    x = np.repeat(centers, per, axis=0) + rng.normal(scale=spread, size=(people * per, dim)) * np.sqrt(dim) / 4
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), np.repeat(np.arange(people), per)


def write_synthetic(folder: Path) -> Path:
    """6 people x 8 images, the seed's .npz layout, as ``folder``/synthetic.npz."""
    X = np.stack([person_image(p, v) for p in range(6) for v in range(8)])
    y = np.repeat(np.arange(6), 8)
    names = np.array([f"person_{p}" for p in range(6)])
    path = folder / "synthetic.npz"
    np.savez(path, X=X, y=y, names=names)
    return path


@pytest.fixture
def synthetic_npz(tmp_path) -> Path:
    """6 people x 8 images, the seed's .npz layout."""
    return write_synthetic(tmp_path)


# -- Milvus: pymilvus's state polls ------------------------------------------------------------------
class _QuickPolls:
    """``time`` for pymilvus.client.grpc_handler, whose waits for an index, a flush or a compaction
    poll the state with a fixed ``time.sleep(0.5)``: those sleeps are 20 ms here, all else is time's."""

    def __init__(self, real):
        self._real = real

    def __getattr__(self, name):
        return getattr(self._real, name)

    def sleep(self, seconds):
        self._real.sleep(0.02 if seconds == 0.5 else seconds)


@pytest.fixture(scope="session", autouse=True)
def _milvus_polls_quickly():
    """Creating a gallery in Milvus Lite waits for three tiny indexes, each done at once and each
    noticed only at pymilvus's next poll: 1.5 s of sleep a gallery, about 20 galleries in the unit
    tier. Polled every 20 ms, a wait still ends only when Milvus reports the same state."""
    import importlib.util

    if importlib.util.find_spec("pymilvus") is None:
        yield
        return
    from pymilvus.client import grpc_handler

    mp = pytest.MonkeyPatch()
    mp.setattr(grpc_handler, "time", _QuickPolls(grpc_handler.time))
    yield
    mp.undo()


# -- the fake models trained, served and run from the command line ----------------------------------
BASE = "http://127.0.0.1"  # the service's origin in the tests (TestClient's base_url, loopback servers)
FAKE_TRAIN = dict(embedder="fake", detector="fake", margin=4, device="cpu", far=0.2)


def png(image: np.ndarray) -> bytes:
    """An image as the bytes of a PNG file, as a client uploads it."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def _fake_model_once(tmp_path_factory) -> Path:
    from facerec.api import train

    folder = tmp_path_factory.mktemp("fake-model")
    path = folder / "model.npz"
    train(write_synthetic(folder), model_path=path, **FAKE_TRAIN)
    return path


@pytest.fixture
def fake_model(tmp_path, _fake_model_once) -> Path:
    """``train(synthetic_npz, embedder="fake", detector="fake", margin=4, device="cpu", far=0.2)``
    as tmp_path/model.npz: trained once a session, each test gets its own copy to change (the
    training is deterministic: a copy differs from a fresh model only in its enrolment times)."""
    import shutil

    path = tmp_path / "model.npz"
    shutil.copyfile(_fake_model_once, path)
    return path


@pytest.fixture
def fake_client(fake_model):
    """The service over :func:`fake_model` through Starlette's TestClient; ``.model_path`` is the model."""
    from fastapi.testclient import TestClient

    from facerec.server import create_app

    with TestClient(create_app(fake_model, device="cpu", workers=1), base_url=BASE) as c:
        c.model_path = fake_model
        yield c


@pytest.fixture
def fake_server(fake_model):
    """The service over :func:`fake_model` in a real uvicorn on a loopback port (connection-level
    behaviour), in this process: (base URL, app, model path)."""
    from facerec.server import create_app, serving

    app = create_app(fake_model, device="cpu", workers=2)
    app.state.service.ready.wait(60)
    with serving(app) as base:
        yield base, app, fake_model


def serve_fake(model, port: int, log):
    """The real service in its own process (``tests/serve_fake.py``: create_app + uvicorn over the
    fake detector and embedder) on loopback ``port``, its output to the file ``log``: a Popen."""
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen(
        [sys.executable, str(TESTS / "serve_fake.py"), str(model), str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )


def wait_up(base: str, proc, timeout: float = 120) -> None:
    """Until the service at ``base`` (the process ``proc``) says it is ready; fails if it dies first."""
    import time

    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the service died at start"
        try:
            if httpx.get(f"{base}/healthz", timeout=2).json().get("ready"):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("the service did not start")


def identify_within(base: str, seconds: float, seed: int = 0) -> float:
    """Send one identify; it must answer 200 within ``seconds``; returns how long it took."""
    import time

    import httpx

    t = time.monotonic()
    r = httpx.post(
        f"{base}/v1/identify",
        files={"image": ("p.png", png(person_image(1, 70 + seed)), "image/png")},
        timeout=seconds,
    )
    took = time.monotonic() - t
    assert r.status_code == 200 and took < seconds, (r.status_code, took)
    return took


@pytest.fixture
def fake_train_cli(capsys):
    """``facerec train --data DATA FLAGS... --embedder fake --align resize`` in this process:
    (exit code, stdout, stderr). ``embedder=``/``align=`` change those two flags, None leaves one out."""
    from facerec.cli import main

    def train_cli(data, *flags, embedder="fake", align="resize"):
        argv = ["train", "--data", str(data), *flags]
        argv += ["--embedder", embedder] if embedder is not None else []
        argv += ["--align", align] if align is not None else []
        code = main(argv)
        out, err = capsys.readouterr()
        return code, out, err

    return train_cli


def require_lfw() -> Path:
    if not LFW_DIR.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"LFW not found at {LFW_DIR}; CI must have ../shared/data")
        pytest.skip(f"LFW not found at {LFW_DIR}")
    return LFW_DIR


def lfw_image(person: str, n: int) -> Path:
    return require_lfw() / person / f"{person}_{n:04d}.jpg"


@pytest.fixture(scope="session")
def lfw_env(tmp_path_factory):
    """Environment for CLI runs: LFW through scikit-learn, caches in a temp folder."""
    require_lfw()
    env = dict(os.environ)
    env["SCIKIT_LEARN_DATA"] = str(SHARED_DATA)
    env.setdefault("FACEREC_HOME", str(tmp_path_factory.mktemp("facerec_home")))
    return env


@pytest.fixture(scope="module")
def lfw_workdir(lfw_env, tmp_path_factory):
    """A module's work folder, with LFW and the caches of :func:`lfw_env` in this process's environment."""
    mp = pytest.MonkeyPatch()
    for key in ("SCIKIT_LEARN_DATA", "FACEREC_HOME"):
        mp.setenv(key, lfw_env[key])
    yield tmp_path_factory.mktemp("lfw-work")
    mp.undo()


@pytest.fixture(scope="session")
def casia():
    """The real CASIA FaceNet, loaded once per session."""
    from facerec.embed import create_embedder

    return create_embedder("facenet-casia", device="cpu")


KNOWN = ["Colin_Powell", "Tony_Blair", "Donald_Rumsfeld", "Gerhard_Schroeder", "Ariel_Sharon", "Hugo_Chavez"]


@pytest.fixture(scope="session")
def served_model(tmp_path_factory):
    """A gallery of 6 people x 5 images (CASIA FaceNet, MTCNN), trained once; each test serves a fresh copy."""
    return _small_gallery(tmp_path_factory, "mtcnn")


@pytest.fixture(scope="session")
def served_model_yunet(tmp_path_factory):
    """The same gallery with YuNet as the detector."""
    return _small_gallery(tmp_path_factory, "yunet")


def _small_gallery(tmp_path_factory, align: str) -> Path:
    import facerec

    lfw = require_lfw()
    root = tmp_path_factory.mktemp(f"gallery-{align}")
    for person in KNOWN:
        (root / "people" / person).mkdir(parents=True)
        for f in sorted((lfw / person).glob("*.jpg"))[:5]:
            (root / "people" / person / f.name).symlink_to(f)
    report = facerec.train(
        root / "people",
        embedder="facenet-casia",
        detector=align,
        device="cpu",
        model_path=root / "model.npz",
        out_dir=None,
        art_dir=None,
    )
    assert report.enrolled == 30
    return root / "model.npz"


# -- gallery stores: the same questions, the same answers -------------------------------------------
def queries(tmp_path):
    """Held-out photos of the enrolled people, and strangers."""
    folder = tmp_path / "queries"
    folder.mkdir()
    from PIL import Image

    for p in list(range(6)) + [40, 41]:
        for v in (50, 51):
            Image.fromarray(person_image(p, v)).save(folder / f"q{p}_{v}.png")
    return folder


def answers(model, folder, capsys):
    """``facerec infer --format json`` as a user runs it: every face's answer and evidence."""
    import json

    from facerec.cli import main

    capsys.readouterr()
    code = main(
        [
            "infer",
            "--input",
            str(folder),
            "--model",
            str(model),
            "--device",
            "cpu",
            "--topk",
            "3",
            "--format",
            "json",
            "--art_dir",
            "",
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    return sorted(json.dumps(r, sort_keys=True) for r in rows if "face" in r)  # one per face
