"""5-point alignment, fused embedders and model-file fetching, without model weights: the
similarity transform, the five-point cropper and its fallback, ``A+B`` naming and weights, the
fused vector's geometry, and the download/hash rules of :mod:`facerec.runtime.weights`."""

import hashlib
import math

import numpy as np
import pytest

from facerec.align.croppers import FivePointCropper, MarginCropper, create_cropper, to_uint8
from facerec.align.five_point import TEMPLATES, similarity, template_for, warp
from facerec.detect import Detection
from facerec.embed import Embedder, EmbedderSpec, get_spec, register_embedder
from facerec.embed.base import l2_normalize
from facerec.embed.fused import FusedEmbedder, parse_parts
from facerec.errors import InputError, WeightsError
from facerec.image_batch import ImageBatch
from facerec.pipeline import Pipeline, PipelineConfig
from facerec.runtime.weights import ModelFile, model_path

from conftest import person_image

# A second fake embedder that sees the crop differently (row and column profiles), so that a
# fused fake+fake2 differs from either part.
FAKE2 = EmbedderSpec(
    name="fake2",
    dim=8,
    input_size=32,
    crop="margin",
    weights_id="fake2-v1",
    default_threshold=0.7,
    description="second deterministic test embedder",
)


class RowsEmbedder(Embedder):
    spec = FAKE2

    def embed(self, crops):
        x = self._check_crops(crops).astype(np.float32) / 255.0
        rows = x.mean(axis=(2, 3)).reshape(len(x), 4, 8).mean(2)
        cols = x.mean(axis=(1, 3)).reshape(len(x), 4, 8).mean(2)
        return l2_normalize(np.concatenate([rows, cols], 1) - 0.45)


register_embedder(FAKE2, lambda spec, *, weights=None, device="auto": RowsEmbedder())


# -- the similarity transform and the warp ------------------------------------------------------


def test_similarity_recovers_a_known_rotation_scale_and_shift():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    angle, scale, shift = math.radians(23), 1.37, np.array([12.5, -4.0])
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    dst = scale * src @ rot.T + shift
    m = similarity(src, dst)
    np.testing.assert_allclose(m[:, :2], scale * rot, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], shift, atol=1e-7)
    # a mirror image is not a similarity: the best fit keeps the orientation (det > 0)
    mirrored = similarity(src, src * [-1, 1])
    assert np.linalg.det(mirrored[:, :2]) > 0


def test_warp_puts_the_landmarks_on_the_template():
    """A dot drawn at each landmark of a tilted, scaled face lands on its template point."""
    import cv2

    template = template_for("dlib-chip", 150)
    angle = math.radians(-15)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    marks = (template - 75) @ rot.T * 1.6 + [160, 140]
    image = np.zeros((300, 320, 3), np.uint8)
    for x, y in marks:
        cv2.circle(image, (round(x), round(y)), 3, (255, 255, 255), -1)
    chip = warp(image, marks, template, 150)
    assert chip.shape == (150, 150, 3)
    for tx, ty in template:
        patch = chip[round(ty) - 1 : round(ty) + 2, round(tx) - 1 : round(tx) + 2]
        assert patch.mean() > 150, (tx, ty)
    assert chip.mean() < 30  # and the rest stays dark: nothing else was drawn


def test_templates_are_symmetric_faces():
    for style, (side, pts) in TEMPLATES.items():
        left_eye, right_eye, nose, mouth_l, mouth_r = pts
        assert left_eye[0] < nose[0] < right_eye[0] and mouth_l[0] < mouth_r[0], style
        assert left_eye[1] == right_eye[1] and left_eye[1] < nose[1] < mouth_l[1], style
        assert math.isclose(left_eye[0] + right_eye[0], 2 * nose[0], abs_tol=1e-3), style
        assert 0 < pts.min() and pts.max() < side
    np.testing.assert_allclose(template_for("margin", 80), TEMPLATES["margin"][1] / 2)


def test_five_point_cropper_warps_faces_with_landmarks_and_box_crops_the_rest():
    image = person_image(3, 0, size=96)
    batch = ImageBatch([image], "cpu")
    box = (10.0, 12.0, 80.0, 86.0)
    template = template_for("margin", 32)
    # landmarks that already sit where the 32 px template wants them, scaled up 3x
    marks = template * 3
    cropper = create_cropper("margin", size=32, margin=32 * 32 / 160, alignment="five-point")
    assert isinstance(cropper, FivePointCropper)
    warped, plain = cropper.crop(batch, [(0, Detection(box, 0.9, marks)), (0, Detection(box, 0.9, None))])
    np.testing.assert_array_equal(warped, warp(image, marks, cropper.template, 32))
    expected = MarginCropper(32, 32 * 32 / 160).crop(batch, [(0, Detection(box, 0.9, None))])
    expected = to_uint8(expected)[0]
    np.testing.assert_array_equal(plain, expected)
    with pytest.raises(InputError, match="no five-point template"):
        create_cropper("whole", size=32, margin=0, alignment="five-point")


def test_margin_template_follows_the_margin():
    """A wider margin shows more around the face: the template shrinks about the crop's centre."""
    tight = FivePointCropper("margin", 160, 0, None).template
    default = FivePointCropper("margin", 160, 32, None).template
    wide = FivePointCropper("margin", 160, 64, None).template
    np.testing.assert_allclose(default, TEMPLATES["margin"][1], atol=1e-4)
    eyes = [t[1, 0] - t[0, 0] for t in (tight, default, wide)]
    assert eyes[0] > eyes[1] > eyes[2]


def test_alignment_is_part_of_the_configuration():
    pipe = Pipeline.create(embedder="fake", detector="fake", device="cpu", margin=4, alignment="five-point")
    assert pipe.config.alignment == "five-point" and isinstance(pipe.cropper, FivePointCropper)
    box = PipelineConfig("fake", "fake-v1", "fake", 32, 4.0, 16)
    five = PipelineConfig("fake", "fake-v1", "fake", 32, 4.0, 16, alignment="five-point")
    assert box.cache_key() != five.cache_key()
    assert PipelineConfig.from_dict(five.to_dict()) == five
    assert "alignment" not in box.cache_key()  # caches made before alignment existed stay valid
    with pytest.raises(InputError, match="alignment"):
        PipelineConfig("fake", "fake-v1", "fake", 32, 4.0, 16, alignment="three-point")
    a, b = (
        Pipeline.create(embedder="fake", detector="fake", device="cpu", margin=4, alignment=al)
        for al in ("box", "five-point")
    )
    (ra,), (rb,) = a.run([person_image(1, 0)]), b.run([person_image(1, 0)])
    assert not np.allclose(ra.faces[0].embedding, rb.faces[0].embedding)  # the crops differ


# -- fused embedders ----------------------------------------------------------------------------


def test_parse_parts_weights_and_errors():
    assert [(p.name, p.weight) for p in parse_parts("fake+fake2")] == [("fake", 0.5), ("fake2", 0.5)]
    parts = parse_parts("fake*0.3+fake2")
    assert [p.name for p in parts] == ["fake", "fake2"] and math.isclose(parts[1].weight, 0.7)
    assert math.isclose(sum(p.weight for p in parse_parts("a+b+c")), 1.0)
    for bad, message in [
        ("fake", "A\\+B"),
        ("fake+", "A\\+B"),
        ("fake+fake", "twice"),
        ("fake*x+fake2", "not a number"),
        ("fake*1.5+fake2", "between 0 and 1"),
        ("fake*0.5+fake2*0.4", "sum to 1"),
    ]:
        with pytest.raises(InputError, match=message):
            parse_parts(bad)
    with pytest.raises(InputError, match="unknown embedder 'nosuch'"):
        get_spec("fake+nosuch")


def test_fused_spec_sums_dimensions_and_combines_thresholds():
    spec = get_spec("fake*0.25+fake2")
    assert spec.dim == 16 + 8 and spec.crop == "fused" and spec.parts == (("fake", 0.25), ("fake2", 0.75))
    assert spec.weights_id == "fake-v1*0.25+fake2-v1*0.75"  # another weight is another model
    assert math.isclose(spec.default_threshold, math.sqrt(0.25 * 0.5**2 + 0.75 * 0.7**2))


def test_fused_vector_is_unit_and_its_squared_distance_is_the_weighted_sum():
    w = 0.3
    fused = Pipeline.create(embedder=f"fake*{w}+fake2", detector="fake", device="cpu", margin=4)
    a = Pipeline.create(embedder="fake", detector="fake", device="cpu", margin=4)
    b = Pipeline.create(embedder="fake2", detector="fake", device="cpu", margin=4)
    images = [person_image(p, v) for p in range(3) for v in range(2)]
    ef, ea, eb = (np.stack([r.faces[0].embedding for r in pipe.run(images)]) for pipe in (fused, a, b))
    assert isinstance(fused.embedder, FusedEmbedder) and ef.shape == (6, 24)
    np.testing.assert_allclose(np.linalg.norm(ef, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(ef, np.concatenate([math.sqrt(w) * ea, math.sqrt(1 - w) * eb], 1), atol=1e-6)
    d2 = lambda e: ((e[:, None] - e[None]) ** 2).sum(-1)  # noqa: E731
    np.testing.assert_allclose(d2(ef), w * d2(ea) + (1 - w) * d2(eb), atol=1e-5)


def test_fused_flip_is_done_part_by_part():
    fused = Pipeline.create(embedder="fake+fake2", detector="fake", device="cpu", margin=4, flip=True)
    a = Pipeline.create(embedder="fake", detector="fake", device="cpu", margin=4, flip=True)
    b = Pipeline.create(embedder="fake2", detector="fake", device="cpu", margin=4, flip=True)
    img = person_image(4, 1)
    (rf,), (ra,), (rb,) = fused.run([img]), a.run([img]), b.run([img])
    expected = np.concatenate([ra.faces[0].embedding, rb.faces[0].embedding]) * math.sqrt(0.5)
    np.testing.assert_allclose(rf.faces[0].embedding, expected, atol=1e-6)


def test_a_fused_gallery_trains_and_identifies(synthetic_npz, tmp_path):
    from facerec import train
    from facerec.gallery import Gallery
    from facerec.gallery.identify import identify

    path = tmp_path / "fused.npz"
    train(synthetic_npz, embedder="fake+fake2", detector="fake", margin=4, device="cpu", model_path=path, far=0.2)
    g = Gallery.load(path)
    assert g.pipeline.embedder == "fake+fake2" and g.dim == 24
    pipe = Pipeline.for_model(g, device="cpu")
    (r,) = pipe.run([person_image(2, 9)])
    assert identify(g, r.faces[0].embedding[None], topk=3)[0].name == "person_2"


def test_a_fused_embedder_aligns_each_part_its_own_way(synthetic_npz, tmp_path):
    """box+five-point: the first part on its box crop, the second on its five-point warp (FaceNet
    and dlib measured best so); the embedding is what each part gives alone with its alignment."""
    fused = Pipeline.create(embedder="fake+fake2", detector="fake", device="cpu", margin=4, alignment="box+five-point")
    kinds = [type(c) for c in fused.cropper.croppers]
    assert kinds == [MarginCropper, FivePointCropper] and fused.config.alignment == "box+five-point"
    a = Pipeline.create(embedder="fake", detector="fake", device="cpu", margin=4, alignment="box")
    b = Pipeline.create(embedder="fake2", detector="fake", device="cpu", margin=4, alignment="five-point")
    img = person_image(3, 2)
    (rf,), (ra,), (rb,) = fused.run([img]), a.run([img]), b.run([img])
    expected = np.concatenate([ra.faces[0].embedding, rb.faces[0].embedding]) * math.sqrt(0.5)
    np.testing.assert_allclose(rf.faces[0].embedding, expected, atol=1e-6)
    same = Pipeline.create(embedder="fake+fake2", detector="fake", device="cpu", margin=4, alignment="box+box")
    assert same.config.cache_key() != fused.config.cache_key()
    # a gallery keeps it: infer and serve cut the same crops
    from facerec import train
    from facerec.gallery import Gallery

    path = tmp_path / "fused.npz"
    train(
        synthetic_npz,
        embedder="fake+fake2",
        detector="fake",
        margin=4,
        device="cpu",
        model_path=path,
        far=0.2,
        alignment="box+five-point",
    )
    assert Pipeline.for_model(Gallery.load(path), device="cpu").config.alignment == "box+five-point"
    for embedder, alignment, message in [
        ("fake+fake2", "box+five-point+box", "names 3 parts, but the embedder has 2"),
        ("fake", "box+five-point", "per-part alignment is for fused embedders"),
        ("fake+fake2", "box+sideways", "alignment must be one of"),
    ]:
        with pytest.raises(InputError, match=message):
            Pipeline.create(embedder=embedder, detector="fake", device="cpu", margin=4, alignment=alignment)


def test_fused_embedder_refuses_a_weights_file():
    with pytest.raises(InputError, match="fused embedder takes its parts' own"):
        Pipeline.create(embedder="fake+fake2", detector="fake", device="cpu", weights="x.pt")


# -- model files --------------------------------------------------------------------------------

DATA = b"a model file"
MODEL = ModelFile("tiny.onnx", hashlib.sha256(DATA).hexdigest(), ("https://example.org/tiny.onnx",), "MIT")


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEREC_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FACEREC_MODELS", raising=False)
    return tmp_path / "home"


def test_model_file_found_in_the_named_folder_and_its_hash_checked(home, tmp_path, monkeypatch):
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "tiny.onnx").write_bytes(DATA)
    assert model_path(MODEL, folder) == folder / "tiny.onnx"
    monkeypatch.setenv("FACEREC_MODELS", f"/nonexistent:{folder}")
    assert model_path(MODEL) == folder / "tiny.onnx"
    (folder / "tiny.onnx").write_bytes(b"a model file, truncated or changed")
    with pytest.raises(WeightsError, match=r"tiny.onnx: sha256 \w+ is not"):
        model_path(MODEL, folder)


def test_model_file_downloaded_into_the_cache_once(home, monkeypatch):
    calls = []
    monkeypatch.setattr("facerec.runtime.weights._download", lambda url: calls.append(url) or DATA)
    path = model_path(MODEL)
    assert path == home / "models" / "tiny.onnx" and path.read_bytes() == DATA
    assert model_path(MODEL) == path and len(calls) == 1  # the second time from the cache


def test_offline_or_wrong_download_names_the_remedies_and_caches_nothing(home, monkeypatch):
    def offline(url):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr("facerec.runtime.weights._download", offline)
    with pytest.raises(WeightsError) as err:
        model_path(MODEL)
    message = str(err.value)
    assert "tiny.onnx is not in" in message and "name resolution" in message
    assert "--weights-dir" in message and "$FACEREC_MODELS" in message and MODEL.urls[0] in message
    monkeypatch.setattr("facerec.runtime.weights._download", lambda url: b"an error page")
    with pytest.raises(WeightsError, match="expected"):
        model_path(MODEL)
    assert not (home / "models" / "tiny.onnx").exists()
