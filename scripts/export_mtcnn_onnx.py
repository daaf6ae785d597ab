"""Write MTCNN's three networks (facenet-pytorch 2.5.3's P-, R- and O-Net weights) as ONNX graphs into
src/facerec/detect/data/, with the licence and a provenance note beside them.

Each convolution's PReLU is rewritten as ReLUs and 1x1 depthwise convolutions (:func:`prelu_as_relus`:
the same numbers, a faster graph on ONNX Runtime). A one-time conversion: the graphs are committed, so the core install (no PyTorch) runs MTCNN on ONNX
Runtime (:mod:`facerec.detect.mtcnn_onnx`). Needs torch and facenet-pytorch:

    .venv/bin/python scripts/export_mtcnn_onnx.py            # write the graphs
    .venv/bin/python scripts/export_mtcnn_onnx.py --check    # export again to a temporary folder: same bytes?

The TorchScript exporter (``dynamo=False``) is used: it writes the same bytes on every run (same node
names, weights stored as they are), so ``--check`` can compare files, not only numbers.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
import warnings
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "src" / "facerec" / "detect" / "data"
OPSET = 17
# name -> (facenet-pytorch class, example input side, output names in forward()'s order)
NETWORKS = {
    "pnet": ("PNet", 12, ("reg", "prob")),
    "rnet": ("RNet", 24, ("reg", "prob")),
    "onet": ("ONet", 48, ("reg", "landmarks", "prob")),
}


MIT_LICENCE = """MIT License

Copyright (c) 2019 Timothy Esler

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def prelu_as_relus(model):
    """Each convolution's PReLU(x) = x if x > 0 else a * x rewritten as Relu(x) + (-a) * Relu(-x), the
    negation and the slopes as 1x1 depthwise convolutions: the same numbers bit for bit (x > 0: x + 0;
    x < 0: 0 + (-a)(-x), the one rounding of a * x), but every node has a kernel in ONNX Runtime's
    blocked (NCHWc) layout, where a PReLU is wrapped in two layout reorders. On the 2-core development
    machine: P-Net 16%, R-Net 36%, O-Net 32% less time. The dense layers' PReLUs stay as they are."""
    import numpy as np
    from onnx import helper, numpy_helper

    graph = model.graph
    slopes = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    nodes = []
    for node in graph.node:
        slope = slopes.get(node.input[1]) if node.op_type == "PRelu" else None
        if slope is None or slope.ndim != 3:  # a dense layer's (C,) slopes, or not a PReLU
            nodes.append(node)
            continue
        x, y = node.input[0], node.output[0]
        a = slope.reshape(-1)
        c = len(a)
        minus_one = numpy_helper.from_array(np.full((c, 1, 1, 1), -1, np.float32), f"{y}_minus_one")
        minus_a = numpy_helper.from_array((-a).astype(np.float32).reshape(c, 1, 1, 1), f"{y}_minus_slope")
        zero = numpy_helper.from_array(np.zeros(c, np.float32), f"{y}_zero")
        graph.initializer.extend([minus_one, minus_a, zero])
        nodes += [
            helper.make_node("Relu", [x], [f"{y}_positive"]),
            helper.make_node("Conv", [x, minus_one.name, zero.name], [f"{y}_negated"], group=c, kernel_shape=[1, 1]),
            helper.make_node("Relu", [f"{y}_negated"], [f"{y}_negative_part"]),
            helper.make_node(
                "Conv", [f"{y}_negative_part", minus_a.name, zero.name], [f"{y}_sloped"], group=c, kernel_shape=[1, 1]
            ),
            helper.make_node("Add", [f"{y}_positive", f"{y}_sloped"], [y]),
        ]
    used = {i for n in nodes for i in n.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.node[:], graph.initializer[:]
    graph.node.extend(nodes)
    graph.initializer.extend(kept)
    return model


def same_as_prelu(plain: bytes, rewritten: Path, side: int) -> None:
    """The rewritten graph gives the PReLU graph's outputs bit for bit on ONNX Runtime (random inputs)."""
    import numpy as np
    import onnxruntime as ort

    x = np.random.default_rng(1).uniform(
        -1, 1, (9, 3, side * 3 + 1, side * 3 + 1) if side == 12 else (9, 3, side, side)
    )
    sessions = [ort.InferenceSession(g, providers=["CPUExecutionProvider"]) for g in (plain, str(rewritten))]
    want, got = (sess.run(None, {"input": x.astype(np.float32)}) for sess in sessions)
    if not all(np.array_equal(a, b) for a, b in zip(want, got)):
        raise SystemExit(f"{rewritten.name}: the ReLU form of PReLU does not give the same numbers")


def export(folder: Path) -> dict[str, Path]:
    """The three graphs written into ``folder``; P-Net's batch, height and width are free (it runs on
    every pyramid level), R- and O-Net's batch is."""
    import onnx
    import torch
    from facenet_pytorch.models import mtcnn

    written = {}
    for name, (cls, side, outputs) in NETWORKS.items():
        net = getattr(mtcnn, cls)(pretrained=True).eval()
        example = torch.zeros((2, 3, side, side))
        axes = {"input": {0: "batch", 2: "height", 3: "width"} if name == "pnet" else {0: "batch"}}
        axes.update({o: {0: "batch"} for o in outputs})
        if name == "pnet":
            axes.update({o: {0: "batch", 2: "rows", 3: "cols"} for o in outputs})
        path = folder / f"mtcnn-{name}.onnx"
        with torch.no_grad(), warnings.catch_warnings():
            # the TorchScript exporter is deprecated; it is chosen for its same bytes on every run
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                net,
                (example,),
                str(path),
                input_names=["input"],
                output_names=list(outputs),
                dynamic_axes=axes,
                opset_version=OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
        plain = path.read_bytes()
        onnx.save(prelu_as_relus(onnx.load(str(path))), str(path))
        same_as_prelu(plain, path, side)
        written[name] = path
    return written


def check_numbers(paths: dict[str, Path]) -> float:
    """The largest difference between each graph on ONNX Runtime and its PyTorch module, on random
    inputs in the networks' range (-1..1) at a few sizes."""
    import numpy as np
    import onnxruntime as ort
    import torch
    from facenet_pytorch.models import mtcnn

    rng = np.random.default_rng(0)
    worst = 0.0
    for name, (cls, side, _) in NETWORKS.items():
        net = getattr(mtcnn, cls)(pretrained=True).eval()
        session = ort.InferenceSession(str(paths[name]), providers=["CPUExecutionProvider"])
        shapes = [(5, 3, 40, 57), (1, 3, 12, 12), (3, 3, 150, 121)] if name == "pnet" else [(7, 3, side, side)]
        for shape in shapes:
            x = rng.uniform(-1, 1, shape).astype(np.float32)
            with torch.no_grad():
                want = [t.numpy() for t in net(torch.from_numpy(x))]
            got = session.run(None, {"input": x})
            worst = max(worst, *(float(np.abs(g - w).max()) for g, w in zip(got, want)))
    return worst


def provenance(paths: dict[str, Path], worst: float) -> str:
    import facenet_pytorch
    import onnx
    import torch

    version = metadata.version("facenet-pytorch")
    source = Path(facenet_pytorch.__file__).parent / "data"
    rows = "\n".join(f"| `{name}.pt` | `{sha256(source / f'{name}.pt')}` |" for name in NETWORKS)
    graphs = "\n".join(f"| `{p.name}` | `{sha256(p)}` |" for p in paths.values())
    return f"""# MTCNN's graphs: where they come from

`mtcnn-pnet.onnx`, `mtcnn-rnet.onnx` and `mtcnn-onet.onnx` are MTCNN's P-, R- and O-Net (Zhang et al.,
2016) with the weights that facenet-pytorch {version} ships (its `facenet_pytorch/data/*.pt`, MIT
licence: `MTCNN-LICENSE`), exported to ONNX (opset {OPSET}) so that MTCNN runs without PyTorch
(`facerec.detect.mtcnn_onnx`). The weights are unchanged; each convolution's PReLU is written as
`Relu(x) + (-a) * Relu(-x)` with 1x1 depthwise convolutions (`prelu_as_relus` in the script): the same
numbers bit for bit, in ONNX Runtime's blocked layout (P-Net 16%, R-Net 36%, O-Net 32% faster there).

## Source weights (facenet-pytorch {version})

| file | sha256 |
|---|---|
{rows}

## Graphs

| file | sha256 |
|---|---|
{graphs}

P-Net's input is `input` float32 (batch, 3, height, width), outputs `reg` (batch, 4, rows, cols) and
`prob` (batch, 2, rows, cols); R-Net's and O-Net's input is (batch, 3, 24, 24) and (batch, 3, 48, 48),
outputs `reg` (batch, 4), O-Net's `landmarks` (batch, 10), and `prob` (batch, 2). Inputs are RGB
pixels scaled as MTCNN does, `(x - 127.5) * 0.0078125`.

## How they were made

    .venv/bin/python scripts/export_mtcnn_onnx.py

with torch {torch.__version__}, onnx {onnx.__version__} (`torch.onnx.export`, the TorchScript exporter,
`dynamo=False`, constant folding on); each rewritten graph is checked to give the plain PReLU graph's
outputs bit for bit on ONNX Runtime before it is kept.

## The check that it reproduces

    .venv/bin/python scripts/export_mtcnn_onnx.py --check

exports the three graphs again into a temporary folder and compares them with these files byte for
byte (the TorchScript exporter writes the same bytes on every run), and runs each graph on ONNX
Runtime against its PyTorch module on random inputs (P-Net at several sizes): the largest difference
of any output is printed ({worst:.1e} when these files were written).
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="export again to a temporary folder and compare")
    args = parser.parse_args(argv)
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            fresh = export(Path(tmp))
            same = True
            for path in fresh.values():
                shipped = DATA / path.name
                ok = shipped.is_file() and sha256(shipped) == sha256(path)
                same &= ok
                print(f"{path.name}: {'same bytes' if ok else 'DIFFERENT'}")
            print(f"largest difference from PyTorch: {check_numbers(fresh):.2e}")
        return 0 if same else 1
    DATA.mkdir(parents=True, exist_ok=True)
    paths = export(DATA)
    worst = check_numbers(paths)
    print(f"largest difference from PyTorch: {worst:.2e}")
    if worst > 1e-4:
        print("the graphs do not compute what the modules do", file=sys.stderr)
        return 1
    dist = Path(metadata.distribution("facenet-pytorch")._path)  # type: ignore[attr-defined]
    licence = next((p for p in (dist / "LICENSE.md", dist / "LICENSE") if p.is_file()), None)
    if licence is not None:
        shutil.copyfile(licence, DATA / "MTCNN-LICENSE")
    else:  # an install without its dist-info licence: facenet-pytorch's MIT licence, as its repository has it
        (DATA / "MTCNN-LICENSE").write_text(MIT_LICENCE)
    (DATA / "MTCNN-PROVENANCE.md").write_text(provenance(paths, worst))
    for path in paths.values():
        print(f"{path.relative_to(ROOT)}  {path.stat().st_size:,} bytes  sha256 {sha256(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
