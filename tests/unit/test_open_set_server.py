"""The red-team case of the open-set issue, through the service with each store: one photo enrolled
under eight names in a 568-face gallery must not collapse the threshold, every answer must be
true to what was stored, and the gallery must load after a restart (fake detector and embedder)."""

from __future__ import annotations

import numpy as np
import pytest

from facerec.api import load_model, train

from conftest import BASE, person_image, png

PEOPLE, PHOTOS = 142, 4  # 568 faces: calibrated on the gallery's own distances


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("poison") / "people.npz"
    X = np.stack([person_image(p, v) for p in range(PEOPLE) for v in range(PHOTOS)])
    np.savez(path, X=X, y=np.repeat(np.arange(PEOPLE), PHOTOS), names=np.array([f"p{p}" for p in range(PEOPLE)]))
    return path


@pytest.fixture(params=["file", "milvus-lite"])
def model(request, tmp_path, dataset):
    where = {"model_path": tmp_path / "g.npz"} if request.param == "file" else {"store": f"milvus:{tmp_path}/g.db"}
    train(dataset, embedder="fake", detector="fake", margin=4, device="cpu", art_dir=None, **where)
    return str(where.get("model_path") or where["store"])


def serve(model):
    from fastapi.testclient import TestClient

    from facerec.server import create_app

    return TestClient(create_app(model, device="cpu", workers=1, sync_s=0), base_url=BASE)


def threshold_of(client) -> tuple[float, str]:
    r = client.post("/v1/identify", files={"image": ("q.png", png(person_image(7, 500)), "image/png")})
    assert r.status_code == 200, r.text
    body = r.json()
    return body["threshold"], body["threshold_promise"]


def test_one_photo_under_eight_names_leaves_the_threshold_and_the_answers_true(model):
    before = load_model(model)
    assert len(before) == PEOPLE * PHOTOS and before.calibration.source == "calibrated"
    photo = png(person_image(3, 0))  # a photo already enrolled as p3
    with serve(model) as client:
        t0, promise = threshold_of(client)
        assert "about 1 in 100 strangers" in promise
        answers = []
        for i in range(8):
            r = client.post(f"/v1/people/alias{i}/faces", files=[("images", ("same.png", photo, "image/png"))])
            answers.append(r)
        assert all(r.status_code == 201 for r in answers), [r.text for r in answers]
        assert all(r.json()["added"] == 1 and r.json()["images"] == 1 for r in answers)
        assert any("near-copies" in w for r in answers for w in r.json()["warnings"])
        t1, _ = threshold_of(client)
        assert t1 == pytest.approx(t0, rel=0.10)
        listed = {p["name"]: p["images"] for p in client.get("/v1/people").json()["people"]}
    stored = load_model(model)  # what the store holds is what the requests said
    assert {f"alias{i}" for i in range(8)} <= {n for n, _ in stored.people()}
    assert listed == dict(stored.people()) and len(stored) == PEOPLE * PHOTOS + 8
    with serve(model) as client:  # a restart: the gallery loads and keeps its threshold
        t2, _ = threshold_of(client)
    assert t2 == pytest.approx(t1, rel=1e-6)
