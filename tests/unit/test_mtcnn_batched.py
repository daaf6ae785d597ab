"""The batched MTCNN's tensor steps are exact (its faces against facenet-pytorch's on LFW:
integration/test_mtcnn_batched_lfw.py; the ONNX Runtime MTCNN's NumPy steps against these:
test_mtcnn_onnx.py). PyTorch only: skipped in the core install."""

import numpy as np
import pytest

from facerec.detect.mtcnn_net import area_crops, area_resize, summed_area_table
from facerec.detect.nms import batched_nms

torch = pytest.importorskip("torch")
F = torch.nn.functional


def test_area_crops_equal_per_box_area_interpolation():
    rng = np.random.default_rng(0)
    imgs = torch.from_numpy(rng.integers(0, 256, (2, 3, 57, 71)).astype(np.float32))
    rois = torch.tensor([[0, 0, 71, 57], [10, 5, 40, 50], [3, 4, 5, 6], [60, 20, 71, 23]])
    inds = torch.tensor([0, 1, 1, 0])
    got = area_crops(imgs, rois, inds, 24)
    for r, n, g in zip(rois.tolist(), inds.tolist(), got):
        want = F.interpolate(imgs[n : n + 1, :, r[1] : r[3], r[0] : r[2]], size=(24, 24), mode="area")[0]
        torch.testing.assert_close(g, want, atol=1e-4, rtol=0)


def test_pyramid_from_the_table_equals_area_interpolation():
    """P-Net's pyramid read from the summed-area table is F.interpolate(mode="area"), bit for bit,
    at every size above 1 x 1 (downscaling and upscaling, odd shapes, saturated images)."""
    rng = np.random.default_rng(1)
    for shape in ((2, 3, 57, 71), (1, 3, 250, 250), (2, 3, 31, 40)):
        for imgs in (rng.integers(0, 256, shape), np.full(shape, 255)):
            imgs = torch.from_numpy(imgs.astype(np.float32))
            table = summed_area_table(imgs)
            h, w = shape[2:]
            for oh in list(range(2, h + 1, 7)) + [h + 9]:
                ow = max(2, oh * w // h)
                got = area_resize(table, (oh, ow))
                assert torch.equal(got, F.interpolate(imgs, size=(oh, ow), mode="area")), (shape, oh, ow)
                assert got.is_contiguous(memory_format=torch.channels_last)


def test_summed_area_table_sums_exactly():
    imgs = torch.from_numpy(np.random.default_rng(2).integers(0, 256, (2, 3, 20, 30)).astype(np.float32))
    table = summed_area_table(imgs.contiguous(memory_format=torch.channels_last))
    want = torch.nn.functional.pad(imgs.double().cumsum(2).cumsum(3), (1, 0, 1, 0)).permute(0, 2, 3, 1)
    assert table.dtype == torch.float32 and torch.equal(table.double(), want)
    big = summed_area_table(torch.zeros((1, 3, 300, 300)))  # 255 x 90,000 > 2^24: float64
    assert big.dtype == torch.float64 and big.shape == (1, 301, 301, 3)


def _greedy_min_nms(boxes, scores, threshold):
    order, keep = list(np.argsort(-scores, kind="stable")), []
    area = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    while order:
        i = order.pop(0)
        keep.append(i)
        rest = []
        for j in order:
            iw = max(0, min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0]) + 1)
            ih = max(0, min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1]) + 1)
            if iw * ih / min(area[i], area[j]) <= threshold:
                rest.append(j)
        order = rest
    return sorted(keep)


def test_min_nms_equals_greedy_reference():
    rng = np.random.default_rng(3)
    for trial in range(20):
        n = rng.integers(1, 40)
        xy = rng.uniform(0, 100, (n, 2))
        wh = rng.uniform(5, 60, (n, 2))
        boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
        scores = rng.uniform(size=n).astype(np.float32)
        owner = rng.integers(0, 3, n)
        got = sorted(
            batched_nms(
                torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(owner), 0.7, mode="min"
            ).tolist()
        )
        want = sorted(
            i
            for g in range(3)
            for i in np.flatnonzero(owner == g)[_greedy_min_nms(boxes[owner == g], scores[owner == g], 0.7)]
        )
        assert got == want, trial
