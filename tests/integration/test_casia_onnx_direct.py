"""CASIA FaceNet without torch (#32): the weights converted from the frozen graph without torch are
the ones the torch path converted (the digest that names the shipped int8 ranges), the ONNX graph
built from them with onnx.helper gives the embeddings of PyTorch's export of the folded module, and
in a process where torch cannot be imported facenet-casia embeds real faces in fp32 and int8."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from facerec.embed.casia_weights import casia_state_dict, convert_graph, locate_graph
from facerec.embed.onnx_runtime import source_digest
from facerec.images import load_image

from conftest import ROOT, require_lfw

pytest.importorskip("onnxruntime")

# sha256 of the state dict the torch path converted (casia_weights before #32): it names the shipped
# int8 ranges (src/facerec/embed/data/) and the cached graphs
TORCH_PATH_DIGEST = "e05b0dd67e5c422a"
BLOCKED = "torch,torchvision,facenet_pytorch,sympy"  # sympy: torch brings it, the core install does not


@pytest.fixture(scope="module")
def crops():
    """32 LFW faces, one a person, cut as a fixed 160-pixel box around the funneled face: uint8 (32, 160, 160, 3)."""
    people = sorted(p for p in require_lfw().iterdir() if p.is_dir())[:32]
    return np.stack([load_image(sorted(p.glob("*.jpg"))[0])[45:205, 45:205] for p in people])


@pytest.fixture(scope="module")
def state():
    return casia_state_dict()


def nchw(crops):
    return np.ascontiguousarray(crops.transpose(0, 3, 1, 2).astype(np.float32))


def test_the_weights_converted_without_torch_are_the_torch_paths(state):
    converted = convert_graph(locate_graph().read_bytes())
    assert converted.keys() == state.keys()
    assert all(np.array_equal(converted[k], state[k]) for k in state)
    assert source_digest(converted) == TORCH_PATH_DIGEST


def test_the_layout_is_facenet_pytorchs(state):
    torch = pytest.importorskip("torch")
    facenet_pytorch = pytest.importorskip("facenet_pytorch")
    from facerec.embed.inception_resnet_v1 import parameter_shapes

    net = facenet_pytorch.InceptionResnetV1(pretrained=None, classify=False)
    assert {k: tuple(v.shape) for k, v in net.state_dict().items() if "num_batches" not in k} == parameter_shapes()
    net.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=False)  # every shape fits


def test_the_built_graph_gives_pytorchs_exported_embeddings(state, crops, tmp_path):
    """fp32 within 1e-5 (measured: 1.1e-7), every convolution input named as the exporter names it."""
    pytest.importorskip("torch")
    import onnx

    from facerec.embed.facenet import CASIA, FaceNetEmbedder
    from facerec.embed.onnx_runtime import build_fp32, export_fp32
    from facerec.runtime.onnx_runner import OnnxRunner

    exported, built = tmp_path / "exported.onnx", tmp_path / "built.onnx"
    export_fp32(FaceNetEmbedder(CASIA, state, "cpu", runtime="torch").model, exported, 160)
    build_fp32(state, built, 160)
    x = nchw(crops)
    want, got = OnnxRunner(exported, threads=2)(x), OnnxRunner(built, threads=2)(x)
    assert got.shape == (32, 512) and np.abs(got - want).max() <= 1e-5

    def conv_inputs(path):
        return [n.input[0] for n in onnx.load(str(path), load_external_data=False).graph.node if n.op_type == "Conv"]

    assert conv_inputs(built) == conv_inputs(exported)


WITHOUT_TORCH = """
import json, sys
import numpy as np
from facerec.embed import create_embedder
crops = np.load(sys.argv[1])
out, runtimes = {}, {}
for precision in ("fp32", "int8"):
    embedder = create_embedder("facenet-casia", device="cpu", precision=precision)
    out[precision] = embedder.embed(crops)
    runtimes[precision] = embedder.runtime
np.savez(sys.argv[2], **out)
loaded = [m for m in ("torch", "facenet_pytorch", "facerec.embed.fold", "facerec.embed.onednn") if m in sys.modules]
print(json.dumps({"runtimes": runtimes, "loaded": loaded}))
"""


def run_without_torch(code: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests" / "without"), "FACEREC_WITHOUT": BLOCKED}
    return subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=300, cwd=ROOT
    )


def test_facenet_casia_embeds_in_fp32_and_int8_without_torch(crops, tmp_path):
    """What the core install runs: the same embeddings as the full install's, within float rounding."""
    from facerec.embed import create_embedder

    np.save(tmp_path / "crops.npy", crops[:8])
    done = run_without_torch(WITHOUT_TORCH, str(tmp_path / "crops.npy"), str(tmp_path / "out.npz"))
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"runtimes": {"fp32": "onnxruntime", "int8": "onnxruntime"}, "loaded": []}
    got = np.load(tmp_path / "out.npz")
    fp32 = create_embedder("facenet-casia", device="cpu").embed(crops[:8])
    int8 = create_embedder("facenet-casia", device="cpu", precision="int8").embed(crops[:8])
    assert np.abs(got["fp32"] - fp32).max() < 1e-6
    assert (got["int8"] * int8).sum(1).min() > 0.99999
    assert (got["int8"] * got["fp32"]).sum(1).min() > 0.99


def test_facenet_vggface2_without_torch_names_the_extra():
    code = (
        "from facerec.embed import create_embedder\n"
        "from facerec.extras import MissingExtra\n"
        "for name, kw in (('facenet-vggface2', {}), ('facenet-casia', {'precision': 'bf16'})):\n"
        "    try:\n"
        "        create_embedder(name, device='cpu', **kw)\n"
        "    except MissingExtra as exc:\n"
        "        print(exc)\n"
    )
    done = run_without_torch(code)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 2 and all("pip install 'facerec[gpu]'" in line for line in lines), lines


def test_the_pytorch_reference_still_agrees(state, crops):
    """Where torch is installed, PyTorch's own fp32 network (the benchmarks' reference) gives the
    embeddings ONNX Runtime gives on the built graph, from uint8 crops and from float planes (the
    torch-free cropper's numpy arrays: a numpy array back from either runtime)."""
    pytest.importorskip("torch")
    from facerec.embed import create_embedder
    from facerec.embed.facenet import pytorch_reference

    x = crops[:8]
    slow, fast = pytorch_reference("facenet-casia"), create_embedder("facenet-casia", device="cpu")
    assert (slow.runtime, fast.runtime) == ("torch", "onnxruntime")
    assert np.abs(slow.embed(x) - fast.embed(x)).max() < 1e-5
    planes = nchw(x) + 0.25  # not whole numbers: the float crops as cut, not rounded
    a, b = slow.embed_tensor(planes), fast.embed_tensor(planes)
    assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.abs(a - b).max() < 1e-5
