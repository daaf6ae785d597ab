"""The CPU pipeline without PyTorch (#32, the light install): NumPy's margin crop equals torchvision's
``roi_align``, the exact index's NumPy search equals the torch one, a device or decoder that needs
PyTorch is refused naming the ``gpu`` extra, and decode -> detect -> crop -> embed runs end to end in
a process where torch cannot be imported, with the same embeddings as with it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from facerec.align.croppers import MarginCropper, to_uint8
from facerec.align.roi_align import roi_align
from facerec.detect import Detection, Detector, register_detector
from facerec.embed import Embedder, EmbedderSpec, register_embedder
from facerec.embed.base import l2_normalize
from facerec.errors import InputError
from facerec.extras import MissingExtra
from facerec.gallery.index.exact import ExactIndex, NumpyRows, TorchRows, top_k
from facerec.image_batch import ImageBatch

from conftest import LFW_DIR, ROOT, SHARED_MODELS

needs_lfw = pytest.mark.skipif(not LFW_DIR.is_dir(), reason="LFW images not in ../shared/data")
LFW_NAMES = [
    "Colin_Powell/Colin_Powell_0001.jpg",
    "Tony_Blair/Tony_Blair_0002.jpg",
    "Serena_Williams/Serena_Williams_0003.jpg",
]
WITHOUT_TORCH = {"PYTHONPATH": str(ROOT / "tests" / "without"), "FACEREC_WITHOUT": "torch,torchvision,facenet_pytorch"}


def lfw(name: str) -> np.ndarray:
    return np.asarray(Image.open(LFW_DIR / name).convert("RGB"))


def torchvision_crops(image: np.ndarray, boxes, size: int) -> np.ndarray:
    torch = pytest.importorskip("torch")
    ops = pytest.importorskip("torchvision.ops")
    t = torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float()
    rois = torch.cat([torch.zeros(len(boxes), 1), torch.tensor(np.asarray(boxes, np.float32))], 1)
    return ops.roi_align(t, rois, (size, size), spatial_scale=1.0, sampling_ratio=-1, aligned=True).numpy()


# -- the crop ------------------------------------------------------------------------------------------
BORDER_BOXES = [
    (70.0, 60.0, 180.0, 190.0),  # an LFW face's margin region
    (0.0, 0.0, 250.0, 250.0),  # the whole image
    (0.0, 30.0, 41.0, 250.0),  # on the left and bottom edges
    (200.0, 0.0, 250.0, 37.0),  # on the top and right edges
    (249.0, 249.0, 250.0, 250.0),  # the last pixel
    (10.0, 20.0, 11.0, 400.0),  # one pixel wide, running past the image
    (3.0, 5.0, 300.0, 250.0),  # a region larger than the output on one axis only
]


@needs_lfw
@pytest.mark.parametrize("size", [160, 32, 150])
def test_numpy_roi_align_is_torchvisions_on_lfw(size):
    rng = np.random.default_rng(size)
    for name in LFW_NAMES:
        image = lfw(name)
        corner = rng.uniform(0, 240, (20, 2))
        random = np.concatenate([corner, corner + rng.uniform(1, 120, (20, 2))], 1)
        boxes = np.concatenate([np.asarray(BORDER_BOXES), random]).astype(np.float32)
        got = roi_align(image, boxes, size)
        assert got.shape == (len(boxes), 3, size, size) and got.dtype == np.float32
        assert np.abs(got - torchvision_crops(image, boxes, size)).max() <= 1e-3


@needs_lfw
def test_margin_crops_on_the_cpu_are_numpy_and_the_device_paths_numbers():
    """The pipeline's crop (detector boxes, some at or over the border) on the NumPy path, against
    the torchvision path the GPU takes, run here on the CPU."""
    pytest.importorskip("torchvision")
    images = [lfw(n) for n in LFW_NAMES]
    batch = ImageBatch(images, "cpu")
    boxes = [(68.3, 71.9, 181.2, 190.4), (-6.0, -3.5, 61.0, 80.2), (200.5, 180.0, 262.0, 270.0), (300, 300, 320, 330)]
    faces = [(j, Detection(b, 0.9)) for j in range(len(images)) for b in boxes]
    cropper = MarginCropper(160, 32)
    got = cropper.crop(batch, faces)
    regions = np.stack(cropper.regions(np.array([d.box for _, d in faces], np.float32), 250, 250), 1)
    want = cropper._crop_device(batch, [j for j, _ in faces], regions).numpy()
    assert isinstance(got, np.ndarray) and got.shape == (len(faces), 3, 160, 160)
    assert np.abs(got - want).max() <= 1e-3


@needs_lfw
def test_a_huge_photo_is_cropped_region_by_region_as_on_the_device():
    """Over HOST_CROP_PIXELS (4 MP) a face is cut from its region alone, on both paths."""
    pytest.importorskip("torchvision")
    huge = np.asarray(Image.fromarray(lfw(LFW_NAMES[0])).resize((2600, 1800), Image.BILINEAR))
    batch = ImageBatch([huge], "cpu")
    boxes = [(700.4, 500.0, 1900.0, 1500.6), (2500.0, 1700.0, 2700.0, 1900.0), (-20.0, 0.0, 300.0, 260.0)]
    faces = [(0, Detection(b, 0.9)) for b in boxes]
    cropper = MarginCropper(160, 32)
    regions = np.stack(cropper.regions(np.array(boxes, np.float32), 2600, 1800), 1)
    got = cropper.crop(batch, faces)
    assert np.abs(got - cropper._crop_device(batch, [0, 0, 0], regions).numpy()).max() <= 1e-3


def test_to_uint8_rounds_numpy_crops_as_torch_rounds_tensors():
    crops = np.array([0.5, 1.5, 2.5, -3.0, 254.5, 255.4, 300.0, 127.49], np.float32).reshape(1, 1, 2, 4)
    crops = np.repeat(crops, 3, axis=1)
    got = to_uint8(crops)
    assert got.shape == (1, 2, 4, 3) and got.dtype == np.uint8
    assert got[0, :, :, 0].ravel().tolist() == [0, 2, 2, 0, 254, 255, 255, 127]
    torch = pytest.importorskip("torch")
    np.testing.assert_array_equal(got, to_uint8(torch.from_numpy(crops)))
    same = np.zeros((2, 4, 4, 3), np.uint8)
    assert to_uint8(same) is same  # uint8 host crops as they are


# -- the exact index -------------------------------------------------------------------------------------
def unit(rng, n, d=64):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("k", [1, 5, 12])
def test_exact_index_numpy_search_is_torchs(metric, k):
    pytest.importorskip("torch")
    rng = np.random.default_rng(k)
    gallery, queries = unit(rng, 3000), unit(rng, 200)
    numpy_rows, torch_rows = NumpyRows(), TorchRows("cpu", "fp32")
    for rows in (numpy_rows, torch_rows):  # built in two appends: the doubling buffer
        rows.append(gallery[:1000], 0)
        rows.append(gallery[1000:], 1000)
    d_np, i_np = numpy_rows.search(queries, 3000, k, metric, 64)
    d_t, i_t = torch_rows.search(queries, 3000, k, metric, 64)
    assert i_np.dtype == np.int64 and d_np.dtype == np.float32 and d_np.shape == (200, k)
    np.testing.assert_allclose(d_np, d_t, atol=1e-5)
    # the same neighbours, but for near-ties (scores within float rounding) in either order
    tied = np.abs(np.diff(d_t, axis=1)) < 1e-5
    mismatch = i_np != i_t
    assert not (mismatch[:, :-1] & ~tied & ~np.roll(tied, 1, axis=1)).any()
    assert (mismatch.mean()) < 0.01


def test_exact_index_on_the_cpu_is_numpys_and_grows():
    rng = np.random.default_rng(0)
    gallery = unit(rng, 500)
    index = ExactIndex(device="cpu").build(gallery[:10])
    for start in range(10, 500, 70):  # many appends: the buffer doubles, the rows stay
        index.add(gallery[start : start + 70])
    assert isinstance(index._store, NumpyRows) and index.size == 500 and index.memory_bytes() == 500 * 64 * 4
    d, i = index.search(gallery[[3, 250, 499]], 2)
    assert i[:, 0].tolist() == [3, 250, 499] and np.allclose(d[:, 0], 0, atol=1e-3)
    with pytest.raises(InputError, match="length 8"):
        index.add(unit(rng, 2, d=8))


def test_top_k_by_argmax_passes_and_by_partition_agree():
    scores = np.random.default_rng(3).standard_normal((50, 400)).astype(np.float32)
    want = np.argsort(-scores, axis=1, kind="stable")
    for k in (1, 3, 8, 9, 40, 400):
        best, idx = top_k(scores.copy(), k)
        np.testing.assert_array_equal(idx, want[:, :k])
        np.testing.assert_array_equal(best, np.take_along_axis(scores, want[:, :k], 1))


# -- devices and decoders that need PyTorch --------------------------------------------------------------
def test_without_torch_auto_is_the_cpu_and_cuda_names_the_gpu_extra(monkeypatch):
    from facerec.runtime import device

    monkeypatch.setattr(device, "has", lambda module: False)
    assert device.resolve_device("auto") == "cpu" and device.resolve_device("cpu") == "cpu"
    for asked in ("cuda", "cuda:1"):
        with pytest.raises(MissingExtra, match=r"device '.*' runs on PyTorch.*pip install 'facerec\[gpu\]'"):
            device.resolve_device(asked)
    with pytest.raises(InputError, match="device must be"):
        device.resolve_device("tpu")
    assert device.fast_bf16("cuda") is False


def test_without_torchvision_nvjpeg_names_the_gpu_extra(monkeypatch):
    from facerec.pipeline import decode

    monkeypatch.setattr(decode, "has", lambda module: False)
    with pytest.raises(MissingExtra, match=r"nvjpeg decoder.*pip install 'facerec\[gpu\]'"):
        decode.Decoder("nvjpeg", device="cpu", max_pixels=10**6)
    assert decode.Decoder("auto", device="cpu", max_pixels=10**6).name == "pil"


def test_cpu_threads_follow_set_cpu_threads(monkeypatch):
    from facerec.runtime import device

    monkeypatch.setattr(device, "_threads", None)
    assert device.cpu_threads() >= 1
    monkeypatch.setattr(device, "has", lambda module: False)
    assert device.cpu_threads() >= 1
    device.set_cpu_threads(1)
    assert device.cpu_threads() == 1


# -- the pipeline in a process without torch ------------------------------------------------------------
# A detector and an embedder of NumPy only (the conftest's fake detector reads the batch as a tensor
# on a GPU), registered as a plugin would be; the embedder takes the float crops, as FaceNet does.
class CentreDetector(Detector):
    name = id = "np-centre"

    def __init__(self, device="cpu", batch_size=64):
        pass

    def detect(self, batch):
        h, w = batch.height, batch.width
        return [[Detection((w * 0.25, h * 0.2, w * 0.75, h * 0.85), 0.99)] for _ in batch.host]


CELLS = EmbedderSpec(
    name="np-cells",
    dim=12,
    input_size=32,
    crop="margin",
    weights_id="np-cells-v1",
    default_threshold=0.5,
    description="test",
)


class CellsEmbedder(Embedder):
    """Each 16 px cell's mean colour; ``embed_tensor`` takes float crops, a NumPy array or a tensor."""

    spec = CELLS

    def embed(self, crops):
        return self.embed_tensor(self._check_crops(crops).transpose(0, 3, 1, 2).astype(np.float32))

    def embed_tensor(self, x):
        if not isinstance(x, np.ndarray):  # a tensor (the torchvision path) gives a tensor
            import torch

            return torch.from_numpy(self.embed_tensor(x.numpy()))
        cells = x.reshape(len(x), 3, 2, 16, 2, 16).mean(axis=(3, 5)).reshape(len(x), 12)
        return l2_normalize(cells - 127)


register_detector("np-centre", CentreDetector)
register_embedder(CELLS, lambda spec, **kw: CellsEmbedder())


def embeddings(files: list[str], detectors: list[str]) -> dict:
    """Every face's embedding by each detector, with and without flip; the front doors' answers;
    which of torch and torchvision got imported."""
    import facerec
    from facerec.pipeline import Pipeline

    out = {}
    for det in detectors:
        for flip in (False, True):
            pipe = Pipeline.create(embedder="np-cells", detector=det, device="auto", flip=flip)
            results = pipe.run(files)
            assert not [r.error for r in results if r.error]
            out[f"{det} {flip}"] = [[f.embedding.tolist() for f in r.faces] for r in results]
    out["api"] = [
        len(facerec.detect(files[0], detector=detectors[-1])),
        facerec.embed(files[0], embedder="np-cells", detector=detectors[-1]).shape[0],
        bool(facerec.verify(files[0], files[0], embedder="np-cells", detector=detectors[-1], threshold=0.5).same),
    ]
    out["torch"] = [m for m in ("torch", "torchvision") if m in sys.modules]
    return out


SCRIPT = """
import json, sys
sys.path[:0] = [{tests!r}, {unit!r}]
from test_cpu_without_torch import embeddings
print(json.dumps(embeddings(sys.argv[1:4], sys.argv[4:])))
"""


@needs_lfw
def test_the_pipeline_runs_without_torch_with_the_torch_crops_embeddings(tmp_path, monkeypatch):
    """In a process where torch cannot be imported, PIL -> a detector (NumPy's; YuNet on ONNX
    Runtime; the whole image) -> the margin crop -> a float-crop embedder runs, and gives the
    embeddings this process gets from torchvision's crops (the path taken before #32)."""
    yunet = (SHARED_MODELS / "face_detection_yunet_2026may.onnx").is_file()
    detectors = ["resize", "np-centre"] + (["yunet"] if yunet else [])
    files = [str(LFW_DIR / n) for n in LFW_NAMES]
    script = tmp_path / "run.py"
    script.write_text(SCRIPT.format(tests=str(ROOT / "tests"), unit=str(ROOT / "tests" / "integration")))
    env = {**os.environ, **WITHOUT_TORCH, "FACEREC_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(script), *files, *detectors], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    without = json.loads(done.stdout.strip().splitlines()[-1])
    assert without.pop("torch") == [] and without["api"] == [1, 1, True]
    pytest.importorskip("torchvision")

    def torchvision_crop(self, batch, faces):
        regions = self.regions_of([d for _, d in faces], batch.width, batch.height)
        return self._crop_device(batch, [j for j, _ in faces], regions)

    monkeypatch.setattr(MarginCropper, "crop", torchvision_crop)
    monkeypatch.setenv("FACEREC_HOME", str(tmp_path))
    reference = embeddings(files, detectors)
    reference.pop("torch")
    assert reference.keys() == without.keys() and reference["api"] == without["api"]
    for key in [k for k in without if k != "api"]:
        assert [len(f) for f in without[key]] == [len(f) for f in reference[key]] == [1, 1, 1], key
        np.testing.assert_allclose(np.asarray(without[key], float), np.asarray(reference[key], float), atol=1e-5)
