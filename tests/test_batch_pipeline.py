"""The throughput path gives the same embeddings as the reference pipeline, and reports bad files."""
import numpy as np
import pytest
import torch

from conftest import require_lfw
from facerec.align import by_prominence
from facerec.align.base import Detection
from facerec.batch_pipeline import BatchPipeline, _subject
from facerec.datasets import Sample
from facerec.embed.facenet import FaceNetEmbedder
from facerec.errors import InputError
from facerec.pipeline import FacePipeline


def test_subject_is_the_most_prominent_face():
    rng = np.random.default_rng(0)
    boxes, owner = [], []
    for img in range(5):
        for _ in range(rng.integers(1, 5)):
            x, y, s = rng.uniform(0, 200), rng.uniform(0, 200), rng.uniform(10, 80)
            boxes.append((x, y, x + s, y + s))
            owner.append(img)
    b, o = torch.tensor(boxes, dtype=torch.float32), torch.tensor(owner)
    pick = _subject(b, o, 6, 250, 250).tolist()  # image 5 has no face: nothing picked for it
    want = []
    for img in range(5):
        dets = [Detection(boxes[i], 1.0) for i in range(len(boxes)) if owner[i] == img]
        best = by_prominence(dets, 250, 250)[0].box
        want.append(boxes.index(best))
    assert pick == want


@pytest.mark.slow
def test_same_embeddings_as_face_pipeline_and_bad_files(casia, tmp_path):
    lfw = require_lfw()
    paths = [str(p) for p in sorted(lfw.glob("*/*.jpg"))[::700]]  # 19 images
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    from PIL import Image

    Image.new("RGB", (200, 160), (120, 120, 120)).save(tmp_path / "blank.png")
    inputs = paths[:10] + [str(tmp_path / "broken.jpg")] + paths[10:] + [str(tmp_path / "blank.png")]
    fast = BatchPipeline(embedder=casia, device="cpu", batch_size=8, workers=2).run(inputs)
    assert list(fast.errors) == [str(tmp_path / "broken.jpg")] and "broken.jpg" in fast.errors[inputs[10]]
    assert not fast.found[10] and not fast.found[-1]
    assert fast.found[[i for i in range(len(inputs)) if i not in (10, len(inputs) - 1)]].all()

    ref = FacePipeline.create(embedder="facenet-casia", align="mtcnn", device="cpu", art_dir=None)
    results = ref.run([Sample(p, p) for p in paths], quiet=True)
    want = np.stack([r.faces[0].embedding for r in results])
    got = fast.embeddings[[i for i, p in enumerate(inputs) if p in paths]]
    cos = np.sum(want * got, axis=1)
    # same detections and geometry; only the final resampling differs (roi_align vs PIL bilinear)
    assert cos.min() > 0.99 and cos.mean() > 0.998, cos


def test_half_precision_agrees_with_fp32(casia):
    from facerec.embed.facenet import CASIA

    state = {k: v for k, v in casia.model.state_dict().items()}
    bf16 = FaceNetEmbedder(CASIA, state, "cpu", precision="bf16")
    x = torch.rand(4, 3, 160, 160) * 255
    a, b = casia.embed_tensor(x), bf16.embed_tensor(x)
    assert a.dtype == b.dtype == torch.float32
    assert torch.sum(a * b, 1).min() > 0.995


def test_options_are_checked(casia):
    with pytest.raises(InputError, match="nvjpeg decoder needs a CUDA"):
        BatchPipeline(embedder=casia, device="cpu", decoder="nvjpeg")
    with pytest.raises(InputError, match="decoder must be"):
        BatchPipeline(embedder=casia, device="cpu", decoder="libjpeg-turbo")
