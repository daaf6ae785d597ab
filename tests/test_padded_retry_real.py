"""Faces that fill the frame, on real LFW images: each pair image cropped tightly to its subject's
MTCNN box (no margin), in colour and in grey, as ID photos and cropped-face datasets are. MTCNN
and YuNet (through ``create_detector``, as every command gets them) find the face in each, and a
face the padded retry found has its box inside the image."""

import numpy as np
import pytest

from facerec.align import box_iou, by_prominence
from facerec.images import load_image
from facerec.pipeline import Pipeline, create_detector
from facerec.pipeline.batch import ImageBatch

from conftest import LFW_HOME, require_lfw

pytestmark = pytest.mark.integration


def tight(image: np.ndarray, box) -> np.ndarray:
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    return np.ascontiguousarray(image[max(0, round(y1)) : min(h, round(y2)), max(0, round(x1)) : min(w, round(x2))])


@pytest.fixture(scope="module")
def tight_crops():
    """The first 30 images of View 2's pairs, each cropped to its subject, colour and grey: 60 crops."""
    lfw = require_lfw()
    names = []
    for line in (LFW_HOME / "pairs.txt").read_text().splitlines()[1:]:
        f = line.split()
        for person, n in ((f[0], f[1]), (f[0], f[2])) if len(f) == 3 else ((f[0], f[1]), (f[2], f[3])):
            path = lfw / person / f"{person}_{int(n):04d}.jpg"
            if path not in names:
                names.append(path)
        if len(names) >= 30:
            break
    mtcnn = create_detector("mtcnn", pad_misses=False)
    crops = []
    for path in names[:30]:
        image = load_image(path)
        (faces,) = mtcnn.detect(ImageBatch([image]))
        face = tight(image, by_prominence(faces, image.shape[1], image.shape[0])[0].box)
        grey = np.repeat(face.mean(axis=2, keepdims=True).round().astype(np.uint8), 3, axis=2)
        crops += [face, grey]
    return crops


@pytest.mark.parametrize("name", ["mtcnn", "yunet"])
def test_every_detector_finds_the_face_that_fills_the_frame(tight_crops, name):
    det = create_detector(name)
    retried = 0
    for crop in tight_crops:
        h, w = crop.shape[:2]
        (faces,) = det.detect(ImageBatch([crop]))
        assert faces, f"{name} found no face in a {w}x{h} tight crop"
        subject = by_prominence(faces, w, h)[0]
        # the face is the frame: the subject covers most of it, wherever the box came from
        assert box_iou(subject.box, (0, 0, w, h)) > 0.5
        if not det.inner.detect(ImageBatch([crop]))[0]:  # found only on the padded copy
            retried += 1
            x1, y1, x2, y2 = subject.box
            assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
    if name == "mtcnn":  # MTCNN alone misses some of these (the grey ones most): the retry was exercised
        assert retried > 0


def test_the_pipeline_embeds_a_tight_crop_as_its_subject(tight_crops, casia):
    pipe = Pipeline.create(embedder=casia, detector="mtcnn", device="cpu")
    results = pipe.run(tight_crops, subject_only=True)
    assert all(r.error is None and len(r.faces) == 1 and r.faces[0].is_subject for r in results)
    # the colour and grey crops of one image are one person: nearer each other than to the next image
    emb = np.stack([r.faces[0].embedding for r in results])
    same = np.linalg.norm(emb[0::2] - emb[1::2], axis=1)
    assert np.median(same) < 0.8
