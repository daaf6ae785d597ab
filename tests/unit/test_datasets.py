"""The seed's .npz and folder-per-person datasets: valid ones load, malformed ones are named."""

import numpy as np
import pytest
from PIL import Image

from facerec.datasets import collect_inputs, label_from_filename, load_dataset, load_npz
from facerec.errors import DataError

from conftest import person_image


def _npz(tmp_path, **arrays):
    p = tmp_path / "d.npz"
    np.savez(p, **arrays)
    return p


def good(n=4):
    return dict(X=np.zeros((n, 8, 8, 3), np.uint8), y=np.arange(n) % 2, names=np.array(["a", "b"]))


def test_loads_valid_npz(tmp_path):
    ds = load_npz(_npz(tmp_path, **good()))
    assert len(ds.samples) == 4 and ds.names == ["a", "b"] and ds.name == "d"
    assert ds.samples[1].label == 1 and ds.samples[1].id == "d#1"


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(X=None), r"missing key\(s\) \['X'\]"),
        (dict(X=np.zeros((4, 8, 8, 3), np.float32)), "must be uint8"),
        (dict(X=np.zeros((4, 8, 8, 3, 1), np.uint8)), r"shape \(N, H, W, 3\)"),
        (dict(y=np.arange(3)), "4 images but y has 3 labels"),
        (dict(y=np.array([0, 1, 2, 5])), r"labels must lie in \[0, 1\]"),
        (dict(y=np.zeros(4, np.float32)), "integer"),
        (dict(names=np.array([1, 2])), "string array"),
    ],
)
def test_malformed_npz_is_named(tmp_path, change, message):
    arrays = good()
    for k, v in change.items():
        if v is None:
            del arrays[k]
        else:
            arrays[k] = v
    with pytest.raises(DataError, match=message):
        load_npz(_npz(tmp_path, **arrays))


def test_pickled_names_are_refused_not_unpickled(tmp_path):
    arrays = good()
    arrays["names"] = np.array(["a", "b"], dtype=object)
    with pytest.raises(DataError, match="Python objects"):
        load_npz(_npz(tmp_path, **arrays))


def test_not_an_npz(tmp_path):
    p = tmp_path / "x.npz"
    p.write_text("not a zip")
    with pytest.raises(DataError, match=r"x\.npz: not a readable"):
        load_npz(p)
    with pytest.raises(DataError, match="no such file"):
        load_dataset(tmp_path / "missing.npz")


def test_folder_per_person(tmp_path):
    for p in range(3):
        d = tmp_path / f"person{p}"
        d.mkdir()
        for v in range(2):
            Image.fromarray(person_image(p, v)).save(d / f"{v}.png")
    (tmp_path / "person0" / "notes.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    ds = load_dataset(tmp_path)
    assert ds.names == ["person0", "person1", "person2"]
    assert len(ds.samples) == 6 and ds.labels.tolist() == [0, 0, 1, 1, 2, 2]


def test_label_from_filename():
    assert label_from_filename("infer_images/test_0_y3.jpg") == 3
    assert label_from_filename("test_12_y41.png") == 41
    assert label_from_filename("holiday.jpg") is None


def test_collect_inputs_skips_non_images(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.jpg").write_bytes(b"x")
    (tmp_path / "b.PNG").write_bytes(b"x")
    (tmp_path / "readme.txt").write_text("x")
    images, skipped = collect_inputs(tmp_path)
    assert [p.name for p in images] == ["b.PNG", "a.jpg"]
    assert [p.name for p in skipped] == ["readme.txt"]
