"""``facerec evaluate pairs|identify|open-set``: run a protocol, print a table, write JSON and a PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facerec.cli.common import add, build_pipeline, pipeline_args
from facerec.errors import DataError, InputError
from facerec.evaluate.common import embed_paths, embed_samples, pyplot, run_all, save_figure, write_json
from facerec.evaluate.gallery_sizes import RULES
from facerec.pipeline.config import DEFAULT_FPIR


def add_parsers(sub) -> None:
    ev = sub.add_parser("evaluate", help="benchmarks: LFW pairs, closed-set and open-set identification")
    evs = ev.add_subparsers(dest="protocol", required=True)

    def common(p, json_default):
        add(p, "--metric", choices=("euclidean", "cosine"), default="euclidean")
        add(p, "--flip", action="store_true", help="average each face with its mirror image")
        add(p, "--json", default=json_default, help="where to write the results")
        add(p, "--plot", default=None, help="PNG path (default: the JSON path with .png)")
        pipeline_args(p, embedder_default="facenet-casia", flip=False)

    p = evs.add_parser("pairs", help="LFW View 2: 10-fold verification accuracy, ROC, EER, TAR@FAR")
    add(p, "--lfw-dir", default=None, help="folder of per-person LFW images (default: scikit-learn's lfw_funneled)")
    add(p, "--pairs", default=None, help="pairs file (default: pairs.txt beside --lfw-dir)")
    add(p, "--folds", type=int, default=None, help="use only the first N folds (quick checks)")
    add(p, "--subtract-mean", action="store_true", help="subtract the training folds' mean embedding")
    common(p, "bench/results/pairs.json")
    p.set_defaults(func=cmd_pairs)

    p = evs.add_parser("identify", help="closed-set identification, stratified k-fold")
    add(p, "--data", required=True, help=".npz or folder-per-person")
    add(p, "--folds", type=int, default=5)
    add(p, "--k", type=int, default=3)
    common(p, "bench/results/identify.json")
    p.set_defaults(func=cmd_identify)

    p = evs.add_parser(
        "open-set",
        help="open-set identification: the stranger rate and DIR by gallery size (--gallery-sizes), or DIR at FPIR",
    )
    add(
        p,
        "--gallery-sizes",
        default=None,
        help="people enrolled, e.g. 1,2,5,10,25,50,90: each size drawn from LFW View 1's development test "
        "people, strangers their one-photo people, through train's and infer's decision",
    )
    add(
        p,
        "--photos-per-person",
        default="1,5",
        help="with --gallery-sizes: photos enrolled per person (all: all but one)",
    )
    add(p, "--fpir", type=float, default=DEFAULT_FPIR, help="with --gallery-sizes: the stranger rate promised")
    add(
        p,
        "--rule",
        default="facerec",
        help=f"with --gallery-sizes: {', '.join(RULES)} or all (facerec: train's; legacy: facerec 0.2's, for contrast)",
    )
    add(
        p,
        "--embeddings",
        default=None,
        help="with --gallery-sizes: LFW's embeddings from `python bench/reference.py embed` instead of embedding here",
    )
    add(p, "--lfw-dir", default=None, help="with --gallery-sizes: LFW's lfw_funneled folder (default: scikit-learn's)")
    add(p, "--data", default=None, help="without --gallery-sizes: folder-per-person (e.g. lfw_funneled) or .npz")
    add(p, "--min-images", type=int, default=10, help="people with at least this many images are enrolled")
    add(p, "--trials", type=int, default=None, help="random draws (default 50 by gallery size, else 5)")
    add(p, "--seed", type=int, default=0)
    add(p, "--max-impostors", type=int, default=0, help="use at most N impostor images, sampled (quick checks)")
    add(p, "--far", type=float, default=0.01, help="FAR the deployed threshold is calibrated for (as train --far)")
    common(p, "bench/results/open_set.json")
    p.set_defaults(func=cmd_open_set)

    from facerec.people.algorithms import ALGORITHMS, DEFAULT_ALGORITHM

    p = evs.add_parser(
        "cluster", help="people discovery: pairwise and BCubed F1 of the grouping, with the baselines, same run"
    )
    add(p, "--data", required=True, help="folder-per-person (e.g. lfw_funneled) or .npz")
    add(p, "--algorithm", choices=ALGORITHMS, default=DEFAULT_ALGORITHM)
    add(p, "--threshold", default="auto", help="auto (the embedder's calibration, as facerec cluster) or a distance")
    add(p, "--min-faces", type=int, default=3, help="smallest group that is a person (as facerec cluster)")
    add(p, "--json", default="bench/results/cluster.json", help="where to write the results")
    add(p, "--flip", action="store_true", help="average each face with its mirror image")
    pipeline_args(p, embedder_default=None)
    add(p, "--alignment", choices=("box", "five-point"), default=None, help="default box (as facerec cluster)")
    p.set_defaults(func=cmd_cluster)


def _pipe(args):
    return build_pipeline(args)


def _default_lfw_dir() -> Path:
    from facerec.lfw import sklearn_data_home

    home = sklearn_data_home(None)
    return Path(home) / "lfw_home" / "lfw_funneled"


def _plot_path(args) -> Path:
    return Path(args.plot) if args.plot else Path(args.json).with_suffix(".png")


def cmd_pairs(args) -> int:
    from facerec.evaluate.pairs import evaluate_pairs, read_pairs

    lfw_dir = Path(args.lfw_dir) if args.lfw_dir else _default_lfw_dir()
    pairs_file = Path(args.pairs) if args.pairs else lfw_dir.parent / "pairs.txt"
    if not pairs_file.is_file():
        raise DataError(f"{pairs_file}: no such pairs file")
    pairs = read_pairs(pairs_file, lfw_dir)
    if args.folds:
        pairs = [p for p in pairs if p.fold < args.folds]
    paths = sorted({p.a for p in pairs} | {p.b for p in pairs})
    pipe = _pipe(args)
    emb = embed_paths(pipe, paths, quiet=args.quiet)
    if emb.errors:
        raise DataError(f"{len(emb.errors)} pair images could not be read, e.g. {emb.errors[0]}")
    r = evaluate_pairs(pairs, dict(zip(paths, emb.embeddings)), metric=args.metric, subtract_mean=args.subtract_mean)
    fpr, tpr = r.pop("roc")
    r.update(
        embedder=args.embedder,
        detector=args.detector,
        margin=pipe.config.margin,
        metric=args.metric,
        flip=args.flip,
        precision=args.precision,
        weights=pipe.config.weights_id,
        subtract_mean=args.subtract_mean,
        images=len(paths),
        no_face_center_crop=int(emb.fallback.sum()),
    )
    write_json(args.json, r)
    _log_x_plot(
        np.maximum(fpr, 1e-4),
        tpr,
        "false accept rate",
        "true accept rate",
        f"LFW pairs ROC: {args.embedder}, acc {100 * r['accuracy_mean']:.2f}%, AUC {r['auc']:.4f}",
        _plot_path(args),
    )
    print(
        f"LFW pairs ({r['pairs']} pairs, {len(r['fold_accuracy'])} folds, {r['images']} images; "
        f"{r['no_face_center_crop']} with no detected face used the central crop)"
    )
    if r["threshold_on_same_fold"]:
        print("  one fold only: its threshold was chosen on the same pairs, so accuracy is optimistic")
    rows = [
        ("embedder", args.embedder),
        ("detector / margin", f"{args.detector} / {pipe.config.margin:g}"),
        ("metric, flip, mean-sub", f"{args.metric}, {args.flip}, {args.subtract_mean}"),
        ("accuracy", f"{100 * r['accuracy_mean']:.2f}% ± {100 * r['accuracy_std']:.2f}"),
        ("ROC AUC", f"{r['auc']:.4f}"),
        ("EER", f"{100 * r['eer']:.2f}% (threshold {r['eer_threshold']:.4f})"),
        ("TAR @ FAR 1e-2", f"{100 * r['tar_at_far']['0.01']:.2f}%"),
        ("TAR @ FAR 1e-3", f"{100 * r['tar_at_far']['0.001']:.2f}%"),
    ]
    _table(rows)
    print(f"wrote {args.json} and {_plot_path(args)}")
    return 0


def _load_embedded(args, select=None):
    from facerec.datasets import load_dataset

    ds = load_dataset(args.data)
    if select is not None:
        ds.samples = select(ds.samples)
    pipe = _pipe(args)
    results = run_all(pipe, ds.samples, quiet=args.quiet)
    ok = [r for r in results if r.faces]
    skipped = len(results) - len(ok)
    emb = np.stack([r.faces[0].embedding for r in ok])
    labels = np.array([r.sample.label for r in ok])
    return ds, emb, labels, skipped, pipe


def cmd_identify(args) -> int:
    from facerec.evaluate.identification import closed_set

    ds, emb, labels, skipped, _ = _load_embedded(args)
    r = closed_set(emb, labels, ds.names, folds=args.folds, k=args.k, metric=args.metric)
    pred, true = r.pop("_pred"), r.pop("_true")
    r.update(
        embedder=args.embedder,
        detector=args.detector,
        metric=args.metric,
        flip=args.flip,
        precision=args.precision,
        no_face_skipped=skipped,
    )
    write_json(args.json, r)
    people = np.unique(true)
    if len(people) <= 100:
        from sklearn.metrics import confusion_matrix

        cm = confusion_matrix(true, pred, labels=people)
        plt = pyplot()
        size = max(6, len(people) * 0.16)
        fig, ax = plt.subplots(figsize=(size, size))
        ax.imshow(cm / np.maximum(cm.sum(1, keepdims=True), 1), cmap="viridis")
        ticks = [ds.names[p] for p in people]
        ax.set_xticks(range(len(people)), ticks, rotation=90, fontsize=6)
        ax.set_yticks(range(len(people)), ticks, fontsize=6)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"closed-set confusion: top-1 {100 * r['top1']:.2f}%")
        save_figure(fig, _plot_path(args))
    print(
        f"closed-set identification: {r['images']} images of {r['people']} people, {r['folds']}-fold "
        f"({skipped} images with no face skipped, {r['people_left_out']} people with < {r['folds']} images left out)"
    )
    _table(
        [
            ("top-1", f"{100 * r['top1']:.2f}%"),
            ("top-5", f"{100 * r['top5']:.2f}%"),
            ("macro F1", f"{r['macro_f1']:.4f}"),
        ]
    )
    worst = sorted(r["per_person"], key=lambda p: p["top1"])[:10]
    print("hardest people:")
    for p in worst:
        print(f"  {p['name']:<30} {p['images']:>4} images  top-1 {100 * p['top1']:.1f}%")
    print(f"wrote {args.json}" + (f" and {_plot_path(args)}" if len(people) <= 100 else ""))
    return 0


def cmd_open_set(args) -> int:
    from facerec.evaluate.identification import open_set

    if args.gallery_sizes:
        return cmd_open_set_by_size(args)
    if not args.data:
        raise InputError("facerec evaluate open-set needs --gallery-sizes (LFW by gallery size) or --data")

    def limit_impostors(samples):
        if not args.max_impostors:
            return samples
        counts = np.bincount([s.label for s in samples])
        impostors = [i for i, s in enumerate(samples) if counts[s.label] < args.min_images]
        rng = np.random.default_rng(args.seed)
        drop = set(rng.permutation(impostors)[args.max_impostors :].tolist())
        return [s for i, s in enumerate(samples) if i not in drop]

    ds, emb, labels, skipped, pipe = _load_embedded(args, limit_impostors)
    r = open_set(
        emb,
        labels,
        min_images=args.min_images,
        trials=args.trials or 5,
        metric=args.metric,
        seed=args.seed,
        far=args.far,
        pipeline=pipe.config,
    )
    grid, fnir = r.pop("_curve")
    r.update(
        embedder=args.embedder,
        detector=args.detector,
        metric=args.metric,
        flip=args.flip,
        precision=args.precision,
        no_face_skipped=skipped,
    )
    write_json(args.json, r)
    _log_x_plot(
        grid,
        fnir,
        "FPIR (impostor probes accepted as someone)",
        "FNIR (known probes missed or misidentified)",
        f"open-set DET: {args.embedder}, {r['known_people']} known people",
        _plot_path(args),
    )
    print(
        f"open-set identification: {r['known_people']} known people, {r['genuine_probes']} genuine and "
        f"{r['impostor_probes']} impostor probes, {r['trials']} trials ({skipped} images with no face skipped)"
    )
    d = r["deployed"]
    _table(
        [
            (
                f"DIR @ FPIR {f}",
                f"{100 * r['dir_at_fpir'][f]:.2f}% (± {100 * r['dir_at_fpir_std'][f]:.2f}, "
                f"{100 * r['dir_at_fpir_min'][f]:.1f}–{100 * r['dir_at_fpir_max'][f]:.1f})",
            )
            for f in r["dir_at_fpir"]
        ]
        + [
            (
                f"train+infer, FAR {d['far']:g}: strangers unknown",
                f"{100 * d['impostors_unknown']:.2f}% (worst trial {100 * d['impostors_unknown_min']:.1f}%)",
            ),
            (
                f"train+infer, FAR {d['far']:g}: known recognised",
                f"{100 * d['known_recognised']:.2f}% (worst trial {100 * d['known_recognised_min']:.1f}%), "
                f"threshold {d['threshold']:.3f}",
            ),
        ]
    )
    print(f"wrote {args.json} and {_plot_path(args)}")
    return 0


def _int_list(text: str, what: str, *, allow_all: bool = False) -> list[int]:
    out = []
    for part in text.split(","):
        part = part.strip()
        if allow_all and part == "all":
            out.append(0)
            continue
        if not part.isdigit() or int(part) < 1:
            raise InputError(f"{what} takes whole numbers >= 1 separated by commas, got {part!r} in {text!r}")
        out.append(int(part))
    return out


def cmd_open_set_by_size(args) -> int:
    """FPIR and DIR by gallery size on LFW View 1's development test people (see
    :mod:`facerec.evaluate.gallery_sizes`), one table row per rule, photos and size."""
    import json

    from facerec.datasets import load_dataset
    from facerec.evaluate.gallery_sizes import by_gallery_size
    from facerec.gallery.calibration import check_rate
    from facerec.pipeline.config import PipelineConfig

    sizes = _int_list(args.gallery_sizes, "--gallery-sizes")
    photos = _int_list(args.photos_per_person, "--photos-per-person", allow_all=True)
    rules = list(RULES) if args.rule == "all" else args.rule.split(",")
    bad = [r for r in rules if r not in RULES]
    if bad:
        raise InputError(f"--rule must be one of {', '.join(RULES)} or all, got {', '.join(bad)}")
    check_rate(args.fpir, "--fpir")
    lfw_dir = Path(args.lfw_dir) if args.lfw_dir else _default_lfw_dir()
    people_file = lfw_dir.parent / "peopleDevTest.txt"
    if not people_file.is_file():
        raise DataError(f"{people_file}: no such file (LFW View 1's development test people, beside lfw_funneled)")
    people = {line.split("\t")[0] for line in people_file.read_text().splitlines()[1:] if line.strip()}
    if args.embeddings:
        with np.load(args.embeddings, allow_pickle=False) as f:
            emb, names = f["embeddings"], f["names"]
            config = PipelineConfig.from_dict(json.loads(str(f["pipeline"])))
        source = args.embeddings
    else:
        ds = load_dataset(lfw_dir)
        ds.samples = [s for s in ds.samples if ds.names[s.label] in people]
        pipe = _pipe(args)
        e = embed_samples(pipe, ds.samples, quiet=args.quiet)
        emb, names, config = e.embeddings, np.array([ds.names[s.label] for s in ds.samples]), pipe.config
        source = f"embedded here ({int(e.fallback.sum())} images with no face detected: central crop)"
    r = by_gallery_size(
        emb,
        names,
        pipeline=config,
        people=people,
        gallery_sizes=sizes,
        photos_per_person=photos,
        rules=rules,
        fpir=args.fpir,
        trials=args.trials or 50,
        metric=args.metric,
        seed=args.seed,
    )
    r.update(pipeline=config.to_dict(), embeddings=source, precision=args.precision)
    write_json(args.json, r)
    print(
        f"open-set by gallery size: {config.embedder}/{config.detector}/{config.alignment}"
        + ("/flip" if config.flip else "")
        + f"; {r['strangers']:,} one-photo strangers; target FPIR {args.fpir:g}; {r['trials']} draws each"
    )
    print_size_table(r["rows"])
    print(f"wrote {args.json}")
    return 0


def print_size_table(rows: list[dict]) -> None:
    cols = ["rule", "photos", "people", "faces", "fpir", "fpir_max", "dir", "dir_min", "threshold", "source"]
    rates = ("fpir", "fpir_max", "dir", "dir_min")
    print("  ".join(f"{c:>11}" for c in cols))
    for row in rows:
        if "skipped" in row:
            print(f"{'':>11}  {row['photos']!s:>11}  {row['people']:>11}  skipped: {row['skipped']}")
            continue
        cells = [
            f"{100 * row[c]:>10.2f}%"
            if c in rates
            else f"{row[c]:>11.4g}"
            if isinstance(row[c], float)
            else f"{row[c]!s:>11}"
            for c in cols
        ]
        print("  ".join(cells))


def _log_x_plot(x, y, xlabel: str, ylabel: str, title: str, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.plot(x, y, lw=2)
    ax.set_xscale("log")
    ax.set_xlim(1e-4, 1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    save_figure(fig, path)
    plt.close(fig)


def _table(rows) -> None:
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")


def cmd_cluster(args) -> int:
    from facerec.cli.people import cluster_defaults, parse_threshold
    from facerec.datasets import load_dataset
    from facerec.embed import get_spec
    from facerec.evaluate.clustering import evaluate_clustering
    from facerec.people.threshold import cluster_threshold

    cluster_defaults(args)
    args.threshold = parse_threshold(args.threshold)
    dataset = load_dataset(args.data)
    pipe = _pipe(args)
    emb = embed_samples(pipe, dataset.samples, quiet=args.quiet)
    if emb.errors:
        raise DataError(f"{len(emb.errors)} images could not be read, e.g. {emb.errors[0]}")
    thr = cluster_threshold(pipe.config, threshold=args.threshold)
    spec = get_spec(pipe.config.embedder)
    r = evaluate_clustering(
        emb.embeddings,
        dataset.labels,
        threshold=thr.value,
        algorithm=args.algorithm,
        min_faces=args.min_faces,
        embedder=pipe.config.embedder,
        default_threshold=spec.default_threshold,
    )
    r.update(
        data=str(args.data),
        pipeline=pipe.config.to_dict(),
        threshold_source=thr.describe(),
        no_face_center_crop=int(emb.fallback.sum()),
    )
    write_json(args.json, r)

    def line(name, s):
        p, b = s["pairwise"], s["bcubed"]
        return (
            f"  {name:<24} {s['clusters']:>7} {100 * s['ungrouped']:>8.1f}% {p['precision']:>7.4f} {p['recall']:>7.4f} "
            f"{p['f1']:>7.4f} {b['precision']:>7.4f} {b['recall']:>7.4f} {b['f1']:>7.4f} {s['seconds']:>7.1f}"
        )

    for title, s in (("all people", r), ("people with >= 2 images", r["people_2plus"])):
        print(
            f"{title}: {s['faces']} faces of {s['people']} people; threshold {thr.describe()}; "
            f"min faces {args.min_faces}"
        )
        print(
            f"  {'':<24} {'clusters':>7} {'ungrouped':>9} {'pair P':>7} {'pair R':>7} {'pair F1':>7} "
            f"{'B3 P':>7} {'B3 R':>7} {'B3 F1':>7} {'sec':>7}"
        )
        print(line(args.algorithm + " (ours)", s))
        for name, b in s["tried"].items():
            print(line(name, b))
        for name, b in s["baselines"].items():
            print(line(name + " (baseline)", b))
    print(f"wrote {args.json}")
    return 0
