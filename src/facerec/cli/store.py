"""``facerec store copy`` (a gallery between backends, checked) and ``facerec calibrate`` (recompute
the open-set threshold from every face)."""

from __future__ import annotations

from facerec.cli.common import EXIT_OK, add, store_token_arg


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
        help="recompute every face's leave-one-out distances and the open-set threshold (O(n^2): "
        "changes update them incrementally; run this after many removals or on a schedule)",
    )
    add(cal, "--model", required=True, help="a model file or a store URI")
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
    from facerec.gallery.calibration import check_rate
    from facerec.store import ServedGallery, open_store

    if args.fpir is not None:
        check_rate(args.fpir, "--fpir")
    with open_store(args.model, writer=True, token=args.store_token) as store:
        g = store.load()
        served = ServedGallery(store, gallery=g, fpir=args.fpir, sync_s=0)
        cal = served.recalibrate()
    print(f"{args.model}: {len(g)} faces; open-set threshold {cal.threshold:.4f}: {cal.describe()}")
    print(f"  {cal.promise()}")
    return EXIT_OK
