"""Faces that fill the frame: every detector from ``create_detector`` searches again on a padded
copy where it found nothing (:class:`facerec.detect.padding.PaddedRetry`)."""

from __future__ import annotations

import numpy as np
import pytest

from facerec.detect import Detection, Detector, create_detector, register_detector
from facerec.detect.padding import PAD_GREY, PaddedRetry, pad_px, padded, unpadded
from facerec.image_batch import ImageBatch
from facerec.pipeline import Pipeline

from conftest import FakeDetector


class ContextDetector(Detector):
    """Finds the bright region of an image, as a face with landmarks, only when at least a sixth of
    the image's side separates it from every edge: a detector that needs context around a face,
    as MTCNN's and YuNet's smallest windows do."""

    name = id = "context"
    calls: list[tuple[int, int]] = []  # (height, width) of each batch it saw

    def __init__(self, device="cpu", batch_size=64):
        pass

    def detect(self, batch):
        ContextDetector.calls.append((batch.height, batch.width))
        out = []
        for img in batch.host:
            ys, xs = np.nonzero(img.min(axis=2) > 200)
            h, w = img.shape[:2]
            if len(ys) == 0 or min(ys.min(), xs.min(), h - 1 - ys.max(), w - 1 - xs.max()) < max(h, w) / 6:
                out.append([])
                continue
            box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            out.append(
                [
                    Detection(
                        box,
                        0.9,
                        np.array(
                            [[cx - 5, cy - 5], [cx + 5, cy - 5], [cx, cy], [cx - 4, cy + 6], [cx + 4, cy + 6]],
                            np.float32,
                        ),
                    )
                ]
            )
        return out


register_detector("context", ContextDetector)


def face_only(h=60, w=50) -> np.ndarray:
    """A "face" that fills the frame: bright everywhere but a dark one-pixel rim."""
    img = np.full((h, w, 3), 230, np.uint8)
    img[0, :] = img[-1, :] = img[:, 0] = img[:, -1] = 40
    return img


def framed(h=60, w=50) -> np.ndarray:
    """The same face with room around it: found on the first pass."""
    img = np.zeros((h * 2, w * 2, 3), np.uint8)
    img[h // 2 : h // 2 + h, w // 2 : w // 2 + w] = face_only(h, w)
    return img


def test_a_face_that_fills_the_frame_is_found_with_its_box_inside_the_image():
    det = create_detector("context")
    assert isinstance(det, PaddedRetry) and det.name == "context"
    (faces,) = det.detect(ImageBatch([face_only()]))
    assert det.inner.detect(ImageBatch([face_only()])) == [[]]  # the detector alone misses it
    (face,) = faces
    x1, y1, x2, y2 = face.box
    assert (x1, y1, x2, y2) == pytest.approx((1, 1, 49, 59))  # the bright part, in the image's own pixels
    assert 0 <= x1 < x2 <= 50 and 0 <= y1 < y2 <= 60
    np.testing.assert_allclose(face.landmarks[2], [25, 30])  # landmarks moved back with the box


def test_the_retry_runs_only_for_images_without_a_face_and_keeps_the_first_pass():
    ContextDetector.calls.clear()
    det = create_detector("context")
    first = det.inner.detect(ImageBatch([framed()]))
    ContextDetector.calls.clear()
    assert [f.box for f in det.detect(ImageBatch([framed()]))[0]] == [f.box for f in first[0]]
    assert ContextDetector.calls == [(120, 100)]  # one pass: nothing was missed
    ContextDetector.calls.clear()
    found = det.detect(ImageBatch([face_only(), np.zeros((60, 50, 3), np.uint8), face_only()]))
    pad = pad_px(60, 50, det.share)
    # the padded copy holds only the two images that missed, one batch of one shape
    assert ContextDetector.calls == [(60, 50), (60 + 2 * pad, 50 + 2 * pad)]
    assert [len(f) for f in found] == [1, 0, 1]  # an empty image stays empty: nothing is assumed


def test_pad_misses_false_gives_the_detector_alone_and_resize_is_never_wrapped():
    assert isinstance(create_detector("context", pad_misses=False), ContextDetector)
    assert create_detector("resize").id == "resize"
    assert create_detector("context").id != ContextDetector.id  # the detection cache tells them apart


def test_padding_host_arrays():
    img = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    for mode in ("edge", "constant"):
        host = padded(ImageBatch([img]), 2, mode).host[0]
        assert host.shape == (8, 9, 3) and isinstance(host, np.ndarray)
        np.testing.assert_array_equal(host[2:6, 2:7], img)
    np.testing.assert_array_equal(padded(ImageBatch([img]), 2, "edge").host[0][0, 0], img[0, 0])
    assert (padded(ImageBatch([img]), 2, "constant").host[0][0, 0] == PAD_GREY).all()
    assert padded(ImageBatch([img], "cuda:1"), 2, "edge").device == "cuda:1"  # host images bound for a GPU


def test_padding_host_and_device_views_agree():
    torch = pytest.importorskip("torch")  # the device view: the gpu extra
    img = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    for mode in ("edge", "constant"):
        host = padded(ImageBatch([img]), 2, mode).host[0]
        as_tensor = ImageBatch([torch.from_numpy(img).permute(2, 0, 1).contiguous()])  # a decoded (3, H, W) image
        as_tensor.on_host = False
        np.testing.assert_array_equal(padded(as_tensor, 2, mode).host[0], host)


def test_faces_in_the_border_are_dropped_and_boxes_clipped():
    dets = [
        Detection((-10.0, -10.0, 30.0, 40.0), 0.9),  # centre inside: kept, clipped
        Detection((0.0, 0.0, 8.0, 8.0), 0.8),  # centre in the border (pad 10): dropped
    ]
    (kept,) = unpadded(dets, 10, 50, 60)
    assert kept.box == (0.0, 0.0, 20.0, 30.0) and kept.landmarks is None


def test_the_pipeline_reports_a_frame_filling_face_as_its_subject():
    pipe = Pipeline.create(embedder="fake", detector="context", device="cpu")
    (r,) = pipe.run([face_only()], subject_only=True)
    assert r.error is None and len(r.faces) == 1 and r.faces[0].is_subject
    assert r.faces[0].embedding is not None and r.faces[0].box == pytest.approx((1, 1, 49, 59))


def test_wrapped_detectors_keep_their_attributes():
    det = create_detector("fake")
    assert isinstance(det.inner, FakeDetector) and det.device == "cpu"
