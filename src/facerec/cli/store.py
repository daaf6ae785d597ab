"""``facerec store copy`` (a gallery between backends, checked) and ``facerec calibrate`` (recompute
a gallery's open-set threshold from every face, ``--model``; or measure an embedder's reference
table on LFW, ``--embedder X --lfw-dir DIR``)."""

from __future__ import annotations

from facerec.cli.common import EXIT_OK, add, build_pipeline, pipeline_args, store_token_arg


def add_parsers(sub) -> None:
    p = sub.add_parser("store", help="move galleries between stores (model file, Milvus Lite, Milvus server)")
    ssub = p.add_subparsers(dest="store_command", required=True)
    c = ssub.add_parser(
        "copy",
        help="copy a gallery: SRC and DST are model files or store URIs (milvus:./g.db, http://host:19530#name)",
    )
    c.add_argument("src")
    c.add_argument("dst")
    add(c, "--overwrite", action="store_true", help="replace a gallery already at DST")
    store_token_arg(c)
    c.set_defaults(func=run_copy)

    cal = sub.add_parser(
        "calibrate",
        help="--model: recompute every face's leave-one-out distances and the open-set threshold (O(n^2): "
        "changes update them incrementally; run this after many removals or on a schedule); --embedder X "
        "--lfw-dir DIR: measure X's reference table on LFW View 1's development training people (a new "
        "model, e.g. onnx:..., answers open-set questions only once it has one)",
    )
    add(cal, "--model", default=None, help="a model file or a store URI")
    add(cal, "--lfw-dir", default=None, help="with --embedder: LFW's lfw_funneled folder, its View 1 lists beside it")
    add(cal, "--people", type=int, default=None, help="with --embedder: only the first N people (a quick try)")
    pipeline_args(cal, embedder_default=None, flip=False)
    add(
        cal,
        "--fpir",
        "--far",
        dest="fpir",
        type=float,
        default=None,
        help="share of strangers the threshold may name someone (default: the model's; --far is its older name)",
    )
    store_token_arg(cal)
    cal.set_defaults(func=run_calibrate)


def run_copy(args) -> int:
    from facerec.store.copy import copy_gallery

    r = copy_gallery(args.src, args.dst, token=args.store_token, overwrite=args.overwrite)
    print(
        f"copied {r.faces} faces of {r.people} people from {args.src} to {args.dst}; "
        f"{r.same_answers}/{r.checked_queries} check queries got the same nearest faces"
    )
    return EXIT_OK


def run_calibrate(args) -> int:
    from facerec.errors import InputError
    from facerec.gallery.calibration import check_rate
    from facerec.store import ServedGallery, open_store

    if (args.model is None) == (args.embedder is None):
        raise InputError("facerec calibrate takes --model (a gallery) or --embedder with --lfw-dir (a model's table)")
    if args.embedder is not None:
        return run_measure_reference(args)

    if args.fpir is not None:
        check_rate(args.fpir, "--fpir")
    with open_store(args.model, writer=True, token=args.store_token) as store:
        g = store.load()
        served = ServedGallery(store, gallery=g, fpir=args.fpir, sync_s=0)
        cal = served.recalibrate()
    print(f"{args.model}: {len(g)} faces; open-set threshold {cal.threshold:.4f}: {cal.describe()}")
    print(f"  {cal.promise()}")
    return EXIT_OK


def run_measure_reference(args) -> int:
    from pathlib import Path

    from facerec.evaluate.reference_table import measure_pipeline_reference
    from facerec.lfw import sklearn_data_home

    # default as `facerec evaluate`: scikit-learn's LFW, with View 1's lists beside lfw_funneled
    lfw_dir = Path(args.lfw_dir) if args.lfw_dir else Path(sklearn_data_home(None)) / "lfw_home" / "lfw_funneled"
    pipe = build_pipeline(args)
    m = measure_pipeline_reference(pipe, lfw_dir, people=args.people, quiet=args.quiet)
    t = m.table
    floor = t["measured_down_to"]["pairwise"]
    print(
        f"{pipe.config.embedder}: reference table measured on {t['measured_people']:,} people, {t['images']:,} "
        f"images in {m.seconds:.0f} s -> {m.path}"
    )
    if t["measured_people"] < t.get("all_people", t["measured_people"]):
        print(
            f"  a quick try on {t['measured_people']} of {t['all_people']:,} people: strangers' rates below what so few "
            "comparisons measure are extrapolated, so thresholds come out strict; run without --people for a table "
            "like facerec's own"
        )
    if floor.get("far"):
        print(
            f"  pairwise FAR measured down to {floor['far']:.2e} (distance {floor['threshold']:.3f}); below, extrapolated"
        )
    return EXIT_OK
