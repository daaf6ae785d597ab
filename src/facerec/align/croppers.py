"""Croppers: cut each face the way its embedder was trained (the embedder spec's ``crop``).

With ``alignment="box"`` (the default): ``margin`` (FaceNet): the detector box grown by a margin of the output crop, clipped to the image,
resampled with ``roi_align`` (NumPy's on the CPU, torchvision's on a GPU; the same geometry as facenet-pytorch's ``extract_face``;
its embeddings agree with PIL-resized crops to cosine >= 0.997). ``dlib-chip``: dlib's 5-landmark
similarity alignment, as dlib's ResNet was trained. ``arcface`` (ONNX ArcFace-family models,
:mod:`facerec.align.arcface`): always the five landmarks onto ArcFace's template. With ``alignment="five-point"`` the detector's
own five landmarks go onto the style's template (:mod:`facerec.align.five_point`): no landmark model
runs, and the face is turned upright. A whole-image "detection" (``--detector resize``) is resized as
it is, whatever the style.
"""

from __future__ import annotations

import numpy as np

from facerec.align.crops import resize_rgb
from facerec.align.roi_align import roi_align
from facerec.detect.base import Detection
from facerec.errors import InputError
from facerec.image_batch import ImageBatch
from facerec.limits import HOST_CROP_PIXELS

# Host photos larger than HOST_CROP_PIXELS (set in facerec.limits) are cropped face by face from
# host memory, so that the full-size picture never becomes a float tensor (the device path; the
# NumPy path never makes one, and cuts such photos the same way only to give the same numbers).


class MarginCropper:
    """float32 (M, 3, size, size) crops, values 0..255: a NumPy array for a host batch on the CPU
    (:mod:`facerec.align.roi_align`, no torch), a tensor on the batch's device otherwise
    (torchvision's ``roi_align``: the GPU path). Both are the same resampling."""

    def __init__(self, size: int, margin: float):
        self.size, self.margin = size, margin

    def crop(self, batch: ImageBatch, faces: list[tuple[int, Detection]]):
        regions = self.regions_of([d for _, d in faces], batch.width, batch.height)
        owners = [j for j, _ in faces]
        if batch.on_host and batch.device == "cpu":
            return self._crop_host(batch, owners, regions)
        return self._crop_device(batch, owners, regions)

    def regions_of(self, faces: list[Detection], width: int, height: int) -> np.ndarray:
        """float32 (M, 4): each face's region (:meth:`regions`). A face that runs past the image's
        edge (``full_box``) is cut around its whole box, its region not clipped: the part outside
        the image continues the image's edge pixels, as the padded copy it was found on did, so
        its crop has the face's shape and the margin FaceNet was trained with."""
        boxes = np.array([d.full_box or d.box for d in faces], np.float32).reshape(-1, 4)
        regions = np.stack(self.regions(boxes, width, height), 1)
        beyond = [k for k, d in enumerate(faces) if d.full_box is not None]
        if beyond:
            regions[beyond] = np.stack(self.regions(boxes[beyond], width, height, clip=False), 1)
        return regions

    def _crop_host(self, batch: ImageBatch, owners: list[int], regions: np.ndarray) -> np.ndarray:
        # a photo over HOST_CROP_PIXELS is cut region by region, as on the device path: the region's
        # own edge is then the edge for the samples in its outer half pixel (not the pixels beyond)
        big = batch.height * batch.width > HOST_CROP_PIXELS
        out = np.empty((len(owners), 3, self.size, self.size), np.float32)
        for m, (j, (left, top, right, bottom)) in enumerate(zip(owners, regions.astype(np.int64).tolist())):
            if not _inside(left, top, right, bottom, batch.width, batch.height):
                region = _edge_continued(batch.host[j], left, top, right, bottom)
                out[m] = roi_align(region, [(0, 0, right - left, bottom - top)], self.size)[0]
            elif big:
                region = batch.host[j][top:bottom, left:right]
                out[m] = roi_align(region, [(0, 0, right - left, bottom - top)], self.size)[0]
            else:
                out[m] = roi_align(batch.host[j], [(left, top, right, bottom)], self.size)[0]
        return out

    def _crop_device(self, batch: ImageBatch, owners: list[int], regions: np.ndarray):
        import torch
        from torchvision.ops import roi_align as torch_roi_align

        big = batch.on_host and batch.height * batch.width > HOST_CROP_PIXELS
        dev = batch.device if big else batch.tensor.device
        rois = torch.tensor(np.column_stack([np.asarray(owners, np.float32), regions]), device=dev).reshape(-1, 5)
        w, h = batch.width, batch.height
        beyond = [not _inside(*r, w, h) for r in regions.astype(np.int64).tolist()]
        with torch.inference_mode():
            if not big and not any(beyond):
                return torch_roi_align(
                    batch.tensor, rois, (self.size,) * 2, spatial_scale=1.0, sampling_ratio=-1, aligned=True
                )
            out = []
            for (j, left, top, right, bottom), past_edge, roi in zip(rois.round().long().tolist(), beyond, rois):
                if not big and not past_edge:  # a region inside the image: as the whole batch would
                    out.append(
                        torch_roi_align(
                            batch.tensor,
                            roi[None],
                            (self.size,) * 2,
                            spatial_scale=1.0,
                            sampling_ratio=-1,
                            aligned=True,
                        )
                    )
                    continue
                if past_edge:  # uint8 (3, h, w) on the device, each pixel outside reading its nearest edge pixel
                    image = batch.tensor[j] if not big else torch.from_numpy(batch.host[j]).to(dev).permute(2, 0, 1)
                    ys = torch.arange(top, bottom, device=dev).clamp_(0, h - 1)
                    xs = torch.arange(left, right, device=dev).clamp_(0, w - 1)
                    t = image[:, ys][:, :, xs][None].float()
                else:
                    region = np.ascontiguousarray(batch.host[j][top:bottom, left:right])
                    t = torch.from_numpy(region).to(dev).permute(2, 0, 1)[None].float()
                box = torch.tensor([[0.0, 0.0, 0.0, right - left, bottom - top]], device=dev)
                out.append(
                    torch_roi_align(t, box, (self.size,) * 2, spatial_scale=1.0, sampling_ratio=-1, aligned=True)
                )
            return torch.cat(out)

    def regions(self, boxes: np.ndarray, width: int, height: int, clip: bool = True) -> tuple[np.ndarray, ...]:
        """Each float32 (M, 4) box grown by the margin (px of the output crop), clipped to the
        image, truncated to whole pixels as facenet-pytorch's ``extract_face`` does: (left, top,
        right, bottom), float32 (M,) each, computed in float32 as the tensors once were. With
        ``clip`` False (a face past the image's edge) not clipped, and rounded down, as the same
        region truncated on a padded copy would be."""
        size, margin = self.size, self.margin
        x1, y1, x2, y2 = np.asarray(boxes, np.float32).reshape(-1, 4).T
        div = np.float32(max(size - margin, 1))
        mx, my = np.float32(margin) * (x2 - x1) / div, np.float32(margin) * (y2 - y1) / div
        half = np.float32(2)
        if not clip:
            left, top = np.floor(x1 - mx / half), np.floor(y1 - my / half)
            right, bottom = np.floor(x2 + mx / half), np.floor(y2 + my / half)
            return left, top, np.maximum(right, left + 1), np.maximum(bottom, top + 1)
        left, top = np.trunc(np.maximum(x1 - mx / half, 0)), np.trunc(np.maximum(y1 - my / half, 0))
        right = np.trunc(np.minimum(x2 + mx / half, np.float32(width)))
        bottom = np.trunc(np.minimum(y2 + my / half, np.float32(height)))
        # a box outside the picture still gets a (one-pixel) region, never an empty one
        left, top = np.minimum(left, np.float32(width - 1)), np.minimum(top, np.float32(height - 1))
        return left, top, np.maximum(right, left + 1), np.maximum(bottom, top + 1)


def _inside(left: int, top: int, right: int, bottom: int, width: int, height: int) -> bool:
    return left >= 0 and top >= 0 and right <= width and bottom <= height


def _edge_continued(image: np.ndarray, left: int, top: int, right: int, bottom: int) -> np.ndarray:
    """uint8 (bottom - top, right - left, 3): the image's region, its part outside the image
    continuing the image's edge pixels (each reads its nearest pixel inside)."""
    h, w = image.shape[:2]
    ys = np.clip(np.arange(top, bottom), 0, h - 1)
    xs = np.clip(np.arange(left, right), 0, w - 1)
    return image[ys[:, None], xs[None, :]]


class DlibChipCropper:
    """uint8 (M, size, size, 3) host crops: 5 landmarks from dlib's shape predictor inside the
    detector box, then ``get_face_chip`` (similarity transform, padding 0.25)."""

    def __init__(self, size: int = 150, padding: float = 0.25):
        from facerec.runtime.dlib_models import SHAPE_5, dlib_model_path, import_dlib

        self._dlib = import_dlib()
        self._predictor = self._dlib.shape_predictor(str(dlib_model_path(SHAPE_5)))
        self.size, self.padding = size, padding

    def crop(self, batch: ImageBatch, faces: list[tuple[int, Detection]]) -> np.ndarray:
        return np.stack([self.chip(batch.host[j], d) for j, d in faces])

    def chip(self, image: np.ndarray, det: Detection) -> np.ndarray:
        # the landmarks are searched in the face's whole box (a face past the image's edge: ``full_box``)
        x1, y1, x2, y2 = (int(round(v)) for v in det.full_box or det.box)
        shape = self._predictor(image, self._dlib.rectangle(x1, y1, x2, y2))
        chip = self._dlib.get_face_chip(image, shape, size=self.size, padding=self.padding)
        return np.ascontiguousarray(np.asarray(chip, dtype=np.uint8))


class WholeImageCropper:
    """uint8 (M, size, size, 3): each image resized whole (Pillow's antialiased bilinear)."""

    def __init__(self, size: int):
        self.size = size

    def crop(self, batch: ImageBatch, faces: list[tuple[int, Detection]]) -> np.ndarray:
        return np.stack([resize_rgb(batch.host[j], self.size) for j, _ in faces])


class FivePointCropper:
    """uint8 (M, size, size, 3) host crops: each face's five landmarks onto the style's template.
    A face without landmarks (a detector that has none, e.g. dlib's HOG) is cut by ``fallback``.

    FaceNet's template was measured at margin 32 px (of 160): another margin scales it about the
    crop's centre, as the margin crop would (the box fills ``size - margin`` of the crop)."""

    def __init__(self, style: str, size: int, margin: float, fallback):
        from facerec.align.five_point import DEFAULT_MARGIN_OF_TEMPLATE, template_for

        template = template_for(style, size)
        if style == "margin":
            centre = (size - 1) / 2
            reference = DEFAULT_MARGIN_OF_TEMPLATE * size / 160
            template = centre + (template - centre) * (size - margin) / (size - reference)
        self.template, self.size, self.fallback = template, size, fallback

    def crop(self, batch: ImageBatch, faces: list[tuple[int, Detection]]) -> np.ndarray:
        from facerec.align.five_point import warp

        plain = [k for k, (_, d) in enumerate(faces) if d.landmarks is None]
        out = np.empty((len(faces), self.size, self.size, 3), np.uint8)
        if plain:
            out[plain] = to_uint8(self.fallback.crop(batch, [faces[k] for k in plain]))
        for k, (j, det) in enumerate(faces):
            if det.landmarks is not None:
                out[k] = warp(batch.host[j], det.landmarks, self.template, self.size)
        return out


def to_uint8(crops) -> np.ndarray:
    """uint8 (M, S, S, 3) host crops from float (M, 3, S, S) ones (a NumPy array or a tensor:
    rounded half to even, as torch rounds), or uint8 host crops as they are."""
    if isinstance(crops, np.ndarray):
        if crops.dtype == np.uint8:
            return crops
        return np.ascontiguousarray(np.clip(np.round(crops), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1))
    import torch

    return np.ascontiguousarray(crops.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy())


class FusedCropper:
    """A fused embedder's crops: a list with each part's own batch of crops of the same faces."""

    def __init__(self, croppers: list):
        self.croppers = croppers

    def crop(self, batch: ImageBatch, faces: list[tuple[int, Detection]]) -> list:
        return [c.crop(batch, faces) for c in self.croppers]


def cropper_for(spec, *, margin: float, whole_image: bool = False, alignment: str = "box"):
    """The cropper an embedder's spec asks for (each part's, for a fused embedder)."""

    if spec.parts:
        from facerec.embed import get_spec

        parts = [get_spec(name) for name, _ in spec.parts]
        aligns = alignment_parts(alignment, len(parts))
        return FusedCropper(
            [cropper_for(p, margin=margin, whole_image=whole_image, alignment=a) for p, a in zip(parts, aligns)]
        )
    (alignment,) = alignment_parts(alignment, 1)
    return create_cropper(spec.crop, size=spec.input_size, margin=margin, whole_image=whole_image, alignment=alignment)


def create_cropper(style: str, *, size: int, margin: float, whole_image: bool = False, alignment: str = "box"):
    if whole_image:
        return WholeImageCropper(size)
    if style == "arcface":  # five-point whatever the alignment: the model knows no other crop
        from facerec.align.arcface import ArcFaceCropper

        return ArcFaceCropper(size)
    if alignment == "five-point":
        if style not in ("margin", "dlib-chip"):
            raise InputError(f"no five-point template for crop style {style!r}")
        return FivePointCropper(style, size, margin, create_cropper(style, size=size, margin=margin))
    if style == "margin":
        return MarginCropper(size, margin)
    if style == "dlib-chip":
        return DlibChipCropper(size)
    raise InputError(f"unknown crop style {style!r}")


# How a face is cut from its image: ``box`` (the embedder's own crop around the detector's box: a
# margin crop for FaceNet, dlib's landmark model inside the box for dlib) or ``five-point`` (the
# detector's five landmarks mapped onto the embedder's template, :mod:`facerec.align.five_point`).
ALIGNMENTS = ("box", "five-point")


def alignment_parts(alignment: str, parts: int) -> list[str]:
    """Each part's alignment: one for all, or a fused embedder's ``A+B`` (e.g. ``box+five-point``:
    FaceNet on its box crop, dlib on its five-point chip), one per part in the embedder's order."""
    names = alignment.split("+") if isinstance(alignment, str) else [alignment]
    bad = [a for a in names if a not in ALIGNMENTS]
    if bad:
        raise InputError(
            f"alignment must be one of {ALIGNMENTS} or A+B of them for a fused embedder, got {alignment!r}"
        )
    if len(names) == 1:
        return names * parts
    if len(names) != parts:
        raise InputError(
            f"alignment {alignment!r} names {len(names)} parts, but the embedder has {parts}"
            + ("" if parts > 1 else ": per-part alignment is for fused embedders (A+B)")
        )
    return names
