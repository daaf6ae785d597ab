"""Faces that fill the frame: every detector from ``create_detector`` searches again on a padded
copy where it found nothing (:class:`facerec.detect.padding.PaddedRetry`)."""

from __future__ import annotations

import numpy as np
import pytest

from facerec.detect import Detection, Detector, create_detector, register_detector
from facerec.detect.padding import PAD_GREY, PaddedRetry, merged, pad_px, padded, unpadded
from facerec.image_batch import ImageBatch
from facerec.pipeline import Face, Pipeline

from conftest import FakeDetector


class ContextDetector(Detector):
    """Finds the bright region of an image, as a face with landmarks, only when at least an eighth of
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
            if len(ys) == 0 or min(ys.min(), xs.min(), h - 1 - ys.max(), w - 1 - xs.max()) < max(h, w) / 8:
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


class LooseDetector(ContextDetector):
    """Finds the bright region wherever it is. With room around it, the face's box is the region
    grown by a fifth of its size on every side (the face runs past its bright core); where the
    region comes within 2 px of an edge (no context around it) the box goes wrong, too large and
    shifted down, as MTCNN's box on a tight crop is 1.2 times the crop, mostly past its edges."""

    name = id = "loose"

    def detect(self, batch):
        out = []
        for img in batch.host:
            h, w = img.shape[:2]
            ys, xs = np.nonzero(img.min(axis=2) > 200)
            if len(ys) == 0:
                out.append([])
                continue
            x1, y1, x2, y2 = float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)
            gx, gy = 0.2 * (x2 - x1), 0.2 * (y2 - y1)
            if min(x1, y1, w - x2, h - y2) < 2:
                out.append([Detection((x1 - gx / 2, y1 + gy, x2 + gx / 2, y2 + 2 * gy), 0.9)])
            else:
                out.append([Detection((x1 - gx, y1 - gy, x2 + gx, y2 + gy), 0.9)])
        return out


register_detector("loose", LooseDetector)


def test_a_face_found_but_filling_the_frame_is_searched_again_and_found_whole():
    det = create_detector("loose")
    ((first,),) = det.inner.detect(ImageBatch([face_only()]))
    assert first.box[2] - first.box[0] >= det.fill * 50  # fills the frame: searched again
    ((face,),) = det.detect(ImageBatch([face_only()]))
    assert face.box == pytest.approx((0, 0, 50, 60))  # reported inside the image
    # found whole on the padded copy: the bright core (1, 1, 49, 59) grown by a fifth, past every edge
    assert face.full_box == pytest.approx((1 - 9.6, 1 - 11.6, 49 + 9.6, 59 + 11.6))


def test_faces_with_room_stay_unless_found_again():
    whole = Detection((-5.0, -5.0, 55.0, 65.0), 0.9)
    small, again = Detection((10.0, 10.0, 20.0, 20.0), 0.8), Detection((10.5, 10.0, 20.5, 20.0), 0.85)
    assert merged([small], [whole]) == [whole, small]  # a face with room the padded copy missed stays
    assert merged([small], [whole, again]) == [whole, again]  # found on both passes: once


def test_the_face_that_filled_the_frame_is_replaced_and_kept_when_nothing_better_is_found():
    class Fixed(Detector):
        name = id = "fixed"

        def __init__(self, first, second):
            self.answers = [first, second]

        def detect(self, batch):
            return [self.answers.pop(0)]

    filling, small = Detection((-4.0, 2.0, 54.0, 70.0), 0.9), Detection((30.0, 5.0, 40.0, 15.0), 0.8)
    pad = pad_px(60, 50, 0.3)
    whole = Detection((-6.0 + pad, -6.0 + pad, 56.0 + pad, 66.0 + pad), 0.95)
    (found,) = PaddedRetry(Fixed([filling, small], [whole])).detect(ImageBatch([face_only()]))
    assert [d.score for d in found] == [0.95, 0.8]  # the filling face replaced, the small one kept
    (found,) = PaddedRetry(Fixed([filling, small], [])).detect(ImageBatch([face_only()]))
    assert found == [filling, small]  # nothing on the padded copy: the first pass stands


def test_a_box_past_the_edge_keeps_its_whole_self_and_a_box_inside_has_none():
    (cut, inside) = unpadded(
        [Detection((0.0, 5.0, 40.0, 50.0), 0.9), Detection((12.0, 12.0, 30.0, 30.0), 0.8)], 10, 50, 60
    )
    assert cut.box == (0.0, 0.0, 30.0, 40.0) and cut.full_box == (-10.0, -5.0, 30.0, 40.0)
    assert inside.full_box is None


def test_the_crop_of_a_face_past_the_edge_is_the_crop_of_an_edge_continued_copy():
    """The margin crop of a ``full_box`` face reads the image's edge pixels outside it: the same
    numbers as cropping the box on a copy padded with its edges (what the face was found on)."""
    from facerec.align.croppers import MarginCropper
    from facerec.align.roi_align import roi_align

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (60, 50, 3), np.uint8)
    cropper = MarginCropper(160, 32)
    full = (-8.0, -6.5, 57.3, 66.0)
    (crop,) = cropper.crop(ImageBatch([img]), [(0, Detection((0.0, 0.0, 50.0, 60.0), 0.9, None, full))])
    pad = 40
    big = np.pad(img, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    left, top, right, bottom = (int(v[0]) for v in cropper.regions(np.array([full]) + pad, big.shape[1], big.shape[0]))
    np.testing.assert_allclose(
        crop, roi_align(big, [(left, top, right, bottom)], 160)[0], atol=5e-3
    )  # float32 sampling
    # without the whole box the region is clipped to the image: a different crop
    (clipped,) = cropper.crop(ImageBatch([img]), [(0, Detection((0.0, 0.0, 50.0, 60.0), 0.9))])
    assert np.abs(clipped - crop).mean() > 1


def test_the_device_crop_of_a_face_past_the_edge_matches_the_host_crop():
    torch = pytest.importorskip("torch")  # the device path: the gpu extra
    from facerec.align.croppers import MarginCropper

    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (60, 50, 3), np.uint8)
    faces = [
        (0, Detection((0.0, 0.0, 50.0, 60.0), 0.9, None, (-8.0, -6.5, 57.3, 66.0))),
        (0, Detection((10.0, 12.0, 30.0, 40.0), 0.8)),
    ]
    cropper = MarginCropper(160, 32)
    batch = ImageBatch([img])
    host = cropper.crop(batch, faces)
    # torchvision's roi_align, on the CPU here, on a GPU in use
    regions = cropper.regions_of([d for _, d in faces], 50, 60)
    np.testing.assert_allclose(cropper._crop_device(batch, [0, 0], regions).numpy(), host, atol=1e-3)
    assert torch.is_tensor(cropper._crop_device(batch, [0, 0], regions))


def test_the_pipeline_crops_and_caches_the_whole_face(tmp_path):
    pipe = Pipeline.create(embedder="fake", detector="loose", device="cpu", cache_dir=tmp_path)
    (r,) = pipe.run([face_only()], subject_only=True)
    face = r.faces[0]
    assert face.box == pytest.approx((0, 0, 50, 60)) and face.full_box is not None
    # cut around the whole box: not the crop of the box inside the image
    whole, inside = pipe.embed(face_only(), [face, Face(face.box, face.score)])
    assert np.abs(whole - inside).max() > 1e-3
    np.testing.assert_allclose(whole, face.embedding, atol=1e-6)
    again = Pipeline.create(embedder="fake", detector="loose", device="cpu", cache_dir=tmp_path)

    def no_detection(batch):
        raise AssertionError("the cache answers")

    again.detector.inner.detect = no_detection
    (cached,) = again.run([face_only()], subject_only=True)
    assert cached.faces[0].full_box == pytest.approx(face.full_box)
    np.testing.assert_allclose(cached.faces[0].embedding, face.embedding, atol=1e-6)
