"""The service with the fake detector and embedder (no weights): it identifies through the one
batched pipeline, with typed answers documented at /docs."""

import io

import numpy as np
import pytest
from PIL import Image

from facerec.api import train
from facerec.pipeline import Pipeline

from conftest import FakeDetector, person_image


@pytest.fixture
def client(tmp_path, synthetic_npz):
    from fastapi.testclient import TestClient

    from facerec.server import create_app

    model = tmp_path / "model.npz"
    train(synthetic_npz, embedder="fake", detector="fake", margin=4, device="cpu", model_path=model, far=0.2)
    with TestClient(create_app(model, device="cpu", workers=1), base_url="http://127.0.0.1") as c:
        yield c


def png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def test_identify_runs_through_the_batched_pipeline(client):
    service = client.app.state.service
    with service.pipelines.get() as pipe:
        assert isinstance(pipe, Pipeline) and isinstance(pipe.detector.inner, FakeDetector)
        assert pipe.config.detector == "fake" and pipe.config.margin == 4
    FakeDetector.batches.clear()
    r = client.post("/v1/identify", files={"image": ("p.png", png(person_image(3, 60)), "image/png")})
    assert r.status_code == 200, r.text
    assert FakeDetector.batches == [1]  # the fake detector saw the upload as a device batch
    (face,) = r.json()["faces"]
    assert face["pred"] == "person_3" and face["box"] == [6.4, 6.4, 57.6, 57.6] and face["topk"]


def test_openapi_documents_typed_answers(client):
    spec = client.get("/openapi.json").json()
    ok = spec["paths"]["/v1/identify"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["$ref"].endswith("/Identified")
    face = spec["components"]["schemas"]["IdentifiedFace"]["properties"]
    assert {"box", "score", "pred", "candidate", "distance", "votes", "topk"} <= set(face)
    err = spec["paths"]["/v1/identify"]["post"]["responses"]["415"]["content"]["application/json"]["schema"]
    assert err["$ref"].endswith("/ErrorBody")
    assert client.get("/healthz").json()["embedder"] == "fake"
