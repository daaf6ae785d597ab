"""The one pipeline with the fake detector and embedder (no weights): batching, the subject, the
cache, errors, options, and the typed configuration."""

import numpy as np
import pytest
from PIL import Image

from facerec.datasets import Sample
from facerec.detect import Detection, by_prominence, prominence
from facerec.errors import ImageError, InputError
from facerec.image_batch import ImageBatch
from facerec.pipeline import Pipeline, PipelineConfig
from facerec.pipeline.decode import Decoder

from conftest import FAKE_INSTANCES, FakeDetector, person_image


def fake_pipeline(**kw) -> Pipeline:
    # margin 4 of the fake's 32 px crops (32, FaceNet's of 160, would frame the whole image)
    return Pipeline.create(embedder="fake", detector="fake", device="cpu", margin=4, **kw)


def wide(person: int, variant: int = 0) -> np.ndarray:
    """Two 'faces' side by side: the fake detector finds a small one left and the subject right."""
    return np.concatenate([person_image(person, variant), person_image(person + 1, variant)], axis=1)


def test_every_face_with_box_landmarks_score_embedding_and_subject():
    pipe = fake_pipeline()
    (r,) = pipe.run([wide(1)])
    assert r.error is None and len(r.faces) == 2
    subject, bystander = r.faces
    assert subject.is_subject and not bystander.is_subject
    assert subject.box == (64.0, 0.0, 128.0, 64.0)  # the right half: larger and nearer the centre
    assert subject.landmarks.shape == (5, 2) and subject.score == pytest.approx(0.99)
    assert subject.embedding.shape == (16,) and np.linalg.norm(subject.embedding) == pytest.approx(1, abs=1e-5)
    assert not np.allclose(subject.embedding, bystander.embedding)


def test_subject_only_embeds_just_the_subject():
    pipe = fake_pipeline()
    before = sum(f.calls for f in FAKE_INSTANCES)
    (r,) = pipe.run([wide(1)], subject_only=True)
    assert len(r.faces) == 1 and r.faces[0].is_subject and r.faces[0].box == (64.0, 0.0, 128.0, 64.0)
    assert sum(f.calls for f in FAKE_INSTANCES) - before == 1
    full = pipe.run([wide(1)])[0].faces[0]
    np.testing.assert_allclose(r.faces[0].embedding, full.embedding, atol=1e-6)


def test_images_go_through_in_batches_of_one_shape():
    FakeDetector.batches.clear()
    pipe = fake_pipeline(batch_size=4)
    images = [person_image(p, 0) for p in range(6)] + [wide(p) for p in range(3)]
    results = pipe.run(images)
    assert [len(r.faces) for r in results] == [1] * 6 + [2] * 3
    # chunks of at most 4 inputs (4 + 4 + 1), each split by image shape
    assert sorted(FakeDetector.batches) == [1, 2, 2, 4]


def test_bad_inputs_become_named_errors_and_no_face_is_not_an_error(tmp_path):
    good = tmp_path / "ok.png"
    Image.fromarray(person_image(2, 0)).save(good)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    missing = tmp_path / "missing.png"
    black = np.zeros((64, 64, 3), np.uint8)
    results = fake_pipeline().run(
        [
            Sample("good", str(good)),
            Sample("broken", str(broken)),
            Sample("gone", str(missing)),
            Sample("data#3", black),
            Sample("data#4", np.zeros((5, 5), np.float32)),
        ]
    )
    assert results[0].faces and results[0].error is None
    assert "broken.jpg" in results[1].error and not results[1].faces
    assert "missing.png" in results[2].error and "cannot read" in results[2].error
    assert results[3].faces == [] and results[3].error is None
    assert results[4].error.startswith("data#4") and "uint8" in results[4].error


def test_content_cache_skips_detection_and_embedding(tmp_path):
    images = [person_image(p, 1) for p in range(5)]
    first = fake_pipeline(cache_dir=tmp_path).run(images, subject_only=True)
    files = list((tmp_path / "cache").glob("faces_fake_fake_subject_*.npz"))
    assert len(files) == 1
    FakeDetector.batches.clear()
    second_pipe = fake_pipeline(cache_dir=tmp_path)  # a new process would read the same file
    before = sum(f.calls for f in FAKE_INSTANCES)
    again = second_pipe.run(images, subject_only=True)
    assert FakeDetector.batches == [] and sum(f.calls for f in FAKE_INSTANCES) == before
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.faces[0].embedding, b.faces[0].embedding)
        assert a.faces[0].box == pytest.approx(b.faces[0].box) and b.faces[0].is_subject
    # another configuration (flip) has its own faces, but shares the detections: no detector run
    FakeDetector.batches.clear()
    flipped = fake_pipeline(cache_dir=tmp_path, flip=True).run(images, subject_only=True)
    assert len(list((tmp_path / "cache").glob("faces_fake_fake_subject_*.npz"))) == 2
    assert FakeDetector.batches == [] and all(r.faces[0].embedding is not None for r in flipped)
    np.testing.assert_allclose([r.faces[0].box for r in flipped], [r.faces[0].box for r in first], atol=1e-4)
    assert len(list((tmp_path / "cache").glob("detections_fake_*.npz"))) == 1


def test_no_cache_folder_means_no_cache():
    FakeDetector.batches.clear()
    pipe = fake_pipeline()
    pipe.run([person_image(1, 1)])
    pipe.run([person_image(1, 1)])
    assert FakeDetector.batches == [1, 1]


def test_flip_averages_the_mirror_image():
    img = person_image(4, 2)
    plain = fake_pipeline().run([img])[0].faces[0].embedding
    flipped = fake_pipeline(flip=True).run([img])[0].faces[0].embedding
    mirror = fake_pipeline().run([np.ascontiguousarray(img[:, ::-1])])[0].faces[0].embedding
    want = plain + mirror
    np.testing.assert_allclose(flipped, want / np.linalg.norm(want), atol=2e-2)


def test_detect_and_embed_methods():
    pipe = fake_pipeline()
    faces = pipe.detect(wide(2))
    assert len(faces) == 2 and all(f.embedding is None for f in faces) and faces[0].is_subject
    emb = pipe.embed(wide(2))
    assert emb.shape == (2, 16)
    np.testing.assert_allclose(pipe.embed(wide(2), faces=faces[1:]), emb[1:], atol=1e-6)
    assert pipe.embed(np.zeros((40, 40, 3), np.uint8)).shape == (0, 16)
    with pytest.raises(ImageError):
        pipe.detect(b"not an image")


def test_cpu_margin_crops_are_numpy_floats_and_embed_as_their_uint8_crops():
    """On the CPU the margin crop is a float32 NumPy array (no torch): an embedder of uint8 crops
    (the fake) gets it rounded, as crop_for hands it out."""
    pipe = fake_pipeline()
    img = person_image(5, 1)
    face = pipe.detect(img)[0]
    crops = pipe.cropper.crop(ImageBatch([img], "cpu"), [(0, Detection(face.box, face.score))])
    assert isinstance(crops, np.ndarray) and crops.dtype == np.float32 and crops.shape == (1, 3, 32, 32)
    crop = pipe.crop_for(img, face.box)
    assert crop.dtype == np.uint8 and crop.shape == (32, 32, 3)
    np.testing.assert_array_equal(crop, np.clip(np.round(crops[0]), 0, 255).astype(np.uint8).transpose(1, 2, 0))
    np.testing.assert_allclose(pipe.embed_crops(crop[None])[0], pipe.embed(img)[0], atol=1e-6)


def test_options_are_checked():
    with pytest.raises(InputError, match="unknown detector 'hog2'.*mtcnn"):
        Pipeline.create(embedder="fake", detector="hog2", device="cpu")
    # a CUDA device is asked of a full install; torchvision, naming the gpu extra, of a core one
    with pytest.raises(InputError, match="nvjpeg decoder (needs a CUDA|runs on torchvision)"):
        fake_pipeline(decoder="nvjpeg")
    with pytest.raises(InputError, match="decoder must be"):
        fake_pipeline(decoder="libjpeg-turbo")
    with pytest.raises(InputError, match="batch size must be >= 1"):
        fake_pipeline(batch_size=0)
    with pytest.raises(InputError, match="unknown embedder"):
        Pipeline.create(embedder="nope", detector="fake", device="cpu")


def test_only_upright_plain_jpegs_go_to_nvjpeg(tmp_path):
    """nvJPEG ignores EXIF rotation and knows no pixel limit: such files (and progressive or CMYK
    ones) take the PIL path, which rotates them or names the problem. Only the markers are read."""
    from test_jpeg_header import XMP_ROTATED

    dec = Decoder("pil", device="cpu", max_pixels=100 * 100)
    img = Image.new("RGB", (40, 30), (200, 10, 10))
    img.save(tmp_path / "plain.jpg")
    img.convert("L").save(tmp_path / "grey.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    img.save(tmp_path / "rotated.jpg", exif=exif)
    exif[0x0112] = 1
    img.save(tmp_path / "upright_exif.jpg", exif=exif)
    img.convert("CMYK").save(tmp_path / "cmyk.jpg")
    Image.new("RGB", (200, 200)).save(tmp_path / "huge.jpg")
    img.save(tmp_path / "image.png")
    img.save(tmp_path / "xmp_rotated.jpg", xmp=XMP_ROTATED)
    (tmp_path / "truncated.jpg").write_bytes((tmp_path / "plain.jpg").read_bytes()[:20])
    img.save(tmp_path / "progressive.jpg", progressive=True)
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "plain.jpg").read_bytes()[:-40])  # truncated mid-scan
    gpu_ok = {p.name for p in tmp_path.iterdir() if dec._nvjpeg_can(p.read_bytes())}
    assert gpu_ok == {"plain.jpg", "grey.jpg", "upright_exif.jpg"}


def test_subject_rule():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(1, 6))
        x, y, s = rng.uniform(0, 200, n), rng.uniform(0, 200, n), rng.uniform(10, 80, n)
        dets = [Detection((x[i], y[i], x[i] + s[i], y[i] + s[i]), 1.0) for i in range(n)]
        score = prominence(np.array([d.box for d in dets]), 250, 250)
        assert by_prominence(dets, 250, 250)[0] is dets[int(np.argmax(score))]
    # a large bystander at the edge loses to a smaller face in the centre
    edge, centre = Detection((0, 0, 120, 120), 1.0), Detection((95, 95, 155, 155), 1.0)
    assert by_prominence([edge, centre], 250, 250)[0] is centre


def test_config_round_trips_and_refuses_bad_headers():
    cfg = PipelineConfig("fake", "fake-v1", "mtcnn", 32, 32.0, 16, True)
    assert PipelineConfig.from_dict(cfg.to_dict()) == cfg
    old = {"embedder": "fake", "weights_id": "fake-v1", "aligner": "resize", "image_size": 32, "margin": 32, "dim": 16}
    assert PipelineConfig.from_dict(old).detector == "resize" and PipelineConfig.from_dict(old).margin == 32.0
    for bad, msg in (
        ({**old, "margin": "32"}, "margin must be a finite number"),
        ({**old, "margin": float("nan")}, "margin must be a finite number"),
        ({**old, "dim": 0}, "dim must be a positive integer"),
        ({**old, "flip": "yes"}, "flip must be true or false"),
        ({k: v for k, v in old.items() if k != "dim"}, "lacks dim"),
        ("mtcnn", "must be a mapping"),
    ):
        with pytest.raises(InputError, match=msg):
            PipelineConfig.from_dict(bad)
