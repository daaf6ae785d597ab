"""Real backends on real LFW images: aligners, the dlib embedder, VGGFace2 weight loading."""

import numpy as np
import pytest
import torch

from facerec.align import create_aligner
from facerec.embed import create_embedder
from facerec.errors import WeightsError
from facerec.images import load_image

from conftest import lfw_image, require_lfw

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def mtcnn_margin():
    return create_aligner("mtcnn", crop="margin", size=160, margin=32, device="cpu")


def test_mtcnn_finds_every_face_most_prominent_first(mtcnn_margin):
    require_lfw()
    a = load_image(lfw_image("Colin_Powell", 1))
    b = np.asarray(load_image(lfw_image("Serena_Williams", 1))[::2, ::2])  # half size: the smaller face
    canvas = np.full((250, 600, 3), 128, np.uint8)
    canvas[:, 175:425] = a  # large and central
    canvas[60:185, 460:585] = b  # small, at the edge
    (faces,) = mtcnn_margin.align([canvas])
    assert len(faces) == 2
    assert 175 <= faces[0].box[0] and faces[0].box[2] <= 425 and faces[1].box[0] >= 450  # Powell, then Williams
    assert all(f.crop.shape == (160, 160, 3) and f.crop.dtype == np.uint8 for f in faces)
    assert faces[0].landmarks.shape == (5, 2)


def test_no_face_is_reported_not_replaced(mtcnn_margin):
    blank = np.full((200, 200, 3), 90, np.uint8)
    assert mtcnn_margin.align([blank]) == [[]]


def test_large_photo_detected_on_downscaled_copy_but_cropped_full_res(mtcnn_margin):
    require_lfw()
    from PIL import Image

    big = np.asarray(Image.fromarray(load_image(lfw_image("Colin_Powell", 1))).resize((2500, 2500)))
    (faces,) = mtcnn_margin.align([big])
    assert len(faces) == 1
    x1, y1, x2, y2 = faces[0].box
    assert 600 < x1 < 1000 and 1500 < x2 < 2000  # box in full-resolution coordinates


def test_resize_aligner_takes_whole_image():
    aligner = create_aligner("resize", crop="margin", size=160)
    (faces,) = aligner.align([np.zeros((250, 200, 3), np.uint8)])
    assert len(faces) == 1 and faces[0].box == (0.0, 0.0, 200.0, 250.0) and faces[0].crop.shape == (160, 160, 3)


def test_dlib_embedder_with_its_own_alignment():
    require_lfw()
    emb = create_embedder("dlib")
    aligner = create_aligner("mtcnn", crop="dlib-chip", size=150)
    imgs = [
        load_image(lfw_image(p, n))
        for p, n in [("Colin_Powell", 1), ("Colin_Powell", 2), ("Serena_Williams", 1), ("Serena_Williams", 2)]
    ]
    crops = np.stack([faces[0].crop for faces in aligner.align(imgs)])
    assert crops.shape == (4, 150, 150, 3)
    e = emb.embed(crops)
    assert e.shape == (4, 128) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1, atol=1e-5)
    d = lambda i, j: np.linalg.norm(e[i] - e[j])  # noqa: E731
    assert max(d(0, 1), d(2, 3)) < min(d(0, 2), d(0, 3), d(1, 2), d(1, 3))


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
    assert "--weights FILE" in msg and "TORCH_HOME" in msg and "facenet-casia" in msg and str(tmp_path) in msg


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


def test_detections_are_shared_between_embedders(tmp_path):
    """MTCNN runs once per image: a second embedder on the same art_dir reuses the detections."""
    from facerec.datasets import Sample
    from facerec.pipeline import FacePipeline

    require_lfw()
    samples = [Sample(str(lfw_image("Colin_Powell", n)), str(lfw_image("Colin_Powell", n))) for n in (1, 2, 3)]
    first = FacePipeline.create(embedder="dlib", align="mtcnn", device="cpu", art_dir=str(tmp_path))
    a = first.run(samples)
    second = FacePipeline.create(embedder="dlib", align="mtcnn", device="cpu", art_dir=str(tmp_path), flip=True)

    def must_not_detect(images):
        raise AssertionError("detector ran again")

    second.aligner.detect = must_not_detect
    b = second.run(samples)
    assert [len(r.faces) for r in b] == [1, 1, 1]
    assert [r.faces[0].box for r in a] == [r.faces[0].box for r in b]
    # flip changes the embedding, but only slightly for a face
    for ra, rb in zip(a, b):
        assert 0 < np.linalg.norm(ra.faces[0].embedding - rb.faces[0].embedding) < 0.3


def test_no_face_fallback_gives_dlib_its_own_chip(tmp_path):
    """An LFW-style image where no face is detected: dlib is given a landmark chip from a centred
    box (as dlib's own LFW test does), not a plain resize; it is counted as a fallback."""
    from PIL import Image

    from facerec.datasets import Sample
    from facerec.evaluate.common import _central_face, embed_paths
    from facerec.pipeline import FacePipeline

    face = np.asarray(Image.open(lfw_image("Colin_Powell", 1)).convert("RGB"))
    path = tmp_path / "face_hidden.png"
    Image.fromarray(face).save(path)
    pipe = FacePipeline.create(embedder="dlib", align="dlib", device="cpu", art_dir=None)
    pipe.aligner.detect = lambda images: [[] for _ in images]  # the detector misses it
    chip = _central_face(pipe, Sample(str(path), str(path)))
    assert chip.shape == (150, 150, 3)
    got = embed_paths(pipe, [str(path)])
    assert got.fallback.tolist() == [True] and abs(np.linalg.norm(got.embeddings[0]) - 1) < 1e-5
    # the chip is aligned like a detected face: close to the embedding of the detected face
    detected = (
        FacePipeline.create(embedder="dlib", align="dlib", device="cpu", art_dir=None)
        .run([Sample(str(path), str(path))], quiet=True)[0]
        .faces[0]
        .embedding
    )
    assert np.linalg.norm(got.embeddings[0] - detected) < 0.1  # a plain central resize: 0.39


def test_cascade_takes_hog_faces_and_mtcnn_where_hog_finds_none():
    """--align dlib+mtcnn: dlib's HOG boxes where HOG finds a face; MTCNN's on a face HOG misses."""
    from facerec.align import create_aligner
    from facerec.images import load_image

    found = load_image(lfw_image("Colin_Powell", 1))
    missed = load_image(lfw_image("Billy_Andrade", 1))  # turned face: HOG finds nothing
    hog = create_aligner("dlib", crop="dlib-chip", size=150)
    mtcnn = create_aligner("mtcnn", crop="dlib-chip", size=150)
    cascade = create_aligner("dlib+mtcnn", crop="dlib-chip", size=150)
    assert hog.detect([missed]) == [[]]
    got = cascade.detect([found, missed])
    assert [d.box for d in got[0]] == [d.box for d in hog.detect([found])[0]]
    assert len(got[1]) >= 1 and [d.box for d in got[1]] == [d.box for d in mtcnn.detect([missed])[0]]
    assert cascade.detector_id not in (hog.detector_id, mtcnn.detector_id)  # its own detection cache
