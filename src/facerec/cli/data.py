"""``facerec prepare-lfw`` and ``facerec embedders``."""

from __future__ import annotations

from facerec.cli.common import EXIT_OK, add


def add_parsers(sub) -> None:
    p = sub.add_parser("prepare-lfw", help="write LFW as an .npz (X, y, names), holding some images out")
    add(p, "--out", default="data/lfw_subset.npz")
    add(p, "--min-faces", type=int, default=20, help="keep people with at least this many images")
    add(p, "--holdout", type=int, default=0, help="hold N random images out as test_{i}_y{label}.jpg")
    add(p, "--holdout-per-person", type=int, default=0, help="hold out this many images of every person")
    add(p, "--max-per-person", type=int, default=0, help="keep at most this many images of each person")
    add(p, "--holdout-dir", default="infer_images")
    add(p, "--seed", type=int, default=0)
    add(p, "--data-home", default=None, help="scikit-learn data home (default $SCIKIT_LEARN_DATA)")
    p.set_defaults(func=prepare_lfw)

    p = sub.add_parser("embedders", help="list the embedders")
    p.set_defaults(func=embedders)


def prepare_lfw(args) -> int:
    from facerec.lfw import prepare_lfw as prepare

    r = prepare(
        args.out,
        min_faces=args.min_faces,
        holdout=args.holdout,
        holdout_per_person=args.holdout_per_person,
        max_per_person=args.max_per_person,
        holdout_dir=args.holdout_dir,
        seed=args.seed,
        data_home=args.data_home,
    )
    print(f"wrote {r.out}: {r.images} images of {r.people} people")
    if r.holdout:
        print(f"held out {len(r.holdout)} images in {args.holdout_dir}/ (test_{{i}}_y{{label}}.jpg)")
    return EXIT_OK


def embedders(args) -> int:
    from facerec.embed import embedder_names, get_spec

    for name in embedder_names():
        s = get_spec(name)
        print(f"{name:<18} {s.dim:>4}-d  {s.input_size}px  {s.description}")
    return EXIT_OK
