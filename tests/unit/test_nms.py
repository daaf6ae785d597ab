"""Batched greedy NMS: the same boxes as torchvision's, for many images at once; the NumPy path (the
ONNX Runtime MTCNN's) the same boxes in the same order as the tensor paths. The tensor tests skip in
the core install (no torch); the NumPy path is checked there against a plain greedy loop."""

import numpy as np
import pytest

from facerec.detect import nms as nms_module
from facerec.detect.nms import batched_nms

try:
    import torch
    from torchvision.ops import batched_nms as torchvision_batched_nms
except ImportError:  # the core install
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed (the core install)")


def _random_boxes(gen, images: int, boxes: int):
    xy = torch.rand(boxes, 2, generator=gen) * 200
    wh = torch.rand(boxes, 2, generator=gen) * 60 + 1
    return (
        torch.cat([xy, xy + wh], 1),
        torch.rand(boxes, generator=gen),
        torch.randint(0, images, (boxes,), generator=gen),
    )


@pytest.fixture(params=["per-image", "table"])
def cpu_path(request, monkeypatch):
    """Each test on both CPU paths: torchvision image by image (the default) and the padded table
    (the GPU's, forced here)."""
    monkeypatch.setattr(nms_module, "CPU_PER_IMAGE", request.param == "per-image")
    return request.param


@needs_torch
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_same_answer_and_order_as_torchvision(threshold, cpu_path):
    gen = torch.Generator().manual_seed(1)
    for _ in range(30):
        boxes, scores, idxs = _random_boxes(
            gen, int(torch.randint(1, 30, (1,), generator=gen)), int(torch.randint(1, 400, (1,), generator=gen))
        )
        assert torch.equal(
            batched_nms(boxes, scores, idxs, threshold), torchvision_batched_nms(boxes, scores, idxs, threshold)
        )


@needs_torch
def test_a_large_batch_in_chunks(monkeypatch, cpu_path):
    """Over 5,000 boxes (where torchvision loops per image) and the table cut into many chunks."""
    gen = torch.Generator().manual_seed(2)
    boxes, scores, idxs = _random_boxes(gen, 300, 9000)
    want = sorted(torchvision_batched_nms(boxes, scores, idxs, 0.5).tolist())
    for entries in (nms_module.MAX_ENTRIES, 5000):  # one chunk; ~4 images per chunk
        monkeypatch.setattr(nms_module, "MAX_ENTRIES", entries)
        got = batched_nms(boxes, scores, idxs, 0.5)
        # the same boxes, best first (9,000 random scores hold equal pairs, which may come in either order)
        assert sorted(got.tolist()) == want
        assert torch.all(scores[got][1:] <= scores[got][:-1])


@needs_torch
def test_edge_cases(cpu_path):
    empty = torch.zeros((0, 4))
    assert batched_nms(empty, torch.zeros(0), torch.zeros(0, dtype=torch.long), 0.5).numel() == 0
    one = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    assert batched_nms(one, torch.tensor([0.9]), torch.tensor([4]), 0.5).tolist() == [0]
    # identical boxes: the better one survives; in another image the same box is untouched
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0]] * 3)
    assert batched_nms(boxes, torch.tensor([0.5, 0.9, 0.7]), torch.tensor([0, 0, 1]), 0.5).tolist() == [1, 2]
    with pytest.raises(ValueError, match="mode"):
        batched_nms(one, torch.tensor([0.9]), torch.tensor([0]), 0.5, mode="max")


@needs_torch
def test_an_image_with_too_many_boxes_goes_to_torchvision(monkeypatch):
    """Above MAX_BOXES_PER_IMAGE boxes in one image the K x K table would not fit: same answer."""
    monkeypatch.setattr(nms_module, "CPU_PER_IMAGE", False)  # the table path, as on a GPU
    gen = torch.Generator().manual_seed(3)
    boxes, scores, idxs = _random_boxes(gen, 4, 600)
    idxs[:400] = 0  # one crowded image among sparse ones
    want = sorted(torchvision_batched_nms(boxes, scores, idxs, 0.5).tolist())
    calls = []
    monkeypatch.setattr(nms_module, "MAX_BOXES_PER_IMAGE", 100)
    import torchvision.ops

    real = torchvision.ops.batched_nms
    monkeypatch.setattr(torchvision.ops, "batched_nms", lambda *a: calls.append(1) or real(*a))
    assert sorted(batched_nms(boxes, scores, idxs, 0.5).tolist()) == want and calls
    # "min" mode (MTCNN's last stage, a few boxes per image) always uses the table
    got_min = batched_nms(boxes, scores, idxs, 0.7, mode="min")
    assert len(calls) == 1 and len(got_min) > 0


@needs_torch
def test_cpu_paths_agree_with_ties_and_order():
    """The per-image path returns what the table path does, in the same order, with tied scores
    within and across images (P-Net probabilities saturate) and integer boxes (P-Net's)."""
    gen = torch.Generator().manual_seed(4)
    for threshold in (0.5, 0.7):
        for _ in range(20):
            boxes, _, idxs = _random_boxes(gen, 12, 500)
            boxes = boxes.floor()
            scores = torch.randint(0, 6, (len(boxes),), generator=gen).float() / 5  # many ties
            nms_module.CPU_PER_IMAGE = False
            try:
                want = batched_nms(boxes, scores, idxs, threshold)
            finally:
                nms_module.CPU_PER_IMAGE = True
            assert torch.equal(batched_nms(boxes, scores, idxs, threshold), want)


# -- the NumPy path -------------------------------------------------------------------------------------
def _greedy(boxes, scores, threshold, mode):
    """Plain greedy NMS of one image, in float32 as the kernels compute it: kept indices, best first."""
    one = np.float32(1 if mode == "min" else 0)
    order, keep = list(np.argsort(-scores, kind="stable")), []
    while order:
        i = order.pop(0)
        keep.append(i)
        rest = []
        for j in order:
            a, b = boxes[i], boxes[j]
            iw = max(np.float32(0), min(a[2], b[2]) - max(a[0], b[0]) + one)
            ih = max(np.float32(0), min(a[3], b[3]) - max(a[1], b[1]) + one)
            area_a = (a[2] - a[0] + one) * (a[3] - a[1] + one)
            area_b = (b[2] - b[0] + one) * (b[3] - b[1] + one)
            over = iw * ih / (min(area_a, area_b) if mode == "min" else area_a + area_b - iw * ih)
            if not over > threshold:
                rest.append(j)
        order = rest
    return keep


def _numpy_boxes(rng, images: int, n: int, whole: bool):
    xy = rng.uniform(0, 200, (n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(1, 60, (n, 2))], 1).astype(np.float32)
    scores = (rng.integers(0, 6, n) / 5 if whole else rng.uniform(size=n)).astype(np.float32)  # ties, or none
    return (np.floor(boxes) if whole else boxes), scores, rng.integers(0, images, n)


@pytest.mark.parametrize("mode", ["union", "min"])
def test_numpy_path_is_greedy_per_image(mode):
    """Torch-free: each image's kept boxes are plain greedy NMS's; all of them best score first."""
    rng = np.random.default_rng(5)
    for trial in range(40):
        boxes, scores, idxs = _numpy_boxes(rng, int(rng.integers(1, 6)), int(rng.integers(1, 60)), trial % 2 == 0)
        got = batched_nms(boxes, scores, idxs, 0.5, mode=mode)
        assert isinstance(got, np.ndarray) and np.all(scores[got][1:] <= scores[got][:-1])
        for g in np.unique(idxs):
            mine = np.flatnonzero(idxs == g)
            assert sorted(got[idxs[got] == g].tolist()) == sorted(mine[_greedy(boxes[mine], scores[mine], 0.5, mode)])
    assert batched_nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), 0.5).shape == (0,)
    with pytest.raises(ValueError, match="mode"):
        batched_nms(boxes, scores, idxs, 0.5, mode="max")


@needs_torch
@pytest.mark.parametrize("mode", ["union", "min"])
def test_numpy_path_equals_the_tensor_paths_in_order(mode, monkeypatch):
    """The same indices in the same order as the CPU tensor path ("union": torchvision per image;
    "min": the table), with tied scores and whole-pixel boxes (P-Net's) and without."""
    rng = np.random.default_rng(6)
    for trial in range(60):
        boxes, scores, idxs = _numpy_boxes(rng, int(rng.integers(1, 30)), int(rng.integers(1, 400)), trial % 2 == 0)
        for threshold in (0.5, 0.7):
            want = batched_nms(
                torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(idxs), threshold, mode
            )
            got = batched_nms(boxes, scores, idxs, threshold, mode)
            assert np.array_equal(got, want.numpy()), (trial, threshold)
