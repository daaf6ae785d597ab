"""Evaluation protocols on synthetic embeddings: the arithmetic, checked by hand."""

import numpy as np
import pytest

from facerec.errors import DataError
from facerec.evaluate.identification import closed_set, open_set
from facerec.evaluate.pairs import best_threshold, evaluate_pairs, read_pairs

from conftest import clusters


def test_best_threshold_maximises_accuracy():
    dist = np.array([0.1, 0.2, 0.35, 0.5, 0.9])
    same = np.array([True, True, False, True, False])
    t = best_threshold(dist, same)
    acc = np.mean((dist <= t) == same)
    assert acc == 0.8 and (0.2 < t < 0.35 or 0.5 < t < 0.9)


def test_read_pairs(tmp_path):
    f = tmp_path / "pairs.txt"
    f.write_text("2\t1\nA\t1\t2\nA\t1\tB\t3\nC\t4\t5\nC\t1\tD\t1\n")
    pairs = read_pairs(f, "/lfw")
    assert [p.fold for p in pairs] == [0, 0, 1, 1] and [p.same for p in pairs] == [True, False, True, False]
    assert pairs[1].b == "/lfw/B/B_0003.jpg"
    f.write_text("2\t1\nA\t1\t2\n")
    with pytest.raises(DataError, match="expected 4 pairs"):
        read_pairs(f, "/lfw")


def test_pairs_protocol_on_separable_and_random_data():
    x, y = clusters(people=40, per=4, seed=3)
    rng = np.random.default_rng(0)
    pairs, emb = [], {}
    for i, v in enumerate(x):
        emb[str(i)] = v
    from facerec.evaluate.pairs import Pair

    for fold in range(4):
        for _ in range(20):
            p = rng.integers(40)
            a, b = rng.choice(4, 2, replace=False)
            pairs.append(Pair(fold, str(p * 4 + a), str(p * 4 + b), True))
            p, q = rng.choice(40, 2, replace=False)
            pairs.append(Pair(fold, str(p * 4), str(q * 4 + 1), False))
    r = evaluate_pairs(pairs, emb)
    assert r["accuracy_mean"] > 0.95 and r["auc"] > 0.98 and len(r["fold_accuracy"]) == 4
    noise = {k: v for k, v in zip(emb, np.random.default_rng(1).normal(size=x.shape).astype(np.float32))}
    noise = {k: v / np.linalg.norm(v) for k, v in noise.items()}
    r = evaluate_pairs(pairs, noise, subtract_mean=True)
    assert 0.3 < r["accuracy_mean"] < 0.7 and 0.3 < r["auc"] < 0.7


def test_closed_set_identification():
    x, y = clusters(people=10, per=6, seed=4)
    r = closed_set(x, y, [f"p{i}" for i in range(10)], folds=3)
    assert r["top1"] > 0.95 and r["top5"] >= r["top1"] and r["people"] == 10 and r["images"] == 60
    assert len(r["per_person"]) == 10


def test_open_set_dir_at_fpir():
    known, ky = clusters(people=20, per=10, seed=5)
    strangers, _ = clusters(people=300, per=1, seed=6)
    x = np.concatenate([known, strangers])
    y = np.concatenate([ky, 100 + np.arange(300)])
    r = open_set(x, y, min_images=10, trials=3)
    assert r["known_people"] == 20 and r["genuine_probes"] == 100 and r["impostor_probes"] == 300
    assert r["dir_at_fpir"]["0.01"] > 0.8 and r["dir_at_fpir"]["0.01"] >= r["dir_at_fpir"]["0.001"]
    # what train + infer would do on the same splits (100 enrolled: FAR 5% is the finest calibratable)
    d = open_set(x, y, min_images=10, trials=3, far=0.05)["deployed"]
    assert d["far"] == 0.05 and d["impostors_unknown"] > 0.9 and d["known_recognised"] > 0.8, d
    assert d["impostors_unknown_min"] <= d["impostors_unknown"]
    loose = open_set(x, y, min_images=10, trials=3, far=0.5)["deployed"]
    assert loose["threshold"] > d["threshold"] and loose["impostors_unknown"] < d["impostors_unknown"]
    with pytest.raises(DataError):
        open_set(known, ky, min_images=10)  # no impostors


def test_single_fold_chooses_its_threshold_on_itself():
    from facerec.evaluate.pairs import Pair

    x, _ = clusters(people=4, per=2, seed=7)
    emb = {str(i): v for i, v in enumerate(x)}
    pairs = [Pair(0, "0", "1", True), Pair(0, "2", "3", True), Pair(0, "0", "2", False), Pair(0, "4", "7", False)]
    r = evaluate_pairs(pairs, emb)
    assert r["threshold_on_same_fold"] is True and len(r["fold_accuracy"]) == 1
