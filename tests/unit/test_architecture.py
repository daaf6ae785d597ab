"""The package's shape: stages in layers with no upward import and no import loop (the order is
read from docs/architecture.md, its one place), and a detector added the documented way — a
module's class and one ``register_detector`` line — working through the pipeline and the CLI."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

from facerec.detect import Detection, Detector, detector_names, register_detector
from facerec.detect.registry import _REGISTRY as DETECTORS
from facerec.embed.registry import _REGISTRY as EMBEDDERS

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "facerec"


def layer_table() -> dict[str, int]:
    """docs/architecture.md's "Layers" table: top-level package or module -> its layer."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("\n## Layers\n", 1)[1].split("\n## ", 1)[0]
    layers = {}
    for row in re.findall(r"^\| (\d+) \| (.+) \|$", section, re.M):
        for name in re.findall(r"`([\w.]+)`", row[1]):
            assert name not in layers, f"{name} is in two layers of docs/architecture.md"
            layers[name] = int(row[0])
    assert layers, "docs/architecture.md has no Layers table"
    return layers


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """facerec module -> the facerec modules it imports, at top level or inside functions."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                candidates = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                candidates = [f"{base}.{a.name}" for a in node.names] + [base]
            else:
                continue
            for c in candidates:
                while c and c not in modules and "." in c:
                    c = c.rpartition(".")[0]
                if c in modules and c != name:
                    targets.add(c)
                    break
        graph[name] = targets
    return graph


def top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_package_has_a_layer():
    layers = layer_table()
    missing = sorted({top(m) for m in import_graph()} - set(layers))
    assert not missing, f"add these to the Layers table of docs/architecture.md: {missing}"


def test_no_module_imports_a_higher_layer():
    layers = layer_table()
    upward = [
        f"{a} (layer {layers[top(a)]}) imports {b} (layer {layers[top(b)]})"
        for a, targets in sorted(import_graph().items())
        for b in sorted(targets)
        if layers[top(b)] > layers[top(a)]
    ]
    assert not upward, "\n".join(upward)


def test_no_import_loops():
    graph = import_graph()
    index, low, stack, on_stack, loops = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                loops.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not loops, f"import loops: {loops}"


def test_the_checks_see_an_upward_import_and_a_loop(tmp_path, monkeypatch):
    """The walker is not blind: a planted upward import and a planted loop are found."""
    fake = tmp_path / "facerec"
    (fake / "detect").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "errors.py").write_text("from facerec.api import x\n")  # layer 1 -> 10
    (fake / "api.py").write_text("def f():\n    from facerec.detect.a import y\n")
    (fake / "detect" / "__init__.py").write_text("")
    (fake / "detect" / "a.py").write_text("from .b import z\n")
    (fake / "detect" / "b.py").write_text("from facerec.detect.a import y\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    graph = import_graph()
    assert graph["facerec.errors"] == {"facerec.api"}
    assert graph["facerec.api"] == {"facerec.detect.a"}
    with pytest.raises(AssertionError, match="facerec.errors \\(layer 1\\) imports facerec.api"):
        test_no_module_imports_a_higher_layer()
    with pytest.raises(AssertionError, match="import loops"):
        test_no_import_loops()


def test_every_builtin_detector_and_embedder_lives_in_its_stage_package():
    builtin = [(n, f) for n, f in DETECTORS.items() if f.__module__.startswith("facerec")]  # not the tests' own
    assert {n for n, _ in builtin} >= {"mtcnn", "yunet", "dlib", "dlib+mtcnn", "resize"}
    assert all(f.__module__.startswith("facerec.detect.") for _, f in builtin), builtin
    embedders = [(n, f) for n, (_, f) in EMBEDDERS.items() if f.__module__.startswith("facerec")]
    assert {n for n, _ in embedders} >= {"facenet-vggface2", "facenet-casia", "dlib"}
    assert all(f.__module__.startswith("facerec.embed.") for _, f in embedders), embedders


class CornerDetector(Detector):
    """A detector added the documented way: one class, one register_detector line. Finds one face,
    the image's top-left quarter."""

    name = id = "corner-test"

    def __init__(self, device="cpu", batch_size=64):
        pass

    def detect(self, batch):
        h, w = batch.height, batch.width
        marks = np.array(
            [[w * 0.1, h * 0.1], [w * 0.4, h * 0.1], [w * 0.25, h * 0.25], [w * 0.1, h * 0.4], [w * 0.4, h * 0.4]]
        )
        return [[Detection((0.0, 0.0, w / 2, h / 2), 0.9, marks.astype(np.float32))] for _ in range(len(batch))]


register_detector("corner-test", CornerDetector)


def test_a_registered_detector_runs_through_the_pipeline():
    from facerec.pipeline import Pipeline

    assert "corner-test" in detector_names()
    pipe = Pipeline.create(embedder="fake", detector="corner-test", margin=0, device="cpu")
    image = np.full((64, 80, 3), 120, np.uint8)
    (face,) = pipe.detect(image)
    assert face.box == pytest.approx((0, 0, 40, 32))
    assert pipe.config.detector == "corner-test"
    assert pipe.embed(image).shape == (1, 16)


def test_a_registered_detector_is_a_choice_of_every_command(synthetic_npz, tmp_path):
    from facerec.cli import main
    from facerec.gallery import Gallery

    model = tmp_path / "g.npz"
    args = ["train", "--data", str(synthetic_npz), "--embedder", "fake", "--detector", "corner-test"]
    assert main([*args, "--margin", "0", "--device", "cpu", "--model", str(model), "--art_dir", str(tmp_path)]) == 0
    assert Gallery.load(model).pipeline.detector == "corner-test"
    # the seed's spelling is the same flag
    seed = ["train", "--data", str(synthetic_npz), "--embedder", "fake", "--align", "corner-test"]
    model2 = tmp_path / "g2.npz"
    assert main([*seed, "--margin", "0", "--device", "cpu", "--model", str(model2), "--art_dir", str(tmp_path)]) == 0
    assert Gallery.load(model2).pipeline.detector == "corner-test"
