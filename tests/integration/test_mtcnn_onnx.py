"""MTCNN on ONNX Runtime (:mod:`facerec.detect.mtcnn_onnx`, ``--detector mtcnn`` on the CPU): its NumPy
steps are the tensor MTCNN's bit for bit (run around PyTorch's own networks), its faces on LFW are the
tensor MTCNN's within the tolerances below and agree with facenet-pytorch's exactly as well as the
tensor MTCNN's do, and it runs in a process where torch cannot be imported.

The tests that compare with PyTorch skip in the core install (no torch); the rest run there too."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from facerec.detect import box_iou, mtcnn_net, mtcnn_onnx
from facerec.detect.mtcnn import BatchedMTCNNDetector, search_host
from facerec.detect.mtcnn_onnx import OnnxMTCNN, area_resize, summed_area_table
from facerec.detect.scale import DETECT_MAX_SIDE, downscale
from facerec.errors import InputError
from facerec.image_batch import ImageBatch
from facerec.images import load_image

from conftest import LFW_DIR, ROOT, require_lfw

# Measured on 300 LFW images (every 19th, 365 faces), ONNX Runtime 1.32 against PyTorch 2.14's CPU
# kernels: the same faces in every image, boxes within 7.6e-5 px (IoU >= 0.999997), landmarks within
# 6.1e-5 px, scores within 2.4e-7. The tolerances leave room for other CPUs' kernels.
BOX_PX = 1e-3
LANDMARK_PX = 1e-3
SCORE = 1e-5
# against facenet-pytorch's own MTCNN (same 300 images): the same number of faces everywhere; 363 of
# 365 boxes within IoU 0.99, the other two 0.919 and 0.95 (its per-box crops and float64 numpy
# steps), the same two as for the tensor MTCNN
REFERENCE_IOU = 0.9

WITHOUT_TORCH = {"PYTHONPATH": str(ROOT / "tests" / "without"), "FACEREC_WITHOUT": "torch,torchvision,facenet_pytorch"}
BATCH = 50  # images per call: both MTCNNs see the same batches


@pytest.fixture(scope="module")
def lfw_images() -> np.ndarray:
    """100 LFW images (every 130th), uint8 (100, 250, 250, 3)."""
    paths = sorted(require_lfw().glob("*/*.jpg"))[::130][:100]
    return np.stack([load_image(p) for p in paths])


@pytest.fixture(scope="module")
def onnx_mtcnn() -> OnnxMTCNN:
    return OnnxMTCNN()


@pytest.fixture(scope="module")
def onnx_faces(onnx_mtcnn, lfw_images):
    return [onnx_mtcnn.detect_arrays(lfw_images[s : s + BATCH]) for s in range(0, len(lfw_images), BATCH)]


@pytest.fixture(scope="module")
def torch_mtcnn():
    pytest.importorskip("torch")
    from facerec.detect.mtcnn_net import BatchedMTCNN

    return BatchedMTCNN(device="cpu")


@pytest.fixture(scope="module")
def torch_faces(torch_mtcnn, lfw_images):
    return [_torch_detect(torch_mtcnn, lfw_images[s : s + BATCH]) for s in range(0, len(lfw_images), BATCH)]


def _torch_detect(net, images: np.ndarray):
    import torch

    return [t.numpy() for t in net.detect_tensor(torch.from_numpy(images).permute(0, 3, 1, 2).float())]


def _with_torch_networks(net) -> OnnxMTCNN:
    """The NumPy steps around PyTorch's networks, fed as the tensor MTCNN feeds them (channels-last)."""
    import torch

    def wrap(module):
        def run(x):
            with torch.inference_mode():
                out = module(torch.from_numpy(x).contiguous(memory_format=torch.channels_last))
            return tuple(t.numpy() for t in out)

        return run

    return OnnxMTCNN(networks=(wrap(net.pnet), wrap(net._rnet_run), wrap(net._onet_run)))


# -- the steps: the tensor MTCNN's, bit for bit -------------------------------------------------------------
def test_steps_equal_the_tensor_mtcnn_given_the_same_networks(torch_mtcnn, torch_faces, lfw_images, monkeypatch):
    """With PyTorch's networks plugged in (fed the same chunks), boxes, scores, landmarks and their
    order are the tensor MTCNN's exactly: the pyramid, crops, regression, squaring, padding and NMS."""
    monkeypatch.setattr(mtcnn_onnx, "CPU_CHUNK_BYTES", mtcnn_net.CPU_CHUNK_BYTES)
    got = _with_torch_networks(torch_mtcnn).detect_arrays(lfw_images[:BATCH])
    for have, want in zip(got, torch_faces[0]):
        assert have.dtype == want.dtype and np.array_equal(have, want)


def test_steps_equal_on_a_large_image(torch_mtcnn, lfw_images, monkeypatch):
    """Above 65,793 pixels the tensor MTCNN sums its table in float64 and builds its pyramid with
    ``F.interpolate``; the integer table gives the same numbers."""
    monkeypatch.setattr(mtcnn_onnx, "CPU_CHUNK_BYTES", mtcnn_net.CPU_CHUNK_BYTES)
    big = np.repeat(np.repeat(lfw_images[:1], 2, axis=1), 2, axis=2)[:, :, :431]  # 500 x 431
    want = _torch_detect(torch_mtcnn, big)
    got = _with_torch_networks(torch_mtcnn).detect_arrays(big)
    assert len(want[0]) >= 1
    for have, w in zip(got, want):
        assert np.array_equal(have, w)


def test_area_resize_is_window_means():
    """Torch-free: the pyramid level is each window's sum / height / width in float32, adaptive
    average pooling's integer windows."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 37, 53, 3), dtype=np.uint8)
    table = summed_area_table(images)
    assert table.dtype == np.int32 and table[:, -1, -1].tolist() == images.sum((1, 2)).tolist()
    for oh, ow in ((37, 53), (20, 31), (12, 12), (45, 60)):
        got = area_resize(table, (oh, ow))
        assert got.shape == (2, 3, oh, ow) and got.dtype == np.float32
        for y in (0, oh // 2, oh - 1):
            for x in (0, ow - 1):
                y0, y1 = y * 37 // oh, -(-(y + 1) * 37 // oh)
                x0, x1 = x * 53 // ow, -(-(x + 1) * 53 // ow)
                window = images[:, y0:y1, x0:x1].sum((1, 2)).astype(np.float32)
                want = window / np.float32(y1 - y0) / np.float32(x1 - x0)
                assert np.array_equal(got[:, :, y, x], want)


# -- the faces: the tensor MTCNN's within tolerance, facenet-pytorch's as closely as the tensor MTCNN's -----
def _pairs(a, b):
    """Per image of two (boxes, scores, landmarks, owner) results: the faces, in their order."""
    for (ba, sa, la, oa), (bb, sb, lb, ob) in zip(a, b):
        for j in range(BATCH):
            yield (ba[oa == j], sa[oa == j], la[oa == j]), (bb[ob == j], sb[ob == j], lb[ob == j])


def test_same_faces_as_the_tensor_mtcnn_on_lfw(onnx_faces, torch_faces):
    faces = 0
    for (ba, sa, la), (bb, sb, lb) in _pairs(onnx_faces, torch_faces):
        assert len(ba) == len(bb)
        assert np.abs(ba - bb).max(initial=0) <= BOX_PX
        assert np.abs(la - lb).max(initial=0) <= LANDMARK_PX
        assert np.abs(sa - sb).max(initial=0) <= SCORE
        assert all(box_iou(x, y) >= 0.9999 for x, y in zip(ba, bb))
        faces += len(ba)
    assert faces >= 100  # every LFW image has its subject, some a bystander too


def test_agrees_with_facenet_pytorch_as_the_tensor_mtcnn_does(onnx_faces, torch_faces, lfw_images):
    """20 of the images through facenet-pytorch's own MTCNN (one at a time, slow): the same number of
    faces, each matched box at IoU >= REFERENCE_IOU, and the same IoU as the tensor MTCNN's box."""
    pytest.importorskip("facenet_pytorch")
    from facerec.detect.mtcnn import ReferenceMTCNNDetector

    reference = ReferenceMTCNNDetector(device="cpu")
    pairs = list(_pairs(onnx_faces, torch_faces))
    for i in range(0, len(lfw_images), 5):
        (ba, _, _), (bb, _, _) = pairs[i]
        ref = reference.detect(ImageBatch([lfw_images[i]]))[0]
        assert len(ref) == len(ba)
        for r in ref:
            ours = max(box_iou(r.box, b) for b in ba)
            assert ours >= REFERENCE_IOU
            assert abs(ours - max(box_iou(r.box, b) for b in bb)) < 1e-4


# -- the detector ------------------------------------------------------------------------------------
def test_the_detector_on_onnx_runtime_has_its_own_id(onnx_faces, lfw_images):
    det = BatchedMTCNNDetector(device="cpu", runtime="onnx")
    assert isinstance(det.net, OnnxMTCNN) and det.id == f"mtcnn-onnx-20-(0.6, 0.7, 0.7)-{DETECT_MAX_SIDE}"
    found = det.detect(ImageBatch(list(lfw_images[:BATCH])))
    boxes, scores, _, owner = onnx_faces[0]
    for j, dets in enumerate(found):
        assert [d.box for d in dets] == [tuple(float(v) for v in b) for b in boxes[owner == j]]
        assert [d.score for d in dets] == [float(s) for s in scores[owner == j]]


def test_onnx_runtime_on_the_cpu_pytorch_on_a_gpu():
    assert BatchedMTCNNDetector(device="cpu").runtime == "onnx"
    with pytest.raises(InputError, match="CPU"):
        BatchedMTCNNDetector(device="cuda", runtime="onnx")
    with pytest.raises(InputError, match="runtime"):
        BatchedMTCNNDetector(runtime="tensorrt")
    pytest.importorskip("torch")
    det = BatchedMTCNNDetector(device="cpu", runtime="torch")
    assert det.id == f"mtcnn-batched-20-(0.6, 0.7, 0.7)-{DETECT_MAX_SIDE}"  # the tensor MTCNN's old key


def test_chunks_of_a_batch_give_each_image_the_same_faces(onnx_mtcnn, onnx_faces, lfw_images, monkeypatch):
    monkeypatch.setattr(mtcnn_onnx, "CHUNK_PIXELS", 3 * 250 * 250)  # 3 images at a time
    got = onnx_mtcnn.detect_arrays(lfw_images[:10])
    want = onnx_faces[0]
    for j in range(10):
        for have, w in zip(got[:3], want[:3]):
            assert np.array_equal(have[got[3] == j], w[want[3] == j])


def test_large_photos_are_searched_on_the_tensor_paths_copy():
    """A photo over DETECT_MAX_SIDE: the downscaled copy and the factor :func:`.scale.search_tensor`
    gives (PIL's downscale; the factor from the widths)."""
    photo = np.random.default_rng(1).integers(0, 256, (900, DETECT_MAX_SIDE + 301, 3), dtype=np.uint8)
    batch = ImageBatch([photo, photo[::-1].copy()])
    host, scale = search_host(batch)
    small = downscale(photo, DETECT_MAX_SIDE)[0]
    assert host.dtype == np.uint8 and host.shape[1:] == small.shape and np.array_equal(host[0], small)
    assert scale == photo.shape[1] / small.shape[1]
    try:
        from facerec.detect.scale import search_tensor

        tensor, tensor_scale = search_tensor(batch)
    except ImportError:  # the core install
        pass
    else:
        assert tensor_scale == scale and np.array_equal(tensor.numpy(), host.transpose(0, 3, 1, 2).astype(np.float32))
    plain = ImageBatch([photo[:100, :120]])
    assert search_host(plain)[1] == 1.0 and np.array_equal(search_host(plain)[0][0], photo[:100, :120])


def test_tiny_and_blank_images_have_no_faces(onnx_mtcnn):
    assert [
        len(f) for f in onnx_mtcnn.detect([np.zeros((5, 5, 3), np.uint8), np.full((90, 120, 3), 128, np.uint8)])
    ] == [
        0,
        0,
    ]


# -- O-Net's re-framing of another detector's boxes -----------------------------------------------------
def test_reframe_keeps_a_box_outside_its_image(onnx_mtcnn):
    image = np.full((100, 120, 3), 128, np.uint8)
    boxes = [(200.0, 200.0, 260.0, 270.0), (20.0, 10.0, 80.0, 90.0)]
    out = onnx_mtcnn.reframe([image, image], boxes)
    assert out.dtype == np.float32 and out.shape == (2, 4)
    assert tuple(out[0]) == boxes[0]  # nothing of it inside the image: as it was
    assert np.isfinite(out[1]).all() and tuple(out[1]) != boxes[1]
    assert onnx_mtcnn.reframe([], np.zeros((0, 4))).shape == (0, 4)


def test_reframe_equals_the_tensor_mtcnns(onnx_mtcnn, torch_mtcnn, onnx_faces, lfw_images):
    boxes, _, _, owner = onnx_faces[0]
    moved = boxes + np.float32(7)  # boxes off MTCNN's own, as another detector's would be
    images = [lfw_images[j] for j in owner]
    got, want = onnx_mtcnn.reframe(images, moved), torch_mtcnn.reframe(images, moved)
    assert np.abs(got - want).max() <= BOX_PX and not np.array_equal(got, moved)


# -- without PyTorch ----------------------------------------------------------------------------------
def test_detects_where_torch_cannot_be_imported():
    """``--detector mtcnn`` in a process where torch, torchvision and facenet-pytorch cannot be
    imported: the same faces as here (the same graphs, the same steps); ``mtcnn-reference`` is
    refused naming the gpu extra."""
    if not LFW_DIR.is_dir():
        pytest.skip("LFW images not in ../shared/data")
    path = LFW_DIR / "Colin_Powell" / "Colin_Powell_0001.jpg"
    script = f"""
import json, sys
import facerec
from facerec.detect import create_detector
from facerec.errors import InputError
from facerec.image_batch import ImageBatch
from facerec.images import load_image

det = create_detector("mtcnn", device="cpu")
assert det.inner.runtime == "onnx", det.inner.id
faces = det.detect(ImageBatch([load_image({str(path)!r})]))[0]
api = facerec.detect({str(path)!r})
try:
    create_detector("mtcnn-reference", device="cpu")
    refused = ""
except InputError as exc:
    refused = str(exc)
print(json.dumps({{"boxes": [d.box for d in faces], "api": [f.box for f in api], "refused": refused,
                   "torch": "torch" in sys.modules}}))
"""
    env = {**os.environ, **WITHOUT_TORCH}
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert not out["torch"]
    want = [list(d.box) for d in BatchedMTCNNDetector(device="cpu").detect(ImageBatch([load_image(path)]))[0]]
    assert out["boxes"] == want and len(want) >= 1
    assert out["api"][0] in want
    assert "pip install 'facerec[gpu]'" in out["refused"]
