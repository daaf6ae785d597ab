"""FaceNet through ONNX Runtime: the exported graph, the int8 network built from shipped ranges, and
their errors (a small convolutional network here; the real FaceNet in the integration tests below)."""

import json

import numpy as np
import pytest

from facerec.embed import onnx_runtime as ort_mod
from facerec.errors import InputError, WeightsError
from facerec.runtime.onnx_runner import OnnxRunner

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")


def tiny_net():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, stride=2),
        torch.nn.ReLU(),
        torch.nn.Conv2d(8, 16, 3, stride=2),
        torch.nn.ReLU(),
        torch.nn.Conv2d(16, 16, 3),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(16, 8),
    ).eval()


def reference(net, x):
    with torch.no_grad():
        return torch.nn.functional.normalize(net((torch.from_numpy(x) - 127.5) / 128.0), dim=1).numpy()


def crops(n, seed=1, side=32):
    return np.random.default_rng(seed).uniform(0, 255, (n, 3, side, side)).astype(np.float32)


def measured_ranges(fp32_path, tmp_path, data):
    """Ranges in the shipped format, measured the way bench/int8_ranges.py measures them."""
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{ort_mod.INPUT: data}])

        def get_next(self):
            return next(self.it, None)

    pre = tmp_path / "pre.onnx"
    quant_pre_process(str(fp32_path), str(pre))
    out = tmp_path / "ranges.json"
    quantize_static(
        str(pre),
        str(tmp_path / "calibrated.onnx"),
        Reader(),
        calibration_cache_path=str(out),
        calibrate_method=CalibrationMethod.MinMax,
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=["Conv"],
    )
    return out


def test_the_exported_graph_is_the_network(tmp_path):
    net, path = tiny_net(), tmp_path / "g.onnx"
    ort_mod.export_fp32(net, path, 32)
    x = crops(5)
    out = OnnxRunner(path, threads=1)(x)
    assert out.shape == (5, 8) and out.dtype == np.float32
    assert np.abs(out - reference(net, x)).max() < 1e-5
    assert np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
    assert not list(tmp_path.glob(".*.tmp"))  # written through a temp file that is gone


def test_int8_from_shipped_ranges_tracks_fp32(tmp_path):
    net, fp32 = tiny_net(), tmp_path / "g.onnx"
    ort_mod.export_fp32(net, fp32, 32)
    ranges = measured_ranges(fp32, tmp_path, crops(64, seed=2))
    int8 = tmp_path / "g.int8.onnx"
    ort_mod.quantize_int8(fp32, int8, ranges)  # no images: the ranges alone
    x = crops(16, seed=3)
    got, want = OnnxRunner(int8, threads=1)(x), reference(net, x)
    cos = (got * want).sum(1)
    assert cos.min() > 0.95, cos
    assert np.abs(got - want).max() > 1e-6  # it is a different (quantised) network, not the fp32 one


def test_ranges_that_do_not_name_this_graph_are_refused(tmp_path):
    net, fp32 = tiny_net(), tmp_path / "g.onnx"
    ort_mod.export_fp32(net, fp32, 32)
    ranges = measured_ranges(fp32, tmp_path, crops(8))
    import onnx

    d = json.loads(ranges.read_text())
    conv_inputs = [n.input[0] for n in onnx.load(str(fp32)).graph.node if n.op_type == "Conv"]
    del d["data"][conv_inputs[1]]  # as if the exporter had named the second convolution's input otherwise
    ranges.write_text(json.dumps(d))
    with pytest.raises(WeightsError, match="do not name 1 of this graph's convolution inputs"):
        ort_mod.quantize_int8(fp32, tmp_path / "x.onnx", ranges)
    assert not (tmp_path / "x.onnx").exists()


def test_int8_without_ranges_for_these_weights_says_so():
    casia = "facenet-20180408-102900-casia-webface"
    assert any(p.name.startswith(casia) for p in ort_mod.resources.files(ort_mod.RANGES_PACKAGE).iterdir())
    for weights_id in ("made-up-weights", casia):  # CASIA's id, other weights (e.g. --weights my.pt)
        with pytest.raises(InputError, match=f"no int8 network for these weights \\({weights_id}, digest 0+\\).*fp32"):
            ort_mod.ensure_graph(None, weights_id=weights_id, digest="0" * 16, input_size=160, precision="int8")


def test_a_cache_that_cannot_be_written_makes_the_graph_in_memory(tmp_path, monkeypatch):
    """A read-only home, as root would not see one: the cache's folder is a file."""
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "weights").write_text("not a folder")
    monkeypatch.setenv("FACEREC_HOME", str(tmp_path / "home"))
    graph = ort_mod.ensure_graph(tiny_net(), weights_id="w", digest="d", input_size=32, precision="fp32")
    assert isinstance(graph, bytes)
    x = crops(3)
    assert np.abs(OnnxRunner(graph, threads=1)(x) - reference(tiny_net(), x)).max() < 1e-5


def test_a_damaged_cached_graph_is_named(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a graph")
    with pytest.raises(WeightsError, match="bad.onnx: ONNX Runtime cannot load it.*deleting it rebuilds it"):
        OnnxRunner(bad, threads=1)(crops(1))


def test_cached_graphs_are_named_by_the_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEREC_HOME", str(tmp_path))
    a, b = tiny_net(), tiny_net()
    with torch.no_grad():
        b[0].bias += 1
    da, db = (ort_mod.source_digest(n.state_dict()) for n in (a, b))
    assert da != db and da == ort_mod.source_digest(tiny_net().state_dict())
    pa = ort_mod.ensure_graph(a, weights_id="w", digest=da, input_size=32, precision="fp32")
    pb = ort_mod.ensure_graph(b, weights_id="w", digest=db, input_size=32, precision="fp32")
    assert pa != pb and pa.is_file() and pb.is_file() and pa.parent == tmp_path / "weights"
    assert f"-r{ort_mod.RECIPE}." in pa.name  # another recipe makes another graph
    mtime = pa.stat().st_mtime_ns
    assert ort_mod.ensure_graph(a, weights_id="w", digest=da, input_size=32, precision="fp32") == pa
    assert pa.stat().st_mtime_ns == mtime  # the cached graph, not a new export


# -- FaceNet's graph built from a state dict (embed/facenet_graph.py) -----------------------------


def random_facenet_state(seed=0):
    from facerec.embed.inception_resnet_v1 import parameter_shapes

    rng = np.random.default_rng(seed)
    state = {k: (rng.standard_normal(s) * 0.05).astype(np.float32) for k, s in parameter_shapes().items()}
    for k in state:
        if k.endswith("running_var"):
            state[k] = np.abs(state[k]) + 1.0
    return state


def test_a_state_dict_is_built_into_a_graph_named_by_the_recipe(tmp_path, monkeypatch):
    """A state dict, not a module: the graph is built without torch, cached under this recipe's name,
    and runs (n, 3, 160, 160) crops into (n, 512) unit rows."""
    monkeypatch.setenv("FACEREC_HOME", str(tmp_path))
    state = random_facenet_state()
    digest = ort_mod.source_digest(state)
    path = ort_mod.ensure_graph(state, weights_id="w", digest=digest, input_size=160, precision="fp32")
    assert path == tmp_path / "weights" / f"w-{digest}-r{ort_mod.RECIPE}.fp32.onnx" and ort_mod.RECIPE >= 2
    out = OnnxRunner(path, threads=1)(crops(2, side=160))
    assert out.shape == (2, 512) and np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)


def test_the_shipped_int8_ranges_name_every_convolution_input_of_the_built_graph():
    """The ranges were measured on PyTorch's export: the built graph names its tensors the same way."""
    from facerec.embed.facenet_graph import build_graph

    graph = build_graph(random_facenet_state())
    ranges = ort_mod.ranges_resource("facenet-20180408-102900-casia-webface", "e05b0dd67e5c422a")
    convs = [n for n in graph.graph.node if n.op_type == "Conv"]
    assert len(convs) == 132
    ort_mod._check_ranges(json.loads(ranges.read_text()), {n.input[0] for n in convs})  # raises on a name it lacks
