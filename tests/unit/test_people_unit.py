"""People discovery with the fake detector and embedder (fast): the measures, the algorithms, the
quality gate, and the people folder's promises (names, merges and rejections that last)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from facerec.cli import main
from facerec.errors import InputError
from facerec.people.algorithms import ALGORITHMS, chinese_whispers, cluster, graph_average_linkage, knn_graph, relabel
from facerec.people.metrics import UNGROUPED, bcubed, pairwise, scores
from facerec.people.quality import QualityGate, sharpness, yaw

from conftest import person_image

THR = 0.15  # the fake embedder's people sit further apart than this; one person's images nearer


# -- the measures -----------------------------------------------------------------------------------
def test_pairwise_and_bcubed_by_hand():
    true = [0, 0, 0, 1, 1]
    pred = [5, 5, 7, 7, 7]  # one of person 0 joined person 1
    # pairs: found {01, 23, 24, 34} (4), correct {01, 34} (2); true pairs {01, 02, 12, 34} (4)
    assert pairwise(true, pred) == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5})
    b = bcubed(true, pred)
    # precision per face: 1, 1, 1/3, 2/3, 2/3; recall: 2/3, 2/3, 1/3, 1, 1
    assert b["precision"] == pytest.approx((1 + 1 + 1 / 3 + 2 / 3 + 2 / 3) / 5)
    assert b["recall"] == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 1 + 1) / 5)


def test_ungrouped_faces_count_as_singletons():
    true = [0, 0, 1, 1]
    s = scores(true, [UNGROUPED] * 4)
    assert s["clusters"] == 0 and s["ungrouped"] == 1.0
    assert s["pairwise"]["precision"] == 1.0 and s["pairwise"]["recall"] == 0.0
    assert s["bcubed"]["precision"] == 1.0 and s["bcubed"]["recall"] == 0.5
    perfect = scores(true, [3, 3, UNGROUPED, UNGROUPED])
    assert perfect["pairwise"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3})


# -- the algorithms ---------------------------------------------------------------------------------
def blobs(people=40, per=(1, 9), d=32, spread=0.08, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(people, d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    y = np.repeat(np.arange(people), rng.integers(*per, people))
    x = centres[y] + rng.normal(scale=spread / np.sqrt(d), size=(len(y), d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), y


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_algorithm_finds_well_separated_people(algorithm):
    x, y = blobs()
    labels = cluster(x, 0.5, algorithm=algorithm, min_faces=1 if algorithm != "hdbscan" else 2)
    s = scores(y, labels)
    floor = 0.9 if algorithm == "hdbscan" else 1.0  # density alone, no threshold (see algorithms.cluster)
    assert s["pairwise"]["precision"] >= floor and s["pairwise"]["recall"] >= floor


def test_a_threshold_from_nowhere_is_refused():
    x, _ = blobs()
    with pytest.raises(InputError, match="positive distance"):
        cluster(x, 0.0)
    with pytest.raises(InputError, match="unknown clustering algorithm"):
        cluster(x, 0.5, algorithm="kmeans")


def test_min_faces_leaves_small_groups_ungrouped_and_labels_go_biggest_first():
    labels = relabel(np.array([4, 4, 9, 9, 9, 7, -1]), min_faces=2)
    assert labels.tolist() == [1, 1, 0, 0, 0, -1, -1]


def test_average_linkage_does_not_chain_what_single_links_would():
    """A chain of faces each near the next but its ends far apart: Chinese whispers and average
    linkage at the same threshold; average linkage must not make the ends one person."""
    t = np.linspace(0, 1.2, 30)
    x = np.stack([np.cos(t), np.sin(t), np.zeros_like(t)], 1).astype(np.float32)
    avg = cluster(x, 0.3, algorithm="average", min_faces=1)
    assert avg[0] != avg[-1]
    graph = graph_average_linkage(x, *knn_graph(x), 0.3)  # the path for big collections: no chaining either
    assert graph[0] != graph[-1] and len(np.unique(graph)) >= len(np.unique(avg)) // 2


def test_graph_average_linkage_agrees_with_the_exact_one():
    x, y = blobs(people=200, seed=3)
    exact = relabel(cluster(x, 0.5, algorithm="average", min_faces=1), 1)
    graph = relabel(graph_average_linkage(x, *knn_graph(x), 0.5), 1)
    assert scores(y, graph)["pairwise"]["f1"] == scores(y, exact)["pairwise"]["f1"] == 1.0


def test_chinese_whispers_joins_linked_faces_only():
    x, y = blobs(people=30, seed=5)
    labels = chinese_whispers(*knn_graph(x), 0.5)
    assert scores(y, relabel(labels, 1))["pairwise"]["f1"] == 1.0


def test_knn_graph_never_lists_a_face_as_its_own_neighbour():
    x, _ = blobs(people=10)
    x = np.concatenate([x, x[:3]])  # exact duplicates tie with themselves
    nbr, dist = knn_graph(x, 5)
    assert not (nbr == np.arange(len(x))[:, None]).any()
    assert dist.shape == (len(x), 5) and (np.diff(dist, axis=1) >= -1e-6).all()


# -- the quality gate -------------------------------------------------------------------------------
def face_like(size=128, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, (size, size, 3)).astype(np.uint8)
    return np.asarray(Image.fromarray(img).resize((size, size), Image.NEAREST))


def test_the_gate_names_why_it_rejects():
    import cv2

    gate = QualityGate()
    img = face_like()
    marks = np.array([[40, 50], [88, 50], [64, 70], [45, 95], [83, 95]], np.float32)
    ok = gate.measure(img, (10, 10, 118, 118), 0.99, marks)
    assert gate.reason(ok) is None
    assert "too small" in gate.reason(gate.measure(img, (10, 10, 30, 30), 0.99, marks))
    assert "cut off" in gate.reason(gate.measure(img, (-60, 10, 60, 118), 0.99, marks))
    # a face that fills the picture (an ID photo, a cropped face) is not cut, though its box overshoots
    portrait = gate.measure(img, (-12, -20, 136, 132), 0.99, marks)
    assert portrait["inside"] == 1.0 and gate.reason(portrait) is None
    assert "unsure" in gate.reason(gate.measure(img, (10, 10, 118, 118), 0.5, marks))
    blurred = cv2.GaussianBlur(img, (0, 0), 4)
    assert "blurred" in gate.reason(gate.measure(blurred, (10, 10, 118, 118), 0.99, marks))
    turned = marks.copy()
    turned[2, 0] = 92  # the nose past an eye: a head turned well over 45 degrees
    assert "turned away" in gate.reason(gate.measure(img, (10, 10, 118, 118), 0.99, turned))
    assert gate.measure(img, (10, 10, 118, 118), 0.99, None)["yaw"] is None  # no landmarks: no pose check


def test_sharpness_and_yaw_measure_what_they_say():
    img = face_like()
    import cv2

    sharp = sharpness(img, (0, 0, 128, 128))
    assert sharpness(np.full_like(img, 90), (0, 0, 128, 128)) == 0.0
    assert sharp > 10 * sharpness(cv2.GaussianBlur(img, (0, 0), 3), (0, 0, 128, 128))
    assert yaw(np.array([[0, 0], [10, 0], [5, 5], [0, 0], [0, 0]], float)) == 0.0
    assert yaw(np.array([[0, 0], [10, 0], [10, 5], [0, 0], [0, 0]], float)) == pytest.approx(0.5)
    with pytest.raises(InputError):
        QualityGate(min_size=-1)


# -- the people folder ------------------------------------------------------------------------------
def photos(folder, people, per, start=0, size=96):
    folder.mkdir(parents=True, exist_ok=True)
    for p in people:
        for v in range(start, start + per):
            Image.fromarray(person_image(p, v, size)).save(folder / f"p{p}_{v}.png")
    return folder


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


FAKE = ("--embedder", "fake", "--align", "fake", "--alignment", "box", "--no-cache", "--device", "cpu")


def clusters_of(folder):
    return json.loads((folder / "clusters.json").read_text())


def test_cluster_groups_people_and_writes_an_offline_sheet(tmp_path, capsys):
    out = tmp_path / "people"
    code, text, err = run(
        capsys, "cluster", photos(tmp_path / "a", [1, 2, 3], 4), "--out", out, "--threshold", THR, *FAKE, "--quiet"
    )
    assert code == 0, err
    a = clusters_of(out)
    groups = sorted(sorted(f["file"].rsplit("/", 1)[1].split("_")[0] for f in fs) for fs in a["clusters"].values())
    assert groups == [["p1"] * 4, ["p2"] * 4, ["p3"] * 4]
    face = next(iter(a["clusters"].values()))[0]
    assert set(face) >= {"face_id", "file", "box", "quality", "distance"}
    assert a["threshold_source"].startswith(f"{THR:.4f} (explicit")
    sheet = (out / "index.html").read_text()
    assert sheet.count("data:image/jpeg;base64,") == 12 and "http" not in sheet.replace("http-equiv", "")
    assert "3 clusters" in text


def test_names_merges_and_rejections_last_across_runs(tmp_path, capsys):
    out, model = tmp_path / "people", tmp_path / "gallery.npz"
    assert (
        run(
            capsys,
            "cluster",
            photos(tmp_path / "a", [1, 2, 3, 4], 4),
            "--out",
            out,
            "--threshold",
            THR,
            *FAKE,
            "--quiet",
        )[0]
        == 0
    )
    first = clusters_of(out)
    by_person = {fs[0]["file"].rsplit("/", 1)[1].split("_")[0]: cid for cid, fs in first["clusters"].items()}

    code, text, err = run(capsys, "people", "name", by_person["p1"], "Ada Lovelace", "--model", model, "--out", out)
    assert code == 0 and model.is_file() and "4 faces enrolled" in text, err
    assert run(capsys, "people", "merge", by_person["p2"], by_person["p3"], "--out", out)[0] == 0
    rejected = clusters_of(out)["clusters"][by_person["p4"]][0]["face_id"]
    assert run(capsys, "people", "reject", by_person["p4"], rejected, "--out", out)[0] == 0

    # more photos of everyone, and a new person: the model comes from the folder
    more = photos(tmp_path / "b", [1, 2, 3, 4, 5], 3, start=10)
    code, _, err = run(
        capsys, "cluster", more, "--out", out, "--threshold", THR, "--no-cache", "--device", "cpu", "--quiet"
    )
    assert code == 0, err
    a = clusters_of(out)
    assert list(a["people"]) == ["Ada Lovelace"]
    ada = {f["file"].rsplit("/", 1)[1] for f in a["people"]["Ada Lovelace"]}
    assert ada == {f"p1_{v}.png" for v in (0, 1, 2, 3, 10, 11, 12)}  # the new photos found her; nobody else
    assert by_person["p1"] not in a["clusters"]
    merged = {f["file"].rsplit("/", 1)[1][:2] for f in a["clusters"][by_person["p2"]]}
    assert merged == {"p2", "p3"} and by_person["p3"] not in a["clusters"]  # still one, under the kept id
    p4 = a["clusters"][by_person["p4"]]  # the same id as before
    assert {f["file"].rsplit("/", 1)[1][:2] for f in p4} == {"p4"} and rejected not in {f["face_id"] for f in p4}
    assert any(f["face_id"] == rejected and "not this person" in f["reason"] for f in a["ungrouped"])
    new = [cid for cid in a["clusters"] if cid not in first["clusters"]]
    assert len(new) == 1 and int(new[0]) > max(int(c) for c in first["clusters"])


def test_the_same_photos_again_add_no_faces(tmp_path, capsys):
    out = tmp_path / "people"
    src = photos(tmp_path / "a", [1, 2], 4)
    run(capsys, "cluster", src, "--out", out, "--threshold", THR, *FAKE, "--quiet")
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in src.iterdir():
        (copy / ("renamed_" + f.name)).write_bytes(f.read_bytes())
    code, text, _ = run(capsys, "cluster", copy, "--out", out, "--threshold", THR, *FAKE)
    assert code == 0 and "0 new faces (8 in" in text


def test_the_gate_keeps_junk_out_and_says_why(tmp_path, capsys):
    src = photos(tmp_path / "a", [1], 4)
    Image.fromarray(person_image(1, 99, 24)).save(src / "tiny.png")  # a 19-px face
    code, _, err = run(capsys, "cluster", src, "--out", tmp_path / "people", "--threshold", THR, *FAKE, "--quiet")
    assert code == 0, err
    a = clusters_of(tmp_path / "people")
    assert [r["file"].rsplit("/", 1)[1] for r in a["rejected"]] == ["tiny.png"]
    assert a["rejected"][0]["reason"].startswith("too small")
    clustered = {f["file"] for fs in a["clusters"].values() for f in fs}
    assert not any(f.endswith("tiny.png") for f in clustered)


def test_bad_requests_get_clear_errors(tmp_path, capsys):
    out = tmp_path / "people"
    run(capsys, "cluster", photos(tmp_path / "a", [1], 4), "--out", out, "--threshold", THR, *FAKE, "--quiet")
    code, _, err = run(capsys, "people", "name", "999", "Ada", "--model", tmp_path / "g.npz", "--out", out)
    assert code == 2 and "no cluster 999" in err
    code, _, err = run(capsys, "cluster", tmp_path / "a", "--out", out, "--threshold", "near", *FAKE)
    assert code == 2 and "--threshold" in err
    # the folder's faces came from the fake pipeline: another one is refused, the folder untouched
    before = (out / "faces.npz").read_bytes()
    code, _, err = run(
        capsys, "cluster", tmp_path / "a", "--out", out, *FAKE[:4], "--alignment", "five-point", "--no-cache"
    )
    assert code == 2 and "another pipeline" in err and (out / "faces.npz").read_bytes() == before
    # without --model the names go into the folder's own gallery (no flag needed, issue #33)
    code, got, err = run(capsys, "people", "name", "1", "Ada", "--out", out)
    assert code == 0 and (out / "gallery.npz").is_file() and "gallery.npz (a new gallery)" in got, err


def test_a_second_writer_is_refused_while_one_works(tmp_path, capsys):
    from facerec.people.book import Book

    out = tmp_path / "people"
    src = photos(tmp_path / "a", [1], 4)
    with Book(out).writing():
        code, _, err = run(capsys, "cluster", src, "--out", out, "--threshold", THR, *FAKE, "--quiet")
    assert code == 2 and "another facerec is changing" in err
    assert not (out / "clusters.json").exists()
    assert run(capsys, "cluster", src, "--out", out, "--threshold", THR, *FAKE, "--quiet")[0] == 0  # free again


def test_rejecting_a_clusters_last_face_removes_it_and_names_stay_in_one_gallery(tmp_path, capsys):
    out, model = tmp_path / "people", tmp_path / "gallery.npz"
    src = photos(tmp_path / "a", [1, 2, 3], 3)
    run(capsys, "cluster", src, "--out", out, "--threshold", THR, "--min-faces", "1", *FAKE, "--quiet")
    (cid, faces), (second, _), (third, _) = list(clusters_of(out)["clusters"].items())
    for f in faces:
        assert run(capsys, "people", "reject", cid, f["face_id"], "--out", out)[0] == 0
    assert cid not in clusters_of(out)["clusters"]
    assert run(capsys, "people", "name", second, "Ada", "--model", model, "--out", out)[0] == 0
    code, _, err = run(capsys, "people", "name", third, "Bob", "--model", tmp_path / "elsewhere.npz", "--out", out)
    assert code == 2 and "its people are named in" in err and not (tmp_path / "elsewhere.npz").exists()
    assert third in clusters_of(out)["clusters"]  # refused: nothing changed


def test_a_merged_then_named_face_rejected_from_its_person_is_in_one_place_only(tmp_path, capsys):
    out, model = tmp_path / "people", tmp_path / "gallery.npz"
    src = photos(tmp_path / "a", [1, 2], 4)
    run(capsys, "cluster", src, "--out", out, "--threshold", THR, *FAKE, "--quiet")
    a, b = list(clusters_of(out)["clusters"])
    run(capsys, "people", "merge", a, b, "--out", out)
    run(capsys, "people", "name", a, "Ada", "--model", model, "--out", out)
    face = clusters_of(out)["people"]["Ada"][0]["face_id"]
    assert run(capsys, "people", "reject", "Ada", face, "--out", out)[0] == 0
    assert run(capsys, "cluster", src, "--out", out, "--threshold", THR, *FAKE, "--quiet")[0] == 0
    r = clusters_of(out)
    places = [k for k, fs in [*r["clusters"].items(), *r["people"].items()] if face in {f["face_id"] for f in fs}]
    places += ["ungrouped"] if face in {f["face_id"] for f in r["ungrouped"]} else []
    assert len(places) == 1 and places != ["Ada"]
    named = {f["face_id"] for f in r["people"]["Ada"]}
    assert not named & {f["face_id"] for fs in r["clusters"].values() for f in fs}
