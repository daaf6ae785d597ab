"""Closed-set identification on LFW: the 62 people with >= 20 images, 5 held-out images each,
MTCNN alignment for both train and infer. The README quotes these numbers with the same commands:

    facerec prepare-lfw --min-faces 20 --holdout-per-person 5 --out data/lfw20.npz --holdout-dir heldout
    facerec train --data data/lfw20.npz --embedder EMB --align mtcnn
    facerec infer --input heldout --model models/knn_EMB_lfw20.npz --align mtcnn
"""
import pytest

from facerec.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.integration]

FLOORS = {"facenet-casia": 0.975, "dlib": 0.985}


@pytest.fixture(scope="module")
def lfw20(lfw_env, tmp_path_factory, monkeypatch_module):
    work = tmp_path_factory.mktemp("closed_set")
    for key in ("SCIKIT_LEARN_DATA", "FACEREC_HOME"):
        monkeypatch_module.setenv(key, lfw_env[key])
    assert main(["prepare-lfw", "--min-faces", "20", "--holdout-per-person", "5", "--out", str(work / "lfw20.npz"),
                 "--holdout-dir", str(work / "heldout"), "--seed", "0"]) == 0
    return work


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.mark.parametrize("embedder", sorted(FLOORS))
def test_closed_set_accuracy_floor(lfw20, embedder, capsys):
    models, art = lfw20 / "models", lfw20 / "art"
    assert main(["train", "--data", str(lfw20 / "lfw20.npz"), "--embedder", embedder, "--align", "mtcnn",
                 "--out_dir", str(models), "--art_dir", str(art), "--quiet"]) == 0
    capsys.readouterr()
    code = main(["infer", "--input", str(lfw20 / "heldout"), "--model", str(models / f"knn_{embedder}_lfw20.npz"),
                 "--align", "mtcnn", "--art_dir", str(art), "--quiet", "--closed-set"])
    out = capsys.readouterr().out
    assert code == 0
    line = next(l for l in out.splitlines() if l.startswith("Accuracy: "))
    correct, total = map(int, line.split()[1].split("/"))
    print(f"{embedder}: {line}")
    assert total == 310
    assert correct / total >= FLOORS[embedder], line
