"""MTCNN, batched end to end on the device: the same three networks and weights as facenet-pytorch,
with every step after the networks kept as tensor operations.

facenet-pytorch runs P-Net over the batch but then cuts every candidate box for R-Net and O-Net
one at a time in Python and finishes in numpy, which bounds it to a few hundred images a second
on any GPU. Here the R-Net and O-Net crops of all boxes are cut at once from a summed-area
table (the same area resampling facenet-pytorch applies box by box; ``roi_align``'s bilinear
sampling moved the final box below IoU 0.9 on 3% of LFW images), NMS runs for all images of a
batch at once (:mod:`.nms`: the same answers as ``torchvision.ops.batched_nms``, without its
per-image loop on large batches); the embedder's crops are cut afterwards by the pipeline's
cropper (:mod:`facerec.align.croppers`). The geometry (pyramid, box
regression, squaring, integer padding, thresholds) follows facenet-pytorch's ``detect_face`` so
the same faces come out (checked against facenet-pytorch on LFW by the tests).

``--detector mtcnn`` runs this on a GPU; on the CPU it runs :mod:`.mtcnn_onnx`, these steps in NumPy
around the same networks on ONNX Runtime (bit for bit these steps, and faster there).
"""

from __future__ import annotations

import numpy as np

from facerec.detect.base import Detection
from facerec.detect.nms import batched_nms


class BatchedMTCNN:
    """Detect faces in batches of equal-sized images on ``device`` (``cpu`` or ``cuda``).

    Args:
        min_face_size: smallest face searched for, in pixels (facenet-pytorch's default 20).
        thresholds: P-Net, R-Net, O-Net score thresholds.
        factor: image pyramid scale step.
        batch_size: images per batch for :meth:`detect`.
    """

    def __init__(
        self,
        device: str = "cpu",
        min_face_size: int = 20,
        thresholds=(0.6, 0.7, 0.7),
        factor: float = 0.709,
        batch_size: int = 64,
    ):
        import torch
        from facenet_pytorch.models.mtcnn import ONet, PNet, RNet

        self.device = torch.device(device)
        self.min_face_size, self.thresholds, self.factor = min_face_size, tuple(thresholds), factor
        self.batch_size = batch_size
        # pretrained=True reads the weights shipped inside the facenet-pytorch package (no download)
        # channels-last: oneDNN and cuDNN both run these small convolutions and poolings faster
        self.pnet, self.rnet, self.onet = (
            net(pretrained=True).to(self.device).eval().to(memory_format=torch.channels_last)
            for net in (PNet, RNet, ONet)
        )
        # what runs R-Net and O-Net: on a CPU, TorchScript graphs in oneDNN's blocked layout (see
        # :func:`_cpu_graph`); else, or where tracing fails, the modules themselves
        self._rnet_run, self._onet_run = self.rnet, self.onet
        if self.device.type == "cpu":
            self._rnet_run, self._onet_run = _cpu_graph(self.rnet, 24), _cpu_graph(self.onet, 48)

    # -- public ---------------------------------------------------------------------------
    def detect(self, images: list[np.ndarray]) -> list[list[Detection]]:
        """Every face in each uint8 (H, W, 3) image, largest first (the detector interface)."""
        from facerec.detect.scale import detect_in_batches

        def batch(arr):
            boxes, scores, points, owner = (t.cpu().numpy() for t in self.detect_tensor(self.to_tensor(arr)))
            return [list(zip(boxes[owner == j], scores[owner == j], points[owner == j])) for j in range(len(arr))]

        return detect_in_batches(images, self.batch_size, batch)

    def to_tensor(self, batch: np.ndarray):
        """uint8 (N, H, W, 3) -> float32 (N, 3, H, W) on the device."""
        import torch

        return torch.from_numpy(batch).to(self.device).permute(0, 3, 1, 2).float()

    def detect_tensor(self, imgs):
        """Faces in float32 (N, 3, H, W) images with values 0..255, all on the device.

        Returns boxes float32 (M, 4) as x1, y1, x2, y2; scores (M,); landmarks (M, 5, 2);
        image index int64 (M,) of each face.
        """
        import torch

        with torch.inference_mode():
            table = summed_area_table(imgs)  # shared by the pyramid and the R-Net and O-Net crops
            boxes, inds = self._pnet_stage(imgs, table)
            boxes, inds = self._rnet_stage(imgs, boxes, inds, table)
            return self._onet_stage(imgs, boxes, inds, table)

    def reframe(self, images: list[np.ndarray], boxes) -> np.ndarray:
        """Another detector's face boxes framed as MTCNN frames faces: each box, squared, is cut from
        its uint8 (H, W, 3) host image, resampled to 48x48 (OpenCV's area interpolation, close to
        but not bit-equal with MTCNN's own area pooling in :func:`_cut`) and regressed by O-Net, as
        MTCNN's last stage moves R-Net's boxes. float (M, 4) boxes in (x1, y1, x2, y2), float32 (M, 4) out;
        a box with nothing inside its image comes back as it was. Host crops, one face at a time:
        a large photo never becomes a float tensor. :meth:`.mtcnn_onnx.OnnxMTCNN.reframe` is the
        same without PyTorch."""
        import cv2
        import torch

        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        out = boxes.copy()
        if not len(boxes):
            return out
        square = _square(torch.from_numpy(boxes)).numpy()
        crops, kept = [], []
        for j, (image, box) in enumerate(zip(images, square)):
            h, w = image.shape[:2]
            x0, y0, x1, y1 = (int(v) for v in box)  # :func:`_cut`'s integer box (truncated), clipped
            x0, y0, x1, y1 = max(x0, 1) - 1, max(y0, 1) - 1, min(x1, w), min(y1, h)
            if x1 <= x0 or y1 <= y0:
                continue
            crops.append(cv2.resize(np.ascontiguousarray(image[y0:y1, x0:x1]), (48, 48), interpolation=cv2.INTER_AREA))
            kept.append(j)
        if kept:
            data = (torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float().to(self.device) - 127.5) * 0.0078125
            with torch.inference_mode():
                reg = _batched(self._onet_run, data, 32 * 46 * 46)[0]
                moved = _regress(torch.from_numpy(square[kept]).to(self.device), reg)
            out[kept] = moved.cpu().numpy()
        return out

    # -- stages ---------------------------------------------------------------------------
    def _pnet_stage(self, imgs, table=None):
        import torch
        import torch.nn.functional as F

        n, _, h, w = imgs.shape
        m = 12.0 / self.min_face_size
        minl, scale, scales = min(h, w) * m, m, []
        while minl >= 12:
            scales.append(scale)
            scale, minl = scale * self.factor, minl * self.factor
        all_boxes = [torch.zeros((0, 9), device=imgs.device)]  # an image under 12 px has no scale at all
        all_inds = [torch.zeros(0, dtype=torch.long, device=imgs.device)]
        # on a CPU the pyramid is read from the summed-area table where that is exact (float32 sums):
        # the same values as area pooling (see area_resize), 12% less P-Net stage time on LFW batches
        cpu = imgs.device.type == "cpu"
        exact = cpu and table is not None and table.dtype == torch.float32
        src = imgs.contiguous() if cpu and not exact else imgs  # CPU area pooling: 2x faster on NCHW
        for scale in scales:
            size = (int(h * scale + 1), int(w * scale + 1))
            level = area_resize(table, size) if exact and min(size) > 1 else F.interpolate(src, size=size, mode="area")
            data = (level - 127.5) * 0.0078125
            reg, probs = _batched(self.pnet, data, 10 * size[0] * size[1])  # P-Net's first layer: 10 channels
            boxes, inds = _candidates(reg, probs[:, 1], scale, self.thresholds[0])
            keep = batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.5)
            all_boxes.append(boxes[keep])
            all_inds.append(inds[keep])
        boxes, inds = torch.cat(all_boxes), torch.cat(all_inds)
        keep = batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.7)
        boxes, inds = boxes[keep], inds[keep]
        w_, h_ = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        reg = boxes[:, 5:9]
        moved = torch.stack(
            [
                boxes[:, 0] + reg[:, 0] * w_,
                boxes[:, 1] + reg[:, 1] * h_,
                boxes[:, 2] + reg[:, 2] * w_,
                boxes[:, 3] + reg[:, 3] * h_,
            ],
            1,
        )
        return _square(moved), inds

    def _rnet_stage(self, imgs, boxes, inds, table):
        if len(boxes) == 0:
            return boxes, inds
        data, boxes, inds = _cut(imgs, boxes, inds, 24, table)
        reg, probs = _batched(self._rnet_run, data, 28 * 22 * 22)
        score = probs[:, 1]
        ok = score > self.thresholds[1]
        boxes, inds, reg, score = boxes[ok], inds[ok], reg[ok], score[ok]
        keep = batched_nms(boxes, score, inds, 0.7)
        return _square(_regress(boxes[keep], reg[keep])), inds[keep]

    def _onet_stage(self, imgs, boxes, inds, table):
        import torch

        if len(boxes) == 0:
            empty = torch.zeros((0, 4), device=imgs.device)
            return empty, empty[:, 0], torch.zeros((0, 5, 2), device=imgs.device), inds
        data, boxes, inds = _cut(imgs, boxes, inds, 48, table)
        reg, marks, probs = _batched(self._onet_run, data, 32 * 46 * 46)
        score = probs[:, 1]
        ok = score > self.thresholds[2]
        boxes, inds, reg, marks, score = boxes[ok], inds[ok], reg[ok], marks[ok], score[ok]
        bw, bh = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
        points = torch.stack(
            [bw[:, None] * marks[:, :5] + boxes[:, :1] - 1, bh[:, None] * marks[:, 5:] + boxes[:, 1:2] - 1], 2
        )
        boxes = _regress(boxes, reg)
        keep = batched_nms(boxes, score, inds, 0.7, mode="min")
        return boxes[keep], score[keep], points[keep], inds[keep]


# -- tensor helpers (shapes: boxes (M, 4+), inds (M,)) ------------------------------------------
def _candidates(reg, probs, scale: float, threshold: float):
    """P-Net cells over the threshold -> boxes (M, 9): x1, y1, x2, y2, score, 4 regressions."""
    import torch

    mask = probs >= threshold
    where = mask.nonzero()
    inds = where[:, 0]
    score = probs[mask]
    reg = reg.permute(1, 0, 2, 3)[:, mask].permute(1, 0)
    cell = where[:, 1:].to(reg.dtype).flip(1)  # (x, y) of the cell
    q1 = ((2 * cell + 1) / scale).floor()
    q2 = ((2 * cell + 12) / scale).floor()
    return torch.cat([q1, q2, score[:, None], reg], 1), inds


def _square(boxes):
    """Grow each box to a square around its centre (facenet-pytorch's ``rerec``)."""
    import torch

    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(w, h)
    x1, y1 = boxes[:, 0] + w * 0.5 - side * 0.5, boxes[:, 1] + h * 0.5 - side * 0.5
    return torch.stack([x1, y1, x1 + side, y1 + side], 1)


def _regress(boxes, reg):
    import torch

    w, h = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
    return boxes[:, :4] + reg * torch.stack([w, h, w, h], 1)


def _cut(imgs, boxes, inds, size: int, table=None):
    """Crops of ``boxes`` as facenet-pytorch's ``pad`` cuts them (integer coordinates, clipped to the
    image), area-resampled to size x size, normalised for the network. Boxes that are empty after
    clipping are dropped (with their image index)."""
    import torch

    h, w = imgs.shape[2:]
    b = boxes.trunc().long()
    x, y = torch.clamp(b[:, 0], min=1), torch.clamp(b[:, 1], min=1)
    ex, ey = torch.clamp(b[:, 2], max=w), torch.clamp(b[:, 3], max=h)
    ok = (ey > y - 1) & (ex > x - 1)
    crops = area_crops(
        imgs if table is None else None, torch.stack([x - 1, y - 1, ex, ey], 1)[ok], inds[ok], size, table=table
    )
    return (crops - 127.5) * 0.0078125, boxes[ok], inds[ok]


def summed_area_table(imgs):
    """(N, H+1, W+1, C) running sums of integer-valued (0..255) images, exact: float32 while every
    sum stays below 2^24 (images up to 65,793 pixels, LFW's 250 x 250 included), else float64.
    Summed in (N, H, W, C) order, the memory order of channels-last images, into the table itself."""
    import torch

    n, c, h, w = imgs.shape
    exact32 = h * w * 255 < 2**24
    dtype = torch.float32 if exact32 else torch.float64
    table = torch.zeros((n, h + 1, w + 1, c), dtype=dtype, device=imgs.device)
    table[:, 1:, 1:] = imgs.permute(0, 2, 3, 1).to(dtype).cumsum(1).cumsum(2)
    return table


def area_resize(table, size: tuple[int, int]):
    """The whole images of a float32 summed-area table resized to ``size`` (h, w) exactly as
    ``F.interpolate(mode="area")`` (adaptive average pooling) does it: each window's sum read from
    the table (exact: integers below 2^24), divided by its height, then by its width, as the
    pooling kernel does (checked for every size above 1 x 1, whose global mean PyTorch computes
    otherwise). Returns float32 (N, C, h, w), channels-last (P-Net's input layout)."""
    import torch

    _, rows, cols, _ = table.shape

    def windows(length, out):
        i = torch.arange(out, device=table.device)
        lo = torch.div(i * length, out, rounding_mode="floor")
        hi = torch.div((i + 1) * length + out - 1, out, rounding_mode="floor")
        return lo, hi, (hi - lo).to(table.dtype)

    y0, y1, kh = windows(rows - 1, size[0])
    x0, x1, kw = windows(cols - 1, size[1])
    strips = table.index_select(1, y1) - table.index_select(1, y0)  # (N, h, W+1, C): sums over rows
    sums = strips.index_select(2, x1) - strips.index_select(2, x0)  # (N, h, w, C)
    return sums.div_(kh[:, None, None]).div_(kw[:, None]).permute(0, 3, 1, 2)


def area_crops(imgs, rois, inds, size: int, table=None):
    """Cut integer boxes (x0, y0, x1, y1: pixels x0..x1-1) and resize each to size x size exactly as
    ``F.interpolate(mode="area")`` (adaptive average pooling) would, for all boxes at once: every
    output pixel is a window mean read from the summed-area table with four gathers.
    Returns float32 (M, C, size, size)."""
    import torch

    table = summed_area_table(imgs) if table is None else table
    _, rows, cols, channels = table.shape
    if len(rois) == 0:
        return torch.zeros((0, channels, size, size), device=table.device)
    i = torch.arange(size, device=rois.device)

    def windows(start, length):  # adaptive pooling's integer windows, (M, size) each
        lo = start[:, None] + torch.div(i * length[:, None], size, rounding_mode="floor")
        hi = start[:, None] + torch.div((i + 1) * length[:, None] + size - 1, size, rounding_mode="floor")
        return lo, hi

    y0, y1 = windows(rois[:, 1], rois[:, 3] - rois[:, 1])
    x0, x1 = windows(rois[:, 0], rois[:, 2] - rois[:, 0])
    flat = table.view(-1, channels)
    base = inds[:, None, None] * (rows * cols)

    def at(ys, xs):  # (M, size, size, C): one row gather per corner
        return flat.index_select(0, (base + ys[:, :, None] * cols + xs[:, None, :]).view(-1)).view(
            len(rois), size, size, channels
        )

    sums = at(y1, x1) - at(y0, x1) - at(y1, x0) + at(y0, x0)
    count = (y1 - y0)[:, :, None] * (x1 - x0)[:, None, :]
    return (sums.float() / count[..., None].float()).permute(0, 3, 1, 2).contiguous()


def _cpu_graph(net, size: int):
    """``net`` traced, frozen and optimised for inference (``torch.jit.optimize_for_inference``):
    the whole network in oneDNN's blocked layout with prepacked weights, where its max poolings run
    ~3x faster than eager's on channels-last tensors (R-Net and O-Net ~30% faster in all; P-Net,
    whose large pyramid levels pay the layout conversions, is not). Falls back to ``net``."""
    import warnings

    import torch

    example = torch.zeros((2, 3, size, size)).contiguous(memory_format=torch.channels_last)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings: the networks have no data-dependent flow
            graph = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(net, example)))
            graph(example)
        return graph
    except Exception:  # noqa: BLE001 (no oneDNN, an old TorchScript: the module runs as it is)
        return net


# On a CPU, a network's activations for a chunk of inputs should fit in the last-level cache: its
# PReLUs and poolings are bound by memory traffic (R-Net ran 1.8x and O-Net 2.1x faster in chunks of
# 256 and 64 crops than in one chunk of thousands, on the 2-core development machine). A GPU wants
# the largest batches.
CPU_CHUNK_BYTES = 16 * 2**20
GPU_CHUNK = 8192


def _batched(net, data, first_layer_values: int):
    """``net`` over ``data`` in chunks, outputs concatenated. ``first_layer_values``: floats in the
    first layer's output per input, which sizes the chunks on a CPU."""
    import torch

    data = data.contiguous(memory_format=torch.channels_last)
    if data.device.type == "cpu":
        chunk = max(1, CPU_CHUNK_BYTES // (4 * first_layer_values))
    else:
        chunk = GPU_CHUNK
    if len(data) <= chunk:
        return net(data)
    outs = [net(data[s : s + chunk]) for s in range(0, len(data), chunk)]
    return tuple(torch.cat(parts) for parts in zip(*outs))
