"""Reference calibrations: what a pipeline's distances mean for strangers, measured once on data no
evaluation uses, and shipped with facerec (src/facerec/data/reference/).

python bench/reference.py embed --embedder facenet-casia --detector mtcnn --out /tmp/ref/casia_mtcnn.npz
    the subject face of every LFW image through one pipeline (LFW View 1's development training
    and test people together are all of LFW: the measurement takes the training people only, the
    open-set evaluation the test people only).
python bench/reference.py join --embeddings /tmp/ref/f_0.npz,/tmp/ref/f_1.npz [--part N] --out X.npz
    shards of one ``embed`` run as one file, or one part of a fused pipeline's embeddings (each
    part is stored scaled by sqrt(weight)) as that part's own pipeline: one run of a fused
    pipeline gives its parts' embeddings too.
python bench/reference.py measure --embeddings /tmp/ref/casia_mtcnn.npz
    the reference table of that pipeline from LFW View 1's development *training* people
    (peopleDevTrain.txt), written where facerec finds it (src/facerec/data/reference/).
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine  # noqa: E402


def lfw_dir() -> Path:
    from facerec.lfw import sklearn_data_home

    return Path(sklearn_data_home(None)) / "lfw_home" / "lfw_funneled"


def cmd_embed(args) -> int:
    from facerec.datasets import load_dataset
    from facerec.evaluate.common import embed_samples
    from facerec.pipeline import Pipeline

    data = load_dataset(args.data or lfw_dir())
    data.samples = data.samples[args.shard :: args.shards]  # dlib runs on one core: a shard per core
    pipe = Pipeline.create(
        embedder=args.embedder,
        detector=args.detector,
        alignment=args.alignment,
        flip=args.flip,
        precision=args.precision,
        device="cpu",
    )
    t0 = time.perf_counter()
    emb = embed_samples(pipe, data.samples, quiet=False)
    secs = time.perf_counter() - t0
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        args.out,
        files=np.array([str(s.source) for s in data.samples]),
        names=np.array([data.names[s.label] for s in data.samples]),
        embeddings=emb.embeddings,
        fallback=emb.fallback,
        seconds=secs,
        pipeline=json.dumps(pipe.config.to_dict()),
        precision=args.precision,
        command=" ".join(["python", "bench/reference.py", *sys.argv[1:]]),
    )
    print(f"{len(data.samples)} images in {secs:.0f} s ({len(data.samples) / secs:.2f} img/s) -> {args.out}")
    return 0


def load(path: str, part: int | None = None):
    """(pipeline dict, precision, embeddings, names, fallback, command, files) from ``embed``'s file (or
    its shards, comma-separated);
    ``part`` picks one part of a fused pipeline's embeddings, renormalised, as its own pipeline."""
    from facerec.align.croppers import alignment_parts
    from facerec.embed import get_spec
    from facerec.embed.fused import parse_parts

    parts = []
    for one in path.split(","):  # shards of one run
        with np.load(one, allow_pickle=False) as f:
            parts.append({k: f[k] for k in f.files})
    pipeline = json.loads(str(parts[0]["pipeline"]))
    precision, command = str(parts[0]["precision"]), str(parts[0]["command"])
    files = np.concatenate([p["files"] for p in parts])
    order = np.argsort(files, kind="stable")
    emb = np.concatenate([p["embeddings"] for p in parts])[order]
    names = np.concatenate([p["names"] for p in parts])[order]
    fallback = np.concatenate([p["fallback"] for p in parts])[order]
    if part is not None:
        parts = parse_parts(pipeline["embedder"])
        dims = [get_spec(p.name).dim for p in parts]
        start = sum(dims[:part])
        emb = emb[:, start : start + dims[part]]
        emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
        spec = get_spec(parts[part].name)
        alignment = alignment_parts(pipeline["alignment"], len(parts))[part]
        pipeline = {
            **pipeline,
            "embedder": spec.name,
            "weights_id": spec.weights_id,
            "image_size": spec.input_size,
            "dim": spec.dim,
            "alignment": alignment,
        }
        command += f"  (part {part}: {spec.name})"
    return pipeline, precision, emb.astype(np.float32), names, fallback, command, files[order]


def cmd_join(args) -> int:
    pipeline, precision, emb, names, fallback, command, files = load(args.embeddings, args.part)
    np.savez(
        args.out,
        files=files,
        names=names,
        embeddings=emb,
        fallback=fallback,
        seconds=0.0,
        pipeline=json.dumps(pipeline),
        precision=precision,
        command=command,
    )
    print(f"{len(emb)} faces of {pipeline['embedder']}/{pipeline['detector']}/{pipeline['alignment']} -> {args.out}")
    return 0


def people_of(list_file: Path) -> set[str]:
    """The names in an LFW View 1 people file (a count line, then name<TAB>images)."""
    return {line.split("\t")[0] for line in list_file.read_text().splitlines()[1:] if line.strip()}


def cmd_measure(args) -> int:
    from facerec.gallery.reference import measure_reference, reference_path

    pipeline, precision, emb, names, fallback, command, _ = load(args.embeddings)
    root = Path(args.data or lfw_dir()).parent
    dev = people_of(root / "peopleDevTrain.txt")
    on = np.isin(names, sorted(dev))
    _, labels = np.unique(names[on], return_inverse=True)
    t0 = time.perf_counter()
    table = measure_reference(emb[on], labels, metric="euclidean")
    table.update(
        pipeline=pipeline,
        precision=precision,
        provenance={
            "data": (
                f"LFW View 1 development training people (peopleDevTrain.txt): {len(dev):,} people, "
                f"{int(on.sum()):,} images ({int(fallback[on].sum())} with no face detected, their central crop used)"
            ),
            "disjoint_from": "LFW View 1 development test people (peopleDevTest.txt), which `facerec evaluate open-set` uses",
            "embedded_by": command,
            "measured_by": " ".join(["python", "bench/reference.py", *sys.argv[1:]]),
            "date": datetime.date.today().isoformat(),
            "machine": machine(),
        },
    )
    out = Path(args.out) if args.out else reference_path(pipeline, precision)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(table, indent=1) + "\n")
    secs = time.perf_counter() - t0
    f = table["far"]
    t = table["thresholds"]
    print(f"{pipeline['embedder']} / {pipeline['detector']} / {pipeline['alignment']} / flip={pipeline['flip']}:")
    for target in (1e-2, 1e-3, 1e-4, 1e-5):
        j = int(np.searchsorted(f, target, side="right")) - 1
        print(f"  pairwise FAR {target:g}: threshold {t[max(j, 0)]:.3f}")
    floor = table["measured_down_to"]["pairwise"]
    print(
        f"  pairwise FAR measured down to {floor['far']:.2e} (threshold {floor['threshold']:.3f}); {secs:.0f} s -> {out}"
    )
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("embed")
    e.add_argument("--data", default=None, help="LFW's lfw_funneled folder (default: scikit-learn's)")
    e.add_argument("--embedder", default="facenet-casia")
    e.add_argument("--detector", "--align", default="mtcnn")
    e.add_argument("--alignment", default="box")
    e.add_argument("--flip", action="store_true")
    e.add_argument("--precision", default="fp32")
    e.add_argument("--shard", type=int, default=0)
    e.add_argument("--shards", type=int, default=1)
    e.add_argument("--out", required=True)
    e.set_defaults(func=cmd_embed)
    j = sub.add_parser("join")
    j.add_argument("--embeddings", required=True, help="embed's files, comma-separated")
    j.add_argument("--part", type=int, default=None, help="one part of a fused pipeline (0, 1)")
    j.add_argument("--out", required=True)
    j.set_defaults(func=cmd_join)
    m = sub.add_parser("measure")
    m.add_argument("--data", default=None)
    m.add_argument("--embeddings", required=True)
    m.add_argument("--out", default=None, help="default: the shipped table's place")
    m.set_defaults(func=cmd_measure)
    args = ap.parse_args()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
