"""YuNet on real LFW images: its boxes agree with MTCNN's, its landmarks are in MTCNN's order,
5-point alignment from them verifies LFW pairs, and its model file is found (or refused) by the
rules of :mod:`facerec.runtime.weights`. The model comes from ``$FACEREC_MODELS`` (conftest points it at
``../shared/models/yunet``)."""

import json

import numpy as np
import pytest

from facerec.cli import main
from facerec.detect import box_iou, create_detector
from facerec.image_batch import ImageBatch
from facerec.images import load_image
from facerec.pipeline import Pipeline

from conftest import LFW_DIR, LFW_HOME, SHARED_DATA, require_lfw


@pytest.fixture(scope="module")
def lfw_sample():
    """40 LFW images of 40 people (every 100th folder), the subject in the middle."""
    require_lfw()
    folders = sorted(d for d in LFW_DIR.iterdir() if d.is_dir())[::100][:40]
    return [load_image(sorted(d.glob("*.jpg"))[0]) for d in folders]


def test_yunet_agrees_with_mtcnn_and_its_landmarks_are_in_mtcnn_order(lfw_sample):
    from facerec.detect import by_prominence

    yunet, mtcnn = create_detector("yunet"), create_detector("mtcnn")
    agree = 0
    for image in lfw_sample:
        (found,) = yunet.detect(ImageBatch([image]))
        (ref,) = mtcnn.detect(ImageBatch([image]))
        assert found, "YuNet found no face in an LFW image"
        face = by_prominence(found, image.shape[1], image.shape[0])[0]
        x1, y1, x2, y2 = face.box
        marks = face.landmarks
        assert marks.shape == (5, 2) and 0.7 <= face.score <= 1.0
        assert ((marks >= [x1, y1]) & (marks <= [x2, y2])).all(), "a landmark outside its box"
        left_eye, right_eye, nose, mouth_l, mouth_r = marks
        assert left_eye[0] < right_eye[0] and mouth_l[0] < mouth_r[0]
        assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_l[1], mouth_r[1])
        agree += box_iou(face.box, by_prominence(ref, image.shape[1], image.shape[0])[0].box) >= 0.5
    assert agree >= len(lfw_sample) - 1  # the 99% on LFW, at this sample's size
    assert yunet.id.startswith("yunet-2026may") and yunet.id != mtcnn.id


def street_frames(n: int, every: int) -> list[np.ndarray]:
    """Every ``every``-th of the first frames of the shared 1080p street video, RGB."""
    import cv2

    path = SHARED_DATA / "video" / "video.mp4"
    if not path.is_file():
        pytest.skip(f"{path} is missing (../shared/data/README.md)")
    cap, frames, i = cv2.VideoCapture(str(path)), [], 0
    while len(frames) < n:
        ok, frame = cap.read()
        assert ok, f"{path}: fewer than {n * every} frames"
        if i % every == 0:
            frames.append(np.ascontiguousarray(frame[..., ::-1]))
        i += 1
    return frames


def test_batched_yunet_finds_what_opencvs_yunet_finds(lfw_sample):
    """``yunet`` (batches on ONNX Runtime, our decoding) against ``cv2.FaceDetectorYN`` on LFW,
    the group photo and 1080p street frames (searched at 1600 wide): the same faces in the same
    order, boxes and landmarks within 1e-3 pixel (measured: 1.2e-4 on 1,000 LFW images and 1080p
    frames)."""
    group = load_image(SHARED_DATA / "video" / "multiface.jpg")
    batches = [ImageBatch(lfw_sample), ImageBatch([group]), ImageBatch(street_frames(3, 20))]
    ours, opencv = create_detector("yunet"), create_detector("yunet-opencv")
    assert ours.id == opencv.id  # the same faces, so the same cache entries
    got = [f for b in batches for f in ours.detect(b)]
    want = [f for b in batches for f in opencv.detect(b)]
    counts = [len(f) for f in want]
    assert [len(f) for f in got] == counts
    assert min(counts[: len(lfw_sample)]) >= 1 and counts[len(lfw_sample)] >= 5 and max(counts[-3:]) >= 2
    for mine, ref in zip(got, want):
        for a, b in zip(mine, ref):
            assert np.abs(np.subtract(a.box, b.box)).max() < 1e-3
            assert np.abs(a.landmarks - b.landmarks).max() < 1e-3 and abs(a.score - b.score) < 1e-5
    # one image at a time gives what the batch gave
    for image, faces in zip(batches[2].images, got[-3:]):
        (alone,) = ours.detect(ImageBatch([image]))
        assert [d.box for d in alone] == [d.box for d in faces]


def test_yunet_nms_keeps_the_best_of_overlapping_boxes():
    from facerec.detect.yunet_net import greedy_nms

    rects = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 5, 5], [0, 0, 0, 0], [50, 50, 0, 0]], np.int32)
    # IoU(0, 1) = 81 / 119 = 0.68: suppressed; two empty rects count as the same box (cv::NMSBoxes)
    assert greedy_nms(rects, 0.3).tolist() == [0, 2, 3]
    assert greedy_nms(rects, 0.7).tolist() == [0, 1, 2, 3]
    assert greedy_nms(rects[:0], 0.3).tolist() == []


def test_onet_frames_yunets_faces_as_mtcnn_does(lfw_sample):
    """yunet+onet keeps YuNet's faces, scores and landmarks and moves each box towards MTCNN's."""
    from facerec.detect import by_prominence

    yunet, reframed, mtcnn = create_detector("yunet"), create_detector("yunet+onet"), create_detector("mtcnn")
    before, after = [], []
    for image in lfw_sample:
        batch = ImageBatch([image])
        (plain,), (moved,), (ref,) = yunet.detect(batch), reframed.detect(batch), mtcnn.detect(batch)
        assert [d.score for d in moved] == [d.score for d in plain]
        for a, b in zip(plain, moved):
            assert np.array_equal(a.landmarks, b.landmarks) and a.box != b.box
        h, w = image.shape[:2]
        subject = by_prominence(ref, w, h)[0].box
        before.append(box_iou(by_prominence(plain, w, h)[0].box, subject))
        after.append(box_iou(by_prominence(moved, w, h)[0].box, subject))
    # measured on 600 LFW images: median IoU with MTCNN's subject box 0.90 before, 0.93 after
    assert np.median(after) > np.median(before) + 0.015 and np.median(after) > 0.92
    assert reframed.inner.id == yunet.inner.id + "-onet-onnx"


def test_reframing_keeps_a_box_outside_its_image():
    from facerec.detect.mtcnn_net import BatchedMTCNN

    image = np.full((100, 120, 3), 128, np.uint8)
    boxes = [(200.0, 200.0, 260.0, 270.0), (20.0, 10.0, 80.0, 90.0)]
    out = BatchedMTCNN().reframe([image, image], boxes)
    assert out.dtype == np.float32 and out.shape == (2, 4)
    assert tuple(out[0]) == boxes[0]  # nothing of it inside the image: as it was
    assert np.isfinite(out[1]).all() and tuple(out[1]) != boxes[1]
    assert BatchedMTCNN().reframe([], np.zeros((0, 4))).shape == (0, 4)


def test_yunet_pipeline_fills_in_every_face_field(lfw_sample):
    pipe = Pipeline.create(embedder="facenet-casia", detector="yunet", device="cpu")
    results = pipe.run(lfw_sample[:4], subject_only=True)
    for r in results:
        (face,) = r.faces
        assert face.is_subject and face.landmarks.shape == (5, 2)
        assert face.embedding.shape == (512,) and abs(np.linalg.norm(face.embedding) - 1) < 1e-4


def test_dlib_with_yunet_landmarks_verifies_lfw_pairs(tmp_path):
    """20 matched + 20 mismatched pairs of pairs.txt's first fold, dlib's default threshold, the
    face aligned by YuNet's own five points (no dlib landmark model)."""
    from facerec.datasets import Sample
    from facerec.embed import get_spec
    from facerec.evaluate.pairs import read_pairs
    from facerec.gallery.calibration import Calibration
    from facerec.gallery.verify import verify_results

    pairs = read_pairs(LFW_HOME / "pairs.txt", require_lfw())
    chosen = [p for p in pairs if p.same][:20] + [p for p in pairs if not p.same][:20]
    pipe = Pipeline.create(embedder="dlib", detector="yunet", alignment="five-point", device="cpu")
    cal = Calibration(get_spec("dlib").default_threshold, "default")
    agree = sum(
        verify_results(pipe.run([Sample(p.a, p.a)]), pipe.run([Sample(p.b, p.b)]), cal).same == p.same for p in chosen
    )
    print(f"dlib + yunet five-point verify: {agree}/40")
    assert agree >= 38


def test_weights_dir_and_the_offline_message(tmp_path, monkeypatch, capsys):
    """--weights-dir names the folder; with no copy anywhere and no network the command says
    where it looked and what to do, and exits 2."""
    import os

    shared = os.environ["FACEREC_MODELS"]
    monkeypatch.delenv("FACEREC_MODELS")
    monkeypatch.setenv("FACEREC_HOME", str(tmp_path / "home"))
    a = str(sorted((require_lfw() / "Colin_Powell").glob("*.jpg"))[0])
    b = str(sorted((require_lfw() / "Colin_Powell").glob("*.jpg"))[1])
    args = ["verify", a, b, "--embedder", "facenet-casia", "--align", "yunet", "--format", "json"]

    def offline(url):
        raise OSError("no route to host")

    monkeypatch.setattr("facerec.runtime.weights._download", offline)
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "face_detection_yunet_2026may.onnx is not in" in err and "--weights-dir" in err and "no route" in err
    assert main([*args, "--weights-dir", shared]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["same"] is True


def test_yunet_in_pytorch_finds_what_onnx_runtime_finds(lfw_sample, tmp_path, monkeypatch):
    """The GPU's path (YuNet's graph converted to PyTorch, the batch as one tensor), run here on the
    CPU: the same faces as the ONNX Runtime path; the conversion is cached by the model's hash, and
    a damaged one is made anew."""
    from facerec.detect.yunet import YuNetDetector

    monkeypatch.setenv("FACEREC_HOME", str(tmp_path))
    torch_path = YuNetDetector(runtime="torch")
    (converted,) = (tmp_path / "weights").glob("face_detection_yunet_2026may-ebafce4e3c11.torch*.npz")
    ours = create_detector("yunet")
    for batch in (ImageBatch(lfw_sample[:16]), ImageBatch(street_frames(2, 30))):
        got, want = torch_path.detect(batch), ours.detect(batch)
        assert [len(f) for f in got] == [len(f) for f in want] and min(len(f) for f in want) >= 1
        for mine, ref in zip(got, want):
            for a, b in zip(mine, ref):
                assert np.abs(np.subtract(a.box, b.box)).max() < 1e-2 and abs(a.score - b.score) < 1e-4
                assert np.abs(a.landmarks - b.landmarks).max() < 1e-2
    stamp = converted.stat().st_mtime_ns
    YuNetDetector(runtime="torch")  # the second one loads the cached conversion
    assert converted.stat().st_mtime_ns == stamp
    converted.write_bytes(b"damaged")
    again = YuNetDetector(runtime="torch")
    assert converted.stat().st_size > 100_000
    assert [d.box for d in again.detect(ImageBatch(lfw_sample[:2]))[0]] == [
        d.box for d in torch_path.detect(ImageBatch(lfw_sample[:2]))[0]
    ]


def test_yunet_in_pytorch_with_a_cache_it_cannot_write(lfw_sample, tmp_path, monkeypatch):
    from facerec.detect.yunet import YuNetDetector

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("FACEREC_HOME", str(blocker / "home"))  # mkdir fails: NotADirectoryError
    (faces,) = YuNetDetector(runtime="torch").detect(ImageBatch(lfw_sample[:1]))
    assert len(faces) >= 1
