"""Real backends on real LFW images: detectors, croppers, the dlib embedder, VGGFace2 weight loading."""

import numpy as np
import pytest
import torch

from facerec.embed import create_embedder
from facerec.errors import WeightsError
from facerec.images import load_image
from facerec.pipeline import Pipeline

from conftest import lfw_image, require_lfw


@pytest.fixture(scope="module")
def casia_mtcnn():
    return Pipeline.create(embedder="facenet-casia", detector="mtcnn", device="cpu")


@pytest.fixture(scope="module")
def dlib_mtcnn():
    return Pipeline.create(embedder="dlib", detector="mtcnn", device="cpu")


def test_mtcnn_finds_every_face_most_prominent_first(casia_mtcnn):
    require_lfw()
    a = load_image(lfw_image("Colin_Powell", 1))
    b = np.asarray(load_image(lfw_image("Serena_Williams", 1))[::2, ::2])  # half size: the smaller face
    canvas = np.full((250, 600, 3), 128, np.uint8)
    canvas[:, 175:425] = a  # large and central
    canvas[60:185, 460:585] = b  # small, at the edge
    (r,) = casia_mtcnn.run([canvas])
    faces = r.faces
    assert len(faces) == 2 and faces[0].is_subject and not faces[1].is_subject
    assert 175 <= faces[0].box[0] and faces[0].box[2] <= 425 and faces[1].box[0] >= 450  # Powell, then Williams
    assert all(f.embedding.shape == (512,) for f in faces) and faces[0].landmarks.shape == (5, 2)
    # the bystander's embedding is not Powell's
    assert np.linalg.norm(faces[0].embedding - faces[1].embedding) > 1.0


def test_no_face_is_reported_not_replaced(casia_mtcnn):
    blank = np.full((200, 200, 3), 90, np.uint8)
    assert casia_mtcnn.run([blank])[0].faces == []


def test_large_photo_detected_on_downscaled_copy_but_cropped_full_res(casia_mtcnn):
    require_lfw()
    from PIL import Image

    face = load_image(lfw_image("Colin_Powell", 1))
    big = np.asarray(Image.fromarray(face).resize((2500, 2500)))
    (faces,) = [r.faces for r in casia_mtcnn.run([big])]
    assert len(faces) == 1
    x1, y1, x2, y2 = faces[0].box
    assert 600 < x1 < 1000 and 1500 < x2 < 2000  # box in full-resolution coordinates
    small = casia_mtcnn.run([face])[0].faces[0]
    assert float(faces[0].embedding @ small.embedding) > 0.95  # the same face, cut at full resolution


def test_resize_takes_whole_image():
    pipe = Pipeline.create(embedder="facenet-casia", detector="resize", device="cpu")
    (faces,) = [r.faces for r in pipe.run([np.zeros((250, 200, 3), np.uint8)])]
    assert len(faces) == 1 and faces[0].box == (0.0, 0.0, 200.0, 250.0) and faces[0].embedding.shape == (512,)


def test_dlib_embedder_with_its_own_alignment(dlib_mtcnn):
    require_lfw()
    imgs = [
        load_image(lfw_image(p, n))
        for p, n in [("Colin_Powell", 1), ("Colin_Powell", 2), ("Serena_Williams", 1), ("Serena_Williams", 2)]
    ]
    e = np.stack([r.faces[0].embedding for r in dlib_mtcnn.run(imgs)])
    assert e.shape == (4, 128) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1, atol=1e-5)
    d = lambda i, j: np.linalg.norm(e[i] - e[j])  # noqa: E731
    assert max(d(0, 1), d(2, 3)) < min(d(0, 2), d(0, 3), d(1, 2), d(1, 3))


def test_batched_mtcnn_matches_the_reference_detector_and_embeddings(casia):
    """The default detector (batched tensor MTCNN) against facenet-pytorch's own on 19 LFW images:
    the same subject boxes, and embeddings that agree; bad files are named."""
    paths = [str(p) for p in sorted(require_lfw().glob("*/*.jpg"))[::700]]
    fast = Pipeline.create(embedder=casia, detector="mtcnn", device="cpu", batch_size=8).run(paths, subject_only=True)
    ref = Pipeline.create(embedder=casia, detector="mtcnn-reference", device="cpu").run(paths, subject_only=True)
    assert all(r.faces for r in fast) and all(r.faces for r in ref)
    for a, b in zip(fast, ref):
        assert _iou(a.faces[0].box, b.faces[0].box) > 0.9
    cos = np.array([float(a.faces[0].embedding @ b.faces[0].embedding) for a, b in zip(fast, ref)])
    assert cos.min() > 0.97 and cos.mean() > 0.99, cos


def _iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def test_casia_embeddings_are_unit_float32(casia):
    e = casia.embed(np.random.default_rng(0).integers(0, 255, (3, 160, 160, 3), dtype=np.uint8))
    assert e.dtype == np.float32 and e.shape == (3, 512)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1, atol=1e-5)


def test_vggface2_offline_error_names_the_remedies(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def no_network(*a, **k):
        raise OSError("Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(WeightsError) as exc:
        create_embedder("facenet-vggface2", device="cpu")
    msg = str(exc.value)
    assert "weights file" in msg and "TORCH_HOME" in msg and "facenet-casia" in msg and str(tmp_path) in msg


def test_vggface2_loads_a_state_dict_from_weights_or_torch_cache(tmp_path, monkeypatch, casia):
    """The download path's loader, fed a real InceptionResnetV1 state dict (the CASIA one)."""
    state = {k: v.clone() for k, v in casia.state_dict().items()}
    state["logits.weight"] = torch.zeros(8631, 512)  # the VGGFace2 checkpoint carries a classifier
    state["logits.bias"] = torch.zeros(8631)
    path = tmp_path / "w.pt"
    torch.save(state, path)
    crops = np.random.default_rng(1).integers(0, 255, (2, 160, 160, 3), dtype=np.uint8)
    vgg = create_embedder("facenet-vggface2", weights=str(path), device="cpu")
    np.testing.assert_allclose(vgg.embed(crops), casia.embed(crops), atol=1e-5)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    path.rename(tmp_path / "checkpoints" / "20180402-114759-vggface2.pt")
    cached = create_embedder("facenet-vggface2", device="cpu")
    np.testing.assert_allclose(cached.embed(crops), casia.embed(crops), atol=1e-5)
    with pytest.raises(WeightsError, match="no such file"):
        create_embedder("facenet-vggface2", weights=str(tmp_path / "missing.pt"))


def test_no_face_fallback_gives_dlib_its_own_chip(tmp_path):
    """An LFW-style image where no face is detected: dlib is given a landmark chip from a centred
    box (as dlib's own LFW test does), not a plain resize; it is counted as a fallback."""
    from PIL import Image

    from facerec.datasets import Sample
    from facerec.evaluate.common import _central_face, embed_paths

    face = np.asarray(Image.open(lfw_image("Colin_Powell", 1)).convert("RGB"))
    path = tmp_path / "face_hidden.png"
    Image.fromarray(face).save(path)
    pipe = Pipeline.create(embedder="dlib", detector="dlib", device="cpu")
    pipe.detector.detect = lambda batch: [[] for _ in range(len(batch))]  # the detector misses it
    chip = _central_face(pipe, Sample(str(path), str(path)))
    assert chip.shape == (150, 150, 3)
    got = embed_paths(pipe, [str(path)])
    assert got.fallback.tolist() == [True] and abs(np.linalg.norm(got.embeddings[0]) - 1) < 1e-5
    # the chip is aligned like a detected face: close to the embedding of the detected face
    detected = Pipeline.create(embedder="dlib", detector="dlib", device="cpu").run([str(path)])[0].faces[0].embedding
    assert np.linalg.norm(got.embeddings[0] - detected) < 0.1  # a plain central resize: 0.39


def test_cascade_takes_hog_faces_and_mtcnn_where_hog_finds_none():
    """--align dlib+mtcnn: dlib's HOG boxes where HOG finds a face; MTCNN's on a face HOG misses."""
    from facerec.detect import create_detector
    from facerec.image_batch import ImageBatch

    found = load_image(lfw_image("Colin_Powell", 1))
    missed = load_image(lfw_image("Billy_Andrade", 1))  # turned face: HOG finds nothing
    # the detectors alone: the retry on a padded copy (tests/test_padded_retry.py) would let HOG find
    # the turned face the cascade is about
    hog, mtcnn, cascade = (create_detector(n, device="cpu", pad_misses=False) for n in ("dlib", "mtcnn", "dlib+mtcnn"))
    assert hog.detect(ImageBatch([missed])) == [[]]
    got = cascade.detect(ImageBatch([found, missed]))
    assert [d.box for d in got[0]] == [d.box for d in hog.detect(ImageBatch([found]))[0]]
    assert len(got[1]) >= 1 and [d.box for d in got[1]] == [d.box for d in mtcnn.detect(ImageBatch([missed]))[0]]
    assert cascade.id not in (hog.id, mtcnn.id)  # its own cache entries


@pytest.mark.parametrize("detector", ["mtcnn", "mtcnn-reference", "dlib", "dlib+mtcnn", "yunet"])
def test_images_smaller_than_a_face_are_no_face_never_a_crash(detector):
    from facerec.detect import create_detector
    from facerec.image_batch import ImageBatch

    det = create_detector(detector, device="cpu")
    for h, w in ((1, 1), (5, 5), (11, 40), (19, 19), (15, 300)):
        assert det.detect(ImageBatch([np.full((h, w, 3), 128, np.uint8)])) == [[]], (detector, h, w)


def test_a_tiny_file_in_a_folder_does_not_stop_infer(tmp_path, capsys):
    """facerec infer over a folder with a 12x12 image and a real face: both reported, exit 0."""
    from PIL import Image

    from facerec.api import train
    from facerec.cli import main

    people = tmp_path / "people"
    for person in ("Colin_Powell", "Tony_Blair", "Serena_Williams"):
        (people / person).mkdir(parents=True)
        for n in (1, 2, 3):
            (people / person / f"{n}.jpg").symlink_to(lfw_image(person, n))
    train(people, embedder="facenet-casia", device="cpu", model_path=tmp_path / "m.npz")
    probe = tmp_path / "probe"
    probe.mkdir()
    Image.new("RGB", (12, 12), (90, 90, 90)).save(probe / "tiny.png")
    (probe / "powell.jpg").symlink_to(lfw_image("Colin_Powell", 5))
    code = main(["infer", "--input", str(probe), "--model", str(tmp_path / "m.npz"), "--art_dir", str(tmp_path / "a")])
    out = capsys.readouterr().out
    assert code == 0 and "tiny.png: no face found" in out and "Colin_Powell" in out
