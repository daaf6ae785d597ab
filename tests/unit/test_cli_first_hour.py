"""The command line as a new user meets it (#33): inputs checked before any model loads, each
error said once, "did you mean" for a mistyped command or flag, --brief and --topk 0, names as
people write them."""

import time

import pytest

from facerec.cli import main

from conftest import FAKE_INSTANCES, person_image, png


@pytest.fixture
def cli(capsys):
    def run(*argv):
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_a_missing_photo_is_refused_at_once_before_any_model_loads(cli, fake_model):
    before = len(FAKE_INSTANCES)
    start = time.perf_counter()
    code, out, err = cli("infer", "missing.jpg", "--model", fake_model)
    assert time.perf_counter() - start < 1.0
    assert code == 2 and err.strip() == "error: missing.jpg: no such file or folder" and out == ""
    assert len(FAKE_INSTANCES) == before  # no embedder was built


@pytest.mark.parametrize(
    ("flag", "value", "said"),
    [
        ("--weights-dir", "/nonexistent", "--weights-dir /nonexistent: no such folder"),
        ("--weights", "/nope.pt", "--weights /nope.pt: no such file"),
    ],
)
def test_a_missing_weights_path_is_refused_before_any_model_loads(cli, fake_model, tmp_path, flag, value, said):
    photo = tmp_path / "a.png"
    photo.write_bytes(png(person_image(0, 0)))
    before = len(FAKE_INSTANCES)
    code, _, err = cli("infer", photo, "--model", fake_model, flag, value)
    assert code == 2 and said in err
    assert len(FAKE_INSTANCES) == before


@pytest.mark.parametrize(
    ("argv", "suggestion"),
    [
        (["infer", "a.jpg", "--model", "m.npz", "--topkk", "3"], "did you mean --topk?"),
        (["infr", "a.jpg"], "did you mean infer?"),
        (["verify", "a.jpg", "b.jpg", "--thresold", "1"], "did you mean --threshold?"),
        (["people", "nme", "1", "Ada"], "did you mean name?"),
    ],
)
def test_a_mistyped_command_or_flag_suggests_the_right_one(cli, argv, suggestion):
    code, _, err = cli(*argv)
    assert code == 2 and suggestion in err, err


def _photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir(exist_ok=True)
    (folder / "p0.png").write_bytes(png(person_image(0, 20)))
    (folder / "wide.png").write_bytes(png(person_image(1, 21, size=64).repeat(2, axis=1)))  # two faces
    (folder / "broken.jpg").write_bytes(b"not an image")
    return folder


def test_brief_is_one_line_per_face_with_the_name_as_written_and_how_sure(cli, fake_model, tmp_path):
    code, out, err = cli("infer", _photos(tmp_path), "--model", fake_model, "--brief", "--quiet")
    lines = out.strip().splitlines()
    assert code == 1  # the broken file: some inputs failed
    assert len(lines) == 3, out  # p0 (one face) and wide (two faces); broken.jpg only on stderr
    assert lines[0].startswith(str(tmp_path / "photos" / "p0.png") + ": ")
    assert any(w in lines[0] for w in ("(very likely)", "(likely)", "(uncertain)", "unknown (looks most like"))
    assert "face 1 of 2" in lines[1] and "face 2 of 2" in lines[2]
    assert err.count("broken.jpg") == 1 and "broken.jpg" not in out  # said once


def test_topk_0_prints_the_answers_without_evidence(cli, fake_model, tmp_path):
    code, out, _ = cli("infer", _photos(tmp_path), "--model", fake_model, "--topk", "0", "--quiet")
    assert code == 1
    assert " face 0 " in out and "    1. " not in out
    code, out, _ = cli("infer", _photos(tmp_path), "--model", fake_model, "--topk", "2", "--quiet")
    assert "    2. " in out and "    3. " not in out


def test_names_are_shown_as_people_write_them(cli, fake_model, tmp_path):
    from facerec.names import shown_name

    assert shown_name("Colin_Powell") == "Colin Powell"
    code, out, _ = cli("infer", _photos(tmp_path), "--model", fake_model, "--quiet")
    assert "_" not in "".join(line.split(":", 1)[1] for line in out.splitlines() if " face " in line)
