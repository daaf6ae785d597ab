"""``--embedder onnx:...``: a small ONNX model made here (onnx.helper) read, checked and run as the
spec says; every bad model refused by name before anything is saved; the ArcFace crop checked
against an alignment written here; no decision without a calibration."""

import json
from pathlib import Path

import numpy as np
import pytest

from facerec.errors import InputError, WeightsError

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

DIM = 16


def make_model(
    path: Path, *, shape=("n", 3, 112, 112), out_shape=("n", DIM), nan=False, seed=0, out_dim=DIM
) -> np.ndarray:
    """A linear embedder: flatten, times a fixed random matrix (returned), optionally plus NaN."""
    rng = np.random.default_rng(seed)
    size = int(np.prod([d for d in shape[1:] if isinstance(d, int)]))
    weight = (rng.standard_normal((size, out_dim)) / np.sqrt(size)).astype(np.float32)
    nodes = [
        helper.make_node("Flatten", ["data"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "w"], ["emb" if not nan else "raw"]),
    ]
    inits = [numpy_helper.from_array(weight, "w")]
    if nan:
        inits.append(numpy_helper.from_array(np.full((out_dim,), np.nan, np.float32), "bad"))
        nodes.append(helper.make_node("Add", ["raw", "bad"], ["emb"]))
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("emb", TensorProto.FLOAT, list(out_shape))],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return weight


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.onnx"
    return path, make_model(path)


def test_spec_read_from_the_graph_and_identity_carries_sha256_and_input(tiny):
    from facerec.embed import get_spec
    from facerec.runtime.weights import sha256_of

    path, _ = tiny
    spec = get_spec(f"onnx:{path}")
    assert (spec.dim, spec.input_size, spec.crop, spec.default_threshold) == (DIM, 112, "arcface", None)
    assert sha256_of(path) in spec.weights_id
    # the same file read another way is another model to a gallery
    other = path.with_name("tiny2.onnx")
    other.write_bytes(path.read_bytes())
    other.with_name("tiny2.onnx.json").write_text(json.dumps({"channels": "bgr"}))
    spec2 = get_spec(f"onnx:{other}")
    assert spec2.weights_id != spec.weights_id and sha256_of(path) in spec2.weights_id


def test_embeddings_follow_the_input_spec_batched(tiny, tmp_path):
    from facerec.embed import create_embedder

    path, weight = tiny
    crops = np.random.default_rng(1).integers(0, 256, (70, 112, 112, 3), dtype=np.uint8)  # > one batch
    got = create_embedder(f"onnx:{path}", device="cpu").embed(crops)
    x = ((crops.astype(np.float32) - 127.5) / 127.5).transpose(0, 3, 1, 2).reshape(len(crops), -1)
    want = x @ weight
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    assert np.abs(got - want).max() < 1e-5

    bgr = tmp_path / "bgr.onnx"
    bgr.write_bytes(path.read_bytes())
    bgr.with_name("bgr.onnx.json").write_text(json.dumps({"channels": "bgr", "mean": 0, "std": 1}))
    got = create_embedder(f"onnx:{bgr}", device="cpu").embed(crops)
    want = crops[..., ::-1].astype(np.float32).transpose(0, 3, 1, 2).reshape(len(crops), -1) @ weight
    assert np.abs(got - want / np.linalg.norm(want, axis=1, keepdims=True)).max() < 1e-5


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"shape": ("n", 3 * 112 * 112)}, "rank 2"),
        ({"shape": ("n", 3, 112, 96)}, "112x96"),
        ({"out_shape": ("n", DIM, 1)}, "rank 3"),
    ],
)
def test_a_graph_that_does_not_fit_is_refused_naming_file_and_problem(tmp_path, kwargs, words):
    from facerec.embed import get_spec

    path = tmp_path / "bad.onnx"
    make_model(path, **kwargs)
    with pytest.raises(WeightsError, match=words) as err:
        get_spec(f"onnx:{path}")
    assert str(path) in str(err.value)


def test_an_output_whose_length_follows_the_input_is_refused(tmp_path):
    """Declared (n, d) and not inferable: a flattened image of any side."""
    from facerec.embed import get_spec

    path = tmp_path / "dynamic.onnx"
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["data"], ["emb"], axis=1)],
        "dynamic",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["n", 3, "s", "s"])],
        [helper.make_tensor_value_info("emb", TensorProto.FLOAT, ["n", "d"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    with pytest.raises(WeightsError, match="no fixed length") as err:
        get_spec(f"onnx:{path}")
    assert str(path) in str(err.value)


def test_nan_output_and_truncated_file_are_refused(tmp_path):
    from facerec.embed import create_embedder, get_spec

    nan = tmp_path / "nan.onnx"
    make_model(nan, nan=True)
    with pytest.raises(WeightsError, match="NaN") as err:
        create_embedder(f"onnx:{nan}", device="cpu")
    assert str(nan) in str(err.value)

    cut = tmp_path / "cut.onnx"
    make_model(cut)
    cut.write_bytes(cut.read_bytes()[:5000])
    with pytest.raises(WeightsError, match="not a readable ONNX model") as err:
        get_spec(f"onnx:{cut}")
    assert str(cut) in str(err.value)
    with pytest.raises(WeightsError, match="no such ONNX model file"):
        get_spec(f"onnx:{tmp_path / 'absent.onnx'}")


def test_bad_sidecar_is_refused_naming_it(tiny):
    from facerec.embed import get_spec

    path, _ = tiny
    side = path.with_name(path.name + ".json")
    side.write_text(json.dumps({"channels": "rgba"}))
    with pytest.raises(WeightsError, match="channels") as err:
        get_spec(f"onnx:{path}")
    assert str(side) in str(err.value)


def test_preset_refuses_a_file_whose_hash_is_not_its_own(tmp_path, monkeypatch):
    from facerec.embed import create_embedder
    from facerec.embed.onnx_presets import PRESETS

    fake = tmp_path / PRESETS["sface"].file.filename
    make_model(fake)
    monkeypatch.setenv("FACEREC_MODELS", str(tmp_path))
    with pytest.raises(WeightsError, match="sha256") as err:
        create_embedder("onnx:sface", device="cpu")
    assert str(fake) in str(err.value)
    with pytest.raises(WeightsError, match="sha256"):
        create_embedder("onnx:sface", weights=str(fake), device="cpu")


def test_train_with_a_bad_model_writes_no_gallery(tmp_path, synthetic_npz, fake_train_cli):
    nan = tmp_path / "nan.onnx"
    make_model(nan, nan=True)
    out = tmp_path / "g.npz"
    code, _, err = fake_train_cli(synthetic_npz, "--model", str(out), embedder=f"onnx:{nan}")
    assert code != 0 and "NaN" in err and str(nan) in err
    assert not out.exists()


# -- calibrated before trusted -----------------------------------------------------------------------
def _pipeline(path):
    from facerec.embed import get_spec
    from facerec.pipeline.config import PipelineConfig

    spec = get_spec(f"onnx:{path}")
    return PipelineConfig(spec.name, spec.weights_id, "yunet", spec.input_size, 32.0, spec.dim)


def test_no_table_no_decision_and_the_message_names_the_ways_out(tiny, tmp_path, monkeypatch):
    from facerec.gallery.calibration import UncalibratedError, gallery_threshold, verification_threshold

    monkeypatch.setenv("FACEREC_HOME", str(tmp_path / "home"))
    p = _pipeline(tiny[0])
    identify = lambda: gallery_threshold(  # noqa: E731
        pipeline=p, metric="euclidean", photo_counts=np.array([3, 3]), fpir=0.01, default_euclidean=None
    )
    # identification may also answer closed-set; 1:1 verification has no such way out, and says none
    for call, ways_out, not_offered in (
        (identify, ["--closed-set"], []),
        (lambda: verification_threshold(p), [], ["--closed-set"]),
    ):
        with pytest.raises(UncalibratedError) as err:
            call()
        for words in ("facerec calibrate", "--threshold", p.embedder, *ways_out):
            assert words in str(err.value)
        for words in not_offered:
            assert words not in str(err.value)
    assert verification_threshold(p, threshold=0.9).threshold == 0.9  # a distance of one's own still works


def test_a_measured_table_is_found_by_the_files_identity_wherever_it_lies(tiny, tmp_path, monkeypatch):
    from dataclasses import replace

    from facerec.gallery.calibration import gallery_threshold
    from facerec.gallery.reference import measure_reference, reference_for, save_user_reference

    monkeypatch.setenv("FACEREC_HOME", str(tmp_path / "home"))
    p = _pipeline(tiny[0])
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((40, DIM))
    emb = np.repeat(centres, 4, axis=0) + 0.3 * rng.standard_normal((160, DIM))
    emb = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)
    assert reference_for(p) is None
    table = measure_reference(emb, np.repeat(np.arange(40), 4))
    path = save_user_reference({**table, "pipeline": p.to_dict(), "precision": "fp32", "provenance": {}})
    assert path.parent == tmp_path / "home" / "reference" and p.weights_id.split(":")[1][:64] in path.name
    moved = replace(p, embedder="onnx:/elsewhere/tiny.onnx")
    assert reference_for(p) is not None and reference_for(moved) is not None
    cal = gallery_threshold(
        pipeline=moved, metric="euclidean", photo_counts=np.array([3, 3]), fpir=0.01, default_euclidean=None
    )
    assert cal.source == "reference" and cal.threshold > 0
    assert reference_for(replace(p, weights_id=p.weights_id[:-1] + "x")) is None  # another file: no table


# -- the ArcFace crop --------------------------------------------------------------------------------
ARCFACE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]
)


def independent_arcface(image, landmarks, size=112):
    """insightface's norm_crop written anew: the least-squares similarity [a -b tx; b a ty] by
    np.linalg.lstsq, then cv2.warpAffine with a black border."""
    import cv2

    dst = ARCFACE_112 * size / 112
    rows = []
    for (x, y), (u, v) in zip(landmarks, dst):
        rows.append(([x, -y, 1, 0], u))
        rows.append(([y, x, 0, 1], v))
    a, b, tx, ty = np.linalg.lstsq(np.array([r for r, _ in rows]), np.array([t for _, t in rows]), rcond=None)[0]
    m = np.array([[a, -b, tx], [b, a, ty]])
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderValue=0), m


def _face_with_dots(landmarks, shape=(300, 260)):
    """A grey image with a bright Gaussian dot of its own colour channel mix at each landmark."""
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float32)
    img = np.zeros((*shape, 3), np.float32)
    colours = np.eye(3)[[0, 1, 2, 0, 1]] * 255
    for k, (x, y) in enumerate(landmarks):
        blob = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 2.5**2))
        img += blob[..., None] * colours[k]
    return np.clip(img, 0, 255).astype(np.uint8)


def _dot_centre(crop, point, channel, radius=7):
    x0, y0 = np.round(point).astype(int)
    patch = crop[y0 - radius : y0 + radius + 1, x0 - radius : x0 + radius + 1, channel].astype(np.float64)
    yy, xx = np.mgrid[y0 - radius : y0 + radius + 1, x0 - radius : x0 + radius + 1]
    return np.array([(patch * xx).sum() / patch.sum(), (patch * yy).sum() / patch.sum()])


@pytest.mark.parametrize("angle, scale", [(0.0, 1.6), (17.0, 2.1), (-25.0, 1.3)])
def test_arcface_crop_puts_the_landmarks_on_the_template_within_half_a_pixel(angle, scale, tiny):
    from facerec.align.arcface import ArcFaceCropper
    from facerec.detect.base import Detection
    from facerec.embed import get_spec
    from facerec.image_batch import ImageBatch

    spec = get_spec(f"onnx:{tiny[0]}")  # the 112 px model made above: its spec asks for this crop
    t = np.radians(angle)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    landmarks = (ARCFACE_112 - 56) @ rot.T * scale + np.array([128.0, 140.0])
    image = _face_with_dots(landmarks)
    det = Detection((0.0, 0.0, 259.0, 299.0), 1.0, landmarks.astype(np.float32))
    crop = ArcFaceCropper(spec.input_size).crop(ImageBatch([image], "cpu"), [(0, det)])[0]
    mine, m = independent_arcface(image, landmarks)
    mapped = landmarks @ m[:, :2].T + m[:, 2]
    assert np.abs(mapped - ARCFACE_112).max() < 0.5
    assert np.abs(crop.astype(int) - mine.astype(int)).max() <= 1
    for k, point in enumerate(ARCFACE_112):
        assert np.linalg.norm(_dot_centre(crop, point, [0, 1, 2, 0, 1][k]) - point) < 0.5


def test_arcface_crop_without_landmarks_names_the_detectors_that_give_them():
    from facerec.align.arcface import ArcFaceCropper
    from facerec.detect.base import Detection
    from facerec.image_batch import ImageBatch

    image = np.zeros((100, 100, 3), np.uint8)
    with pytest.raises(InputError, match="mtcnn or yunet"):
        ArcFaceCropper(112).crop(ImageBatch([image], "cpu"), [(0, Detection((10.0, 10.0, 90.0, 90.0), 1.0))])


def test_an_arcface_spec_gets_the_arcface_crop_whatever_the_alignment(tiny):
    from facerec.align.arcface import ArcFaceCropper
    from facerec.align.croppers import cropper_for
    from facerec.embed import get_spec

    spec = get_spec(f"onnx:{tiny[0]}")
    for alignment in ("box", "five-point"):
        assert isinstance(cropper_for(spec, margin=32.0, alignment=alignment), ArcFaceCropper)


def test_clustering_an_uncalibrated_model_asks_for_a_calibration_or_a_threshold(tiny, tmp_path, monkeypatch):
    from facerec.people.threshold import cluster_threshold

    monkeypatch.setenv("FACEREC_HOME", str(tmp_path / "home"))
    p = _pipeline(tiny[0])
    with pytest.raises(InputError, match="facerec calibrate"):
        cluster_threshold(p)
    assert cluster_threshold(p, threshold=0.8).value == 0.8


def test_float_crops_as_an_array_give_an_array_without_torch(tiny):
    """The margin cropper's float (n, 3, S, S) crops as a numpy array (the torch-free pipeline): the
    same rows as the uint8 crops give, as a numpy array; a tensor still gives a tensor."""
    from facerec.embed import create_embedder

    path, _ = tiny
    embedder = create_embedder(f"onnx:{path}", device="cpu")
    crops = np.random.default_rng(2).integers(0, 256, (3, 112, 112, 3), dtype=np.uint8)
    got = embedder.embed_tensor(crops.transpose(0, 3, 1, 2).astype(np.float32))
    assert isinstance(got, np.ndarray) and got.dtype == np.float32
    assert np.abs(got - embedder.embed(crops)).max() < 1e-6
    torch = pytest.importorskip("torch")
    as_tensor = embedder.embed_tensor(torch.from_numpy(crops.transpose(0, 3, 1, 2).astype(np.float32)))
    assert isinstance(as_tensor, torch.Tensor) and np.abs(as_tensor.numpy() - got).max() < 1e-6
