"""The real FaceNet through ONNX Runtime: PyTorch's numbers in fp32, int8 close to fp32 and keeping
people apart, int8 and fp32 faces cached apart (the runtime's rules on a small network:
unit/test_onnx_runtime.py)."""

import numpy as np
import pytest

from facerec.errors import InputError

from conftest import lfw_image

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")


# -- the real FaceNet --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def faces():
    """Aligned CASIA crops of 4 LFW photos of 2 people, cut by the real pipeline (MTCNN)."""
    from facerec.pipeline import Pipeline

    pipe = Pipeline.create(embedder="facenet-casia", detector="mtcnn", device="cpu")
    seen = []
    real = pipe.embedder.embed_tensor
    pipe.embedder.embed_tensor = lambda x: seen.append(np.array(x, np.float32)) or real(x)  # numpy on a CPU
    paths = [lfw_image(p, n) for p in ("Colin_Powell", "Tony_Blair") for n in (1, 2)]
    pipe.run([str(p) for p in paths], subject_only=True)
    return np.concatenate(seen)


def test_cpu_fp32_runs_onnx_runtime_with_pytorchs_numbers(faces):
    from facerec.embed import create_embedder
    from facerec.embed.facenet import pytorch_reference

    fast = create_embedder("facenet-casia", device="cpu")
    slow = pytorch_reference("facenet-casia")
    assert (fast.runtime, slow.runtime) == ("onnxruntime", "torch")
    x = torch.from_numpy(faces)
    assert np.abs(fast.embed_tensor(x).numpy() - slow.embed_tensor(x).numpy()).max() < 1e-5
    host = np.ascontiguousarray(faces.round().clip(0, 255).astype(np.uint8).transpose(0, 2, 3, 1))
    assert np.abs(fast.embed(host) - slow.embed(host)).max() < 1e-5


def test_int8_facenet_agrees_with_fp32_and_keeps_people_apart(faces):
    from facerec.embed import create_embedder

    fp32 = create_embedder("facenet-casia", device="cpu").embed_tensor(torch.from_numpy(faces)).numpy()
    int8 = create_embedder("facenet-casia", device="cpu", precision="int8").embed_tensor(torch.from_numpy(faces))
    int8 = int8.numpy()
    cos = (fp32 * int8).sum(1)
    assert cos.min() > 0.99, cos
    d = np.linalg.norm(int8[:, None] - int8[None], axis=2)
    assert max(d[0, 1], d[2, 3]) < min(d[0, 2], d[0, 3], d[1, 2], d[1, 3])  # same person nearer than the other
    with pytest.raises(InputError, match="int8 runs on the CPU only.*compile"):
        create_embedder("facenet-casia", device="cpu", precision="int8", compile=True)


def test_int8_and_fp32_faces_are_cached_apart(tmp_path):
    from facerec.pipeline import Pipeline

    image = str(lfw_image("Colin_Powell", 1))
    kw = dict(embedder="facenet-casia", detector="yunet", device="cpu", cache_dir=tmp_path)
    fp32 = Pipeline.create(**kw).embed(image)
    int8 = Pipeline.create(precision="int8", **kw).embed(image)
    assert len(list((tmp_path / "cache").glob("faces_facenet-casia_yunet_all_*.npz"))) == 2
    assert not np.array_equal(fp32, int8) and (fp32 * int8).sum() > 0.99
    assert np.array_equal(Pipeline.create(precision="int8", **kw).embed(image), int8)  # from its own cache
