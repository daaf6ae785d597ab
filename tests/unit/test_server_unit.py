"""The service with the fake detector and embedder (no weights): it identifies through the one
batched pipeline, with typed answers documented at /docs."""

from facerec.pipeline import Pipeline

from conftest import FakeDetector, person_image, png


def test_identify_runs_through_the_batched_pipeline(fake_client):
    service = fake_client.app.state.service
    with service.pipelines.get() as pipe:
        assert isinstance(pipe, Pipeline) and isinstance(pipe.detector.inner, FakeDetector)
        assert pipe.config.detector == "fake" and pipe.config.margin == 4
    FakeDetector.batches.clear()
    r = fake_client.post("/v1/identify", files={"image": ("p.png", png(person_image(3, 60)), "image/png")})
    assert r.status_code == 200, r.text
    assert FakeDetector.batches == [1]  # the fake detector saw the upload as a device batch
    (face,) = r.json()["faces"]
    assert face["pred"] == "person_3" and face["box"] == [12.8, 12.8, 51.2, 51.2] and face["topk"]


def test_openapi_documents_typed_answers(fake_client):
    spec = fake_client.get("/openapi.json").json()
    ok = spec["paths"]["/v1/identify"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["$ref"].endswith("/Identified")
    face = spec["components"]["schemas"]["IdentifiedFace"]["properties"]
    assert {"box", "score", "pred", "candidate", "distance", "votes", "topk"} <= set(face)
    err = spec["paths"]["/v1/identify"]["post"]["responses"]["415"]["content"]["application/json"]["schema"]
    assert err["$ref"].endswith("/ErrorBody")
    assert fake_client.get("/healthz").json()["embedder"] == "fake"
