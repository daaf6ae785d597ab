"""The library as a new user meets it (#33): calls after the first answer at once (the models are
kept), PIL images are accepted, a gallery enrols and forgets people by name, a distance helper,
and short reprs. Real models (CASIA FaceNet, MTCNN) on real LFW photos."""

import time

import numpy as np
import pytest
from PIL import Image

import facerec

from conftest import LFW_HOME, lfw_image, require_lfw

pytestmark = pytest.mark.integration

OFFLINE = {"embedder": "facenet-casia", "detector": "mtcnn", "device": "cpu"}


def view2_pairs(n: int) -> list[tuple]:
    """The first ``n`` pairs of LFW View 2 (pairs.txt), as (path a, path b, same person): its
    first fold's 300 same-person pairs, then its 300 different-people pairs."""
    require_lfw()
    out = []
    for line in (LFW_HOME / "pairs.txt").read_text().splitlines()[1:]:
        f = line.split()
        if len(f) == 3:
            out.append((lfw_image(f[0], int(f[1])), lfw_image(f[0], int(f[2])), True))
        elif len(f) == 4:
            out.append((lfw_image(f[0], int(f[1])), lfw_image(f[2], int(f[3])), False))
        if len(out) == n:
            break
    return out


def test_100_verify_calls_after_the_first_take_under_20_s():
    """The first call loads the models; the other 99 reuse them (issue #33: 75 s before)."""
    facerec.clear_pipelines()
    pairs = view2_pairs(600)
    pairs = pairs[:50] + pairs[300:350]  # 50 of one person, 50 of two
    start = time.perf_counter()
    first = facerec.verify(str(pairs[0][0]), str(pairs[0][1]), **OFFLINE)
    first_s = time.perf_counter() - start
    answers = [first] + [facerec.verify(str(a), str(b), **OFFLINE) for a, b, _ in pairs[1:]]
    total = time.perf_counter() - start
    print(
        f"verify: first call {first_s:.2f} s, 100 calls {total:.1f} s ({(total - first_s) / 99 * 1000:.0f} ms each after)"
    )
    assert total <= 20.0, (first_s, total)
    right = sum(v.same == same for v, (_, _, same) in zip(answers, pairs))
    # the real answers, not just fast ones: at verify's FAR 1e-3, CASIA passes ~92% of one person's pairs
    assert right >= 93, right


def test_a_pil_image_is_accepted_wherever_a_path_is():
    path = lfw_image("Colin_Powell", 1)
    pil = Image.open(path)
    assert [f.box for f in facerec.detect(pil, device="cpu")] == [
        f.box for f in facerec.detect(str(path), device="cpu")
    ]
    np.testing.assert_allclose(facerec.embed(pil, **OFFLINE), facerec.embed(str(path), **OFFLINE), atol=1e-6)
    assert facerec.verify(pil, str(lfw_image("Colin_Powell", 2)), **OFFLINE).same


def test_a_gallery_enrols_and_forgets_people_by_name(tmp_path):
    for person in ("Tony_Blair", "Hugo_Chavez"):
        (tmp_path / "people" / person).mkdir(parents=True)
        for i in range(1, 6):
            (tmp_path / "people" / person / f"{i}.jpg").symlink_to(lfw_image(person, i))
    gallery = facerec.train(tmp_path / "people", **OFFLINE).gallery
    before = gallery.calibration.threshold
    stranger = lfw_image("Serena_Williams", 9)
    assert facerec.identify(str(stranger), gallery)[0].prediction.name == "unknown"
    done = gallery.enrol("Serena Williams", [str(lfw_image("Serena_Williams", i)) for i in range(1, 6)])
    assert (done.added, done.total, done.skipped) == (5, 5, [])
    assert gallery.enrol("Serena Williams", str(lfw_image("Serena_Williams", 1))).added == 0  # once is enough
    assert facerec.identify(str(stranger), gallery)[0].prediction.name == "Serena Williams"
    assert gallery.calibration.threshold != before  # the threshold follows the gallery's size
    assert gallery.remove("Serena Williams") == 5
    assert facerec.identify(str(stranger), gallery)[0].prediction.name == "unknown"
    blank = np.full((120, 120, 3), 128, np.uint8)
    with pytest.raises(facerec.NoFaceError):
        gallery.enrol("Nobody", [blank])
    assert "Nobody" not in dict(gallery.people())


def test_distance_between_embeddings():
    a = facerec.embed(str(lfw_image("Colin_Powell", 1)), **OFFLINE)[0]
    b = facerec.embed(str(lfw_image("Colin_Powell", 2)), **OFFLINE)[0]
    c = facerec.embed(str(lfw_image("Serena_Williams", 1)), **OFFLINE)[0]
    assert isinstance(facerec.distance(a, b), float)
    assert facerec.distance(a, b) < facerec.distance(a, c)
    assert facerec.distance(a, np.stack([b, c])).shape == (2,)
    assert facerec.distance(np.stack([a, b]), np.stack([b, c])).shape == (2, 2)
    assert facerec.distance(a, a) == pytest.approx(0, abs=1e-3)
    with pytest.raises(facerec.InputError):
        facerec.distance(a, a[:10])


def test_reprs_are_one_short_line():
    faces = facerec.Pipeline.create(**OFFLINE).run([str(lfw_image("Colin_Powell", 1))])
    for shown in (repr(faces[0]), repr(faces[0].faces[0])):
        assert "\n" not in shown and len(shown) < 200, shown
    assert "512 floats" in repr(faces[0].faces[0])
