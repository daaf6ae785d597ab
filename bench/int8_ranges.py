"""Measure the int8 FaceNet's activation ranges on LFW, and check the int8 network against fp32.

    python bench/int8_ranges.py --json bench/reported/int8_ranges.json

Calibration faces: one photo each of the first ``--people`` LFW people (sorted) who appear in no
View 2 pair, cut by the real pipeline (half with MTCNN, half with YuNet boxes), so the pairs
figures measured with ``--precision int8`` never saw their own people here. The ranges go to
``src/facerec/embed/data/<weights_id>-<digest>.int8-ranges.json`` (ONNX Runtime's calibration-cache format),
which facerec ships; the check embeds other people's faces (``--check`` of them) in fp32 (PyTorch)
and int8 and reports the cosine between the two.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import machine, print_table, write_json

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from facerec.embed import onnx_runtime  # noqa: E402
from facerec.pipeline import Pipeline  # noqa: E402
from facerec.runtime.onnx_runner import OnnxRunner  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "src" / "facerec" / "embed" / "data"


def people_outside_pairs(lfw: Path) -> list[str]:
    in_pairs = set()
    for line in (lfw.parent / "pairs.txt").read_text().splitlines()[1:]:
        p = line.split()
        in_pairs |= {p[0]} if len(p) == 3 else {p[0], p[2]} if len(p) == 4 else set()
    return sorted(d.name for d in lfw.iterdir() if d.is_dir() and d.name not in in_pairs)


def crops_of(paths: list[str], detector: str, embedder: str) -> np.ndarray:
    """The float (n, 3, S, S) crops the real pipeline hands its embedder for these photos."""
    pipe = Pipeline.create(embedder=embedder, detector=detector, device="cpu")
    seen = []
    real = pipe.embedder.embed_tensor

    def record(x):
        seen.append(np.array(x, np.float32))  # numpy crops on a CPU (a tensor on a GPU converts too)
        return real(x)

    pipe.embedder.embed_tensor = record
    pipe.run(paths, subject_only=True)
    return np.concatenate(seen)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw-dir", default=str(Path(__file__).resolve().parents[2] / "shared/data/lfw_home/lfw_funneled"))
    ap.add_argument("--embedder", default="facenet-casia")
    ap.add_argument("--people", type=int, default=256, help="calibration faces (one per person)")
    ap.add_argument("--check", type=int, default=512, help="other people's faces to compare int8 with fp32")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    import torch
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    lfw = Path(args.lfw_dir)
    outside = people_outside_pairs(lfw)
    photo = [str(sorted((lfw / p).glob("*.jpg"))[0]) for p in outside]
    calib_paths, check_paths = photo[: args.people], photo[args.people : args.people + args.check]
    half = len(calib_paths) // 2
    t = time.perf_counter()
    calib = np.concatenate(
        [crops_of(calib_paths[:half], "mtcnn", args.embedder), crops_of(calib_paths[half:], "yunet", args.embedder)]
    )
    check = crops_of(check_paths, "yunet", args.embedder)
    print(f"{len(calib)} calibration and {len(check)} check crops in {time.perf_counter() - t:.0f} s")

    embedder = Pipeline.create(embedder=args.embedder, detector="resize", device="cpu").embedder
    model, spec = embedder.model, embedder.spec
    with torch.inference_mode():  # PyTorch's fp32, the reference
        x = torch.from_numpy(check).contiguous(memory_format=torch.channels_last)
        reference = torch.nn.functional.normalize(model((x - 127.5) / 128.0), dim=1).numpy()

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{onnx_runtime.INPUT: calib[i : i + 32]} for i in range(0, len(calib), 32)])

        def get_next(self):
            return next(self.batches, None)

    with tempfile.TemporaryDirectory() as tmp:
        fp32, pre = Path(tmp) / "fp32.onnx", Path(tmp) / "pre.onnx"
        onnx_runtime.export_fp32(model, fp32, spec.input_size)
        import onnx

        convs = [n.name for n in onnx.load(str(fp32)).graph.node if n.op_type == "Conv"]
        quant_pre_process(str(fp32), str(pre))
        ranges = DATA / onnx_runtime.ranges_name(spec.weights_id, embedder.weights_digest)
        ranges.unlink(missing_ok=True)  # measure anew: ORT reads an existing cache instead
        quantize_static(
            str(pre),
            str(Path(tmp) / "int8.onnx"),
            Reader(),
            calibration_cache_path=str(ranges),
            calibrate_method=CalibrationMethod.MinMax,
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=["Conv"],
            nodes_to_exclude=convs[: onnx_runtime.SKIP_FIRST_CONVS],
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
        print(f"wrote {ranges}")
        # the shipped path end to end: the int8 graph rebuilt from the shipped ranges alone
        int8 = Path(tmp) / "shipped.onnx"
        onnx_runtime.quantize_int8(fp32, int8, ranges)
        rows = []
        for name, path in (("fp32 (ONNX Runtime)", fp32), ("int8 (ONNX Runtime)", int8)):
            out = OnnxRunner(path, threads=torch.get_num_threads())(check)
            cos = (out * reference).sum(1)
            rows.append(
                {"network": name, "faces": len(cos), "cos_min": float(cos.min()), "cos_mean": float(cos.mean())}
            )
    print_table(rows, ["network", "faces", "cos_min", "cos_mean"])
    write_json(
        args.json,
        {
            "command": "python " + " ".join(sys.argv),
            "machine": machine(),
            "embedder": args.embedder,
            "calibration": {"faces": len(calib), "people": "first of LFW's people outside the View 2 pairs"},
            "rows": rows,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
