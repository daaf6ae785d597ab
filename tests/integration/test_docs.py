"""The documentation site builds with no warning (mkdocs.yml: strict, links and anchors checked),
its CLI reference holds every command's current ``--help`` text, and its recorded-results page a
table row for every JSON in bench/reported/."""

from __future__ import annotations

import argparse
import html
import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT

pytest.importorskip("mkdocs", reason="the docs extra is not installed: pip install '.[docs]'")

# docs/hooks.py renders --help at this width; the commands below run with the same.
COLUMNS = "100"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    return out


def page_text(path) -> str:
    """A built page's text as a reader sees it: tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text()))


def command_paths() -> list[list[str]]:
    """Every command and nested subcommand of ``facerec``, from its own parser."""
    from facerec.cli import build_parser

    paths = []

    def walk(prefix, parser):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    paths.append([*prefix, name])
                    walk([*prefix, name], sub)

    walk([], build_parser())
    return paths


def test_every_command_is_there_with_its_current_help(site):
    paths = command_paths()
    assert {"train", "infer", "verify", "cluster", "serve"} <= {p[0] for p in paths}
    index = page_text(site / "reference" / "cli" / "index.html")
    env = {**os.environ, "COLUMNS": COLUMNS}
    for path in paths:
        done = subprocess.run(
            [sys.executable, "-m", "facerec", *path, "--help"], capture_output=True, text=True, env=env, timeout=120
        )
        assert done.returncode == 0, (path, done.stderr)
        page = site / "reference" / "cli" / path[0] / "index.html"
        assert page.is_file(), f"no CLI page for facerec {path[0]}"
        assert done.stdout.strip() in page_text(page), f"the page of facerec {' '.join(path)} differs from its --help"
        if len(path) == 1:
            assert f"facerec {path[0]}" in index


def test_every_recorded_result_has_a_row(site):
    text = page_text(site / "benchmarks" / "recorded" / "index.html")
    for path in sorted((ROOT / "bench" / "reported").glob("*.json")):
        assert path.name in text, f"{path.name} is not on the recorded-results page"
    assert "have not been re-measured" in text  # the GPU rows are from 0.1


def test_the_api_reference_documents_the_front_door(site):
    text = page_text(site / "reference" / "api" / "index.html")
    for name in ("train", "identify_image", "verify", "detect", "embed", "load_model", "Gallery", "Pipeline"):
        assert re.search(rf"\b{name}\b", text), name
    assert "Embed a labelled dataset" in text  # a docstring, not just a name
