"""The group photo with the real models: one of its people, enrolled from their face in it, is
named at most once among its faces (the open-set red-team case with the fake models:
unit/test_open_set_server.py)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image


def test_a_person_of_the_group_photo_is_named_at_most_once(tmp_path):
    """The group photo against a gallery holding one of its people (enrolled from their face in
    it): among its faces that person is named once, however many others lie within the threshold."""
    import facerec

    from conftest import SHARED_DATA

    photo = SHARED_DATA / "video" / "multiface.jpg"
    if not photo.is_file():
        pytest.skip(f"{photo} not found")
    faces = facerec.detect(str(photo), detector="mtcnn", device="cpu")
    assert len(faces) >= 5
    image = np.asarray(Image.open(photo).convert("RGB"))
    x1, y1, x2, y2 = (int(v) for v in faces[0].box)
    w, h = x2 - x1, y2 - y1
    crop = image[max(y1 - h // 2, 0) : y2 + h // 2, max(x1 - w // 2, 0) : x2 + w // 2]
    (tmp_path / "people" / "Someone").mkdir(parents=True)
    Image.fromarray(crop).save(tmp_path / "people" / "Someone" / "face.png")
    report = facerec.train(
        tmp_path / "people", embedder="facenet-casia", detector="mtcnn", device="cpu", model_path=tmp_path / "g.npz"
    )
    assert report.enrolled == 1 and report.gallery.calibration.source == "reference"
    results = facerec.identify_image(str(photo), report.gallery)
    named = [r for r in results if r.prediction.name == "Someone"]
    assert len(named) == 1, [(r.prediction.name, r.prediction.distance) for r in results]
    assert named[0].prediction.distance < 0.5  # the face itself, not a look-alike
    # closed set, every face's nearest person is Someone: still named once, the others say why not
    closed = facerec.identify_image(str(photo), report.gallery, closed_set=True)
    assert [r.prediction.candidate for r in closed] == ["Someone"] * len(closed)
    assert sum(r.prediction.name == "Someone" for r in closed) == 1
    assert all("nearer match of another face" in r.prediction.note for r in closed if r.prediction.unknown)
