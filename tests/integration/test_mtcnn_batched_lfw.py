"""The batched MTCNN finds the same faces as facenet-pytorch's on real LFW images (its tensor steps:
unit/test_mtcnn_batched.py)."""

import numpy as np
import pytest
import torch

from facerec.detect import box_iou
from facerec.detect.mtcnn_net import BatchedMTCNN
from facerec.images import load_image

from conftest import require_lfw


@pytest.fixture(scope="module")
def batched():
    return BatchedMTCNN(device="cpu", batch_size=32)


def test_same_faces_as_facenet_pytorch_on_lfw(batched):
    """Every 97th LFW image (137 images): the subject found by facenet-pytorch's MTCNN is found
    here with box IoU >= 0.9 (the issue asks for >= 99% of images; here all of them)."""
    from facerec.detect.mtcnn import ReferenceMTCNNDetector
    from facerec.image_batch import ImageBatch

    paths = sorted(require_lfw().glob("*/*.jpg"))[::97]
    images = [load_image(p) for p in paths]
    reference = ReferenceMTCNNDetector(device="cpu")
    ref = [sorted(reference.detect(ImageBatch([img]))[0], key=lambda d: -d.area) for img in images]
    got = batched.detect(images)
    same = 0
    for want, have in zip(ref, got):
        if not want:
            same += not have
            continue
        same += bool(have) and max(box_iou(want[0].box, h.box) for h in have) >= 0.9
    assert same == len(paths), f"{same}/{len(paths)} images agree"
    assert sum(map(len, got)) == sum(map(len, ref))


def test_mixed_sizes_no_face_and_tiny_images(batched):
    lfw = require_lfw()
    face = load_image(next(lfw.glob("Aaron_Peirsol/*.jpg")))
    big = np.asarray(
        torch.nn.functional.interpolate(torch.from_numpy(face).permute(2, 0, 1)[None].float(), scale_factor=2.0)
        .round()
        .byte()[0]
        .permute(1, 2, 0)
    )
    blank = np.full((120, 90, 3), 128, np.uint8)
    tiny = np.zeros((5, 5, 3), np.uint8)
    out = batched.detect([face, blank, big, tiny])
    assert len(out[0]) >= 1 and out[1] == [] and out[3] == []
    assert len(out[2]) >= 1
    assert box_iou(tuple(v * 2 for v in out[0][0].box), out[2][0].box) > 0.8
    assert out[0][0].landmarks.shape == (5, 2)
