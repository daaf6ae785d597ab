"""Faces that fill the frame, on real LFW images: each pair image cropped tightly to its subject's
MTCNN box (no margin), in colour and in grey, as ID photos and cropped-face datasets are. MTCNN
and YuNet (through ``create_detector``, as every command gets them) find the face in each, and a
face the padded retry found has its box inside the image."""

import numpy as np
import pytest

from facerec.detect import by_prominence, create_detector
from facerec.image_batch import ImageBatch
from facerec.images import load_image
from facerec.people.quality import FILLS_PICTURE
from facerec.pipeline import Pipeline

from conftest import LFW_HOME, require_lfw


def tight(image: np.ndarray, box) -> np.ndarray:
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    return np.ascontiguousarray(image[max(0, round(y1)) : min(h, round(y2)), max(0, round(x1)) : min(w, round(x2))])


@pytest.fixture(scope="module")
def tight_crops():
    """The first 50 images of View 2's pairs, each cropped to its subject, colour and grey: 100 crops."""
    lfw = require_lfw()
    names = []
    for line in (LFW_HOME / "pairs.txt").read_text().splitlines()[1:]:
        f = line.split()
        for person, n in ((f[0], f[1]), (f[0], f[2])) if len(f) == 3 else ((f[0], f[1]), (f[2], f[3])):
            path = lfw / person / f"{person}_{int(n):04d}.jpg"
            if path not in names:
                names.append(path)
        if len(names) >= 50:
            break
    mtcnn = create_detector("mtcnn", pad_misses=False)
    crops = []
    for path in names[:50]:
        image = load_image(path)
        (faces,) = mtcnn.detect(ImageBatch([image]))
        face = tight(image, by_prominence(faces, image.shape[1], image.shape[0])[0].box)
        grey = np.repeat(face.mean(axis=2, keepdims=True).round().astype(np.uint8), 3, axis=2)
        crops += [face, grey]
    return crops, names[:50]


@pytest.mark.parametrize("name", ["mtcnn", "yunet"])
def test_every_detector_finds_the_face_that_fills_the_frame(tight_crops, name):
    """Measured on all 7,701 pair images (bench/tight_crops.py): MTCNN with the retry 100% in
    colour, 99.5% in grey (alone: 99.4% / 91.2%); YuNet 100% / 99.9%. Here: >= 98% (two misses of 100)."""
    crops, _ = tight_crops
    det = create_detector(name)
    missed = retried = whole = 0
    for k, crop in enumerate(crops):
        h, w = crop.shape[:2]
        (faces,) = det.detect(ImageBatch([crop]))
        if not faces:
            assert k % 2 == 1, f"{name} found no face in a {w}x{h} colour tight crop"
            missed += 1
            continue
        # the face is the frame: the subject's box covers most of it (the gate's FILLS_PICTURE),
        # found on the padded copy (it fills the frame, or nothing was found), reported inside the image
        subject = by_prominence(faces, w, h)[0]
        x1, y1, x2, y2 = subject.box
        assert (x2 - x1) * (y2 - y1) >= FILLS_PICTURE * w * h
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
        whole += subject.full_box is not None  # the whole face runs past the crop
        retried += not det.inner.detect(ImageBatch([crop]))[0]
    assert missed <= 0.02 * len(crops)
    assert whole >= 0.7 * (len(crops) - missed)  # 81 of 100 here, MTCNN and YuNet alike
    if name == "mtcnn":  # MTCNN alone misses some of these (the grey ones): found on the padded copy
        assert retried >= 1


def test_a_tight_crop_embeds_close_to_its_uncropped_image(tight_crops, casia):
    """The crop cut around the whole face (found on the padded copy, the part past the crop's edge
    continuing its edge pixels) looks as FaceNet saw faces in training: its embedding lies nearer
    the uncropped image's than the crop of the cut-off box the detector alone finds."""
    crops, paths = tight_crops
    pipe = Pipeline.create(embedder=casia, detector="mtcnn", device="cpu")
    colour = crops[::2]
    uncropped = np.stack([r.faces[0].embedding for r in pipe.run(paths, subject_only=True)])
    distance = {}
    for retry, det in ((True, pipe.detector), (False, pipe.detector.inner)):
        pipe.detector = det
        subjects = [r.subject for r in pipe.run(colour, subject_only=True)]
        # a crop the detector alone misses counts as far (2, opposite unit vectors)
        distance[retry] = [
            2.0 if f is None else float(np.linalg.norm(f.embedding - u)) for f, u in zip(subjects, uncropped)
        ]
    assert np.median(distance[True]) < np.median(distance[False]) - 0.03, distance


def test_the_pipeline_embeds_a_tight_crop_as_its_subject(tight_crops, casia):
    pipe = Pipeline.create(embedder=casia, detector="mtcnn", device="cpu")
    results = pipe.run(tight_crops[0], subject_only=True)
    assert all(r.error is None for r in results) and sum(not r.faces for r in results) <= 0.02 * len(results)
    found = [k for k, r in enumerate(results) if r.faces]
    assert all(results[k].faces[0].is_subject for k in found)
    # the colour and grey crops of one image are one person: their embeddings lie close
    pairs = [(k, k + 1) for k in range(0, len(results), 2) if k in found and k + 1 in found]
    same = [np.linalg.norm(results[a].faces[0].embedding - results[b].faces[0].embedding) for a, b in pairs]
    assert np.median(same) < 0.8
