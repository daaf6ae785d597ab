"""Faces that fill the frame, measured on LFW: every View 2 pair image cropped tightly to its
subject's MTCNN box (no margin), in colour and in grey, as ID photos, avatars and cropped-face
datasets are. The crops go to a temporary folder laid out as LFW (``lfw_funneled/<person>/…``
with ``pairs.txt`` beside it), so ``facerec evaluate pairs --lfw-dir`` runs on them too.

    python bench/tight_crops.py build --out /tmp/tight_lfw
    python bench/tight_crops.py build --view dev --out /tmp/tight_dev
    python bench/tight_crops.py fill --crops /tmp/tight_dev --json bench/reported/tight_crops_fill.json
    python bench/tight_crops.py choose --crops /tmp/tight_dev --json bench/reported/tight_crops_choose.json
    python bench/tight_crops.py sweep --crops /tmp/tight_lfw --json bench/reported/tight_crops_sweep.json
    python bench/tight_crops.py detect --crops /tmp/tight_lfw --json bench/reported/tight_crops_detect.json
    python bench/tight_crops.py pairs --crops /tmp/tight_lfw --json bench/reported/tight_crops_pairs.json
    python bench/tight_crops.py grey --out /tmp/tight_lfw
    python bench/tight_crops.py pairs --crops /tmp/tight_lfw --variants uncropped-grey \
        --json bench/reported/tight_crops_pairs_grey.json
    python bench/tight_crops.py lfw --json bench/reported/tight_crops_lfw.json
    python bench/tight_crops.py speed --json bench/reported/tight_crops_speed.json

``detect``: with each detector, the images where a face is found by the detector alone (facerec
before the padded retry: ``create_detector(..., pad_misses=False)``) and by the default detector
(with the retry), and whether each face's box lies inside the image. ``sweep``: on a sample, how
many of the detector's misses each padding finds (edge-replicated or grey, by share of the side).
``pairs``: LFW pairs accuracy, CASIA FaceNet, on the uncropped images and on the tight crops.
``lfw``: faces found on all 13,233 untouched LFW images, the retry off and on.
``speed``: end to end on uncropped LFW with the retry off and on, alternately in one process.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from pipeline import lfw_paths  # noqa: E402

from common import machine, print_table, write_json  # noqa: E402

VARIANTS = ("colour", "grey")


def pair_images(lfw_dir: Path, view: str = "test") -> tuple[str, list[str]]:
    """(the pairs file's text in View 2's layout, every pair image's path, sorted). ``test``: View 2
    (what is reported); ``dev``: View 1's training pairs (``pairsDevTrain.txt``, LFW's set for
    choosing settings), dealt into 10 folds of 110 matched and 110 mismatched pairs, so that
    ``facerec evaluate pairs`` reads them as it reads View 2."""
    from facerec.evaluate.pairs import read_pairs

    if view == "test":
        text = (lfw_dir.parent / "pairs.txt").read_text()
    else:
        lines = [line for line in (lfw_dir.parent / "pairsDevTrain.txt").read_text().splitlines() if line.strip()]
        n = int(lines[0])
        matched, mismatched = lines[1 : 1 + n], lines[1 + n : 1 + 2 * n]
        per = n // 10
        body = [
            line for k in range(10) for line in matched[k * per : (k + 1) * per] + mismatched[k * per : (k + 1) * per]
        ]
        text = "\n".join([f"10 {per}", *body]) + "\n"
    with tempfile.TemporaryDirectory() as tmp:
        pairs_file = Path(tmp) / "pairs.txt"
        pairs_file.write_text(text)
        pairs = read_pairs(pairs_file, lfw_dir)
    return text, sorted({p.a for p in pairs} | {p.b for p in pairs})


def detect_all(pipe, paths: list[str]) -> list:
    """Each image's faces (subject first) through the pipeline, without embedding."""
    return pipe.run(paths, embed=False, desc="detect")


def tight_box(faces, width: int, height: int) -> tuple[tuple[int, int, int, int], bool]:
    """The subject's box rounded to whole pixels and clipped to the image (no margin), and whether
    a face was found; an image without one gets its central 40% (counted, not hidden)."""
    if faces:
        x1, y1, x2, y2 = faces[0].box
    else:
        x1, y1, x2, y2 = 0.3 * width, 0.3 * height, 0.7 * width, 0.7 * height
    box = (max(0, round(x1)), max(0, round(y1)), min(width, round(x2)), min(height, round(y2)))
    return box, bool(faces)


def check_temporary(out: Path) -> None:
    """Copies of LFW go to a temporary folder, never into the shared (read-only) data."""
    if out.resolve().is_relative_to(ROOT.parent / "shared"):
        raise SystemExit(f"{out}: the copies go to a temporary folder, never into the shared data")


def cmd_build(args) -> int:
    """Write every pair image's tight crop, colour and grey, under ``--out``."""
    from PIL import Image

    from facerec.pipeline import Pipeline

    lfw_dir = Path(lfw_paths(args.lfw_dir, 1)[0]).parents[1]
    pairs_text, paths = pair_images(lfw_dir, args.view)
    if args.limit:
        paths = paths[: args.limit]
    out = Path(args.out)
    check_temporary(out)
    pipe = Pipeline.create(embedder="facenet-casia", detector="mtcnn", device="cpu")
    pipe.detector = pipe.detector.inner  # the crops follow MTCNN's own boxes, as on today's main
    t = time.perf_counter()
    results = detect_all(pipe, paths)
    missed = []
    for path, r in zip(paths, results):
        img = Image.open(path).convert("RGB")
        (x1, y1, x2, y2), found = tight_box(r.faces, *img.size)
        if not found:
            missed.append(path)
        crop = img.crop((x1, y1, x2, y2))
        rel = Path(path).relative_to(lfw_dir)
        for variant in VARIANTS:
            dest = out / variant / "lfw_funneled" / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            (crop if variant == "colour" else crop.convert("L")).save(dest, quality=95)
    for variant in VARIANTS:
        (out / variant / "pairs.txt").write_text(pairs_text)
    sizes = np.array([Image.open(out / "colour" / "lfw_funneled" / Path(p).relative_to(lfw_dir)).size for p in paths])
    print(
        f"{len(paths)} pair images cropped to {out}/{{colour,grey}}/lfw_funneled in {time.perf_counter() - t:.0f} s; "
        f"median crop {int(np.median(sizes[:, 0]))}x{int(np.median(sizes[:, 1]))} px; "
        f"{len(missed)} without an MTCNN face (central 40% used): {missed[:5]}"
    )
    return 0


def cmd_grey(args) -> int:
    """The pair images uncropped but in grey, under ``--out``/uncropped-grey: the reference for the
    grey crops (which lose their colour as well as their margin)."""
    from PIL import Image

    lfw_dir = Path(lfw_paths(args.lfw_dir, 1)[0]).parents[1]
    pairs_text, paths = pair_images(lfw_dir, args.view)
    out = Path(args.out) / "uncropped-grey"
    check_temporary(out)
    for path in paths:
        dest = out / "lfw_funneled" / Path(path).relative_to(lfw_dir)
        dest.parent.mkdir(parents=True, exist_ok=True)
        Image.open(path).convert("L").save(dest, quality=95)
    (out / "pairs.txt").write_text(pairs_text)
    print(f"{len(paths)} pair images in grey under {out}")
    return 0


def crop_paths(crops: Path, variant: str, limit: int = 0) -> list[str]:
    paths = sorted(str(p) for p in (crops / variant / "lfw_funneled").glob("*/*.jpg"))
    if not paths:
        raise SystemExit(f"no crops under {crops / variant}; run: python bench/tight_crops.py build --out {crops}")
    return paths[:limit] if limit else paths


def inside(box, width: int, height: int) -> bool:
    x1, y1, x2, y2 = box
    return 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height


def frame_iou(box, width: int, height: int) -> float:
    from facerec.detect import box_iou

    return box_iou(box, (0.0, 0.0, float(width), float(height)))


def detection_row(name: str, variant: str, retry: bool, paths: list[str], results, seconds: float) -> dict:
    """How many images had a face; of their subjects, how many have a box inside the image, how
    many cover less than a third of the frame (in a face-only image: likely not the face), and
    how many pass the quality gate of ``facerec cluster`` (the reasons of those that do not)."""
    from collections import Counter

    from facerec.images import load_image
    from facerec.people.quality import QualityGate

    gate = QualityGate()
    found = in_image = small = passed = 0
    reasons: Counter = Counter()
    for path, r in zip(paths, results):
        if not r.faces:
            continue
        image, face = load_image(path), r.faces[0]
        h, w = image.shape[:2]
        found += 1
        in_image += inside(face.box, w, h)
        small += frame_iou(face.box, w, h) < 1 / 3
        why = gate.reason(gate.measure(image, face.box, face.score, face.landmarks))
        passed += why is None
        if why is not None:
            reasons[why.split(":")[0]] += 1
    return {
        "detector": name,
        "variant": variant,
        "retry": retry,
        "images": len(paths),
        "found": found,
        "found_pct": 100.0 * found / len(paths),
        "inside": in_image,
        "small_subject": small,
        "gate_pass": passed,
        "gate_reasons": dict(reasons.most_common()),
        "img_s": len(paths) / seconds,
    }


def cmd_detect(args) -> int:
    """Each detector on each variant, alone and with the padded retry (:class:`PaddedRetry`: again
    on a padded copy where nothing was found or a face fills the frame)."""
    from facerec.pipeline import Pipeline

    rows = []
    for name in args.detectors.split(","):
        pipe = Pipeline.create(embedder="facenet-casia", detector=name, device="cpu")
        wrapped = pipe.detector
        for variant in args.variants.split(","):
            paths = crop_paths(Path(args.crops), variant, args.limit)
            for retry in (False, True):
                pipe.detector = wrapped if retry else wrapped.inner
                t = time.perf_counter()
                results = detect_all(pipe, paths)
                rows.append(detection_row(name, variant, retry, paths, results, time.perf_counter() - t))
                print_table(rows[-1:], list(rows[-1]), header=len(rows) == 1)
    print()
    print_table(rows, list(rows[0]))
    write_json(args.json, {"machine": machine(), "crops": args.crops, "rows": rows, "pad": pad_settings()})
    return 0


def cmd_fill(args) -> int:
    """How much of the image the subject's box spans (the smaller of its shares of the width and
    the height), by each detector alone, on a sample of the crops and of untouched LFW: where
    :data:`FILL_SHARE` separates faces that fill the frame from faces with room. Run it on the
    development set's crops (``build --view dev``), never on the crops the report is made of."""
    from facerec.detect import by_prominence, create_detector
    from facerec.image_batch import ImageBatch
    from facerec.images import load_image

    rng = np.random.default_rng(0)
    sets = {v: crop_paths(Path(args.crops), v) for v in args.variants.split(",")}
    sets["uncropped"] = lfw_paths(args.lfw_dir, 0)
    rows = []
    for name in args.detectors.split(","):
        det = create_detector(name, pad_misses=False)
        for label, paths in sets.items():
            sample = [paths[i] for i in sorted(rng.choice(len(paths), min(args.sample, len(paths)), replace=False))]
            spans = []
            for path in sample:
                image = load_image(path)
                h, w = image.shape[:2]
                (faces,) = det.detect(ImageBatch([image]))
                if faces:
                    x1, y1, x2, y2 = by_prominence(faces, w, h)[0].box
                    spans.append(min((x2 - x1) / w, (y2 - y1) / h))
            q = np.quantile(spans, [0, 0.001, 0.01, 0.5, 0.99, 1]) if spans else [float("nan")] * 6
            rows.append(
                {
                    "detector": name,
                    "images": label,
                    "sample": len(sample),
                    "found": len(spans),
                    "min": q[0],
                    "q0.1%": q[1],
                    "q1%": q[2],
                    "median": q[3],
                    "q99%": q[4],
                    "max": q[5],
                    "fill": int(np.sum(np.array(spans) >= pad_settings()["fill"])),
                }
            )
            print_table(rows[-1:], list(rows[-1]), header=len(rows) == 1)
    write_json(args.json, {"machine": machine(), "crops": args.crops, "rows": rows, "pad": pad_settings()})
    return 0


def pad_settings() -> dict:
    from facerec.detect.padding import FILL_SHARE, PAD_GREY, PAD_MODE, PAD_SHARE

    return {"share": PAD_SHARE, "mode": PAD_MODE, "grey": PAD_GREY, "fill": FILL_SHARE}


def cmd_sweep(args) -> int:
    """Each padding on the images of a sample that the detector alone misses."""
    from facerec.detect import create_detector
    from facerec.detect.padding import PaddedRetry
    from facerec.image_batch import ImageBatch
    from facerec.images import load_image

    rng = np.random.default_rng(0)
    rows = []
    for variant in args.variants.split(","):
        paths = crop_paths(Path(args.crops), variant)
        sample = [paths[i] for i in sorted(rng.choice(len(paths), min(args.sample, len(paths)), replace=False))]
        images = [load_image(p) for p in sample]
        for name in args.detectors.split(","):
            det = create_detector(name, pad_misses=False)
            misses = [img for img in images if not det.detect(ImageBatch([img]))[0]]
            for mode in ("edge", "constant"):
                for share in (float(s) for s in args.shares.split(",")):
                    retry = PaddedRetry(det, share=share, mode=mode)
                    t = time.perf_counter()
                    found = [retry.detect(ImageBatch([img]))[0] for img in misses]
                    seconds = time.perf_counter() - t
                    subjects = [by_subject(f, img) for f, img in zip(found, misses) if f]
                    rows.append(
                        {
                            "variant": variant,
                            "detector": name,
                            "sample": len(sample),
                            "missed": len(misses),
                            "mode": mode,
                            "share": share,
                            "found": len(subjects),
                            "median_frame_iou": float(np.median(subjects)) if subjects else None,
                            "ms_per_miss": 1000 * seconds / max(len(misses), 1),
                        }
                    )
                    print_table(rows[-1:], list(rows[-1]), header=len(rows) == 1)
    write_json(args.json, {"machine": machine(), "crops": args.crops, "rows": rows})
    return 0


def by_subject(faces, img: np.ndarray) -> float:
    """The subject's IoU with the whole frame (a tight crop's face is nearly the frame)."""
    from facerec.detect import by_prominence

    h, w = img.shape[:2]
    return frame_iou(by_prominence(faces, w, h)[0].box, w, h)


def cmd_pairs(args) -> int:
    """LFW pairs accuracy with ``--embedder``, uncropped and on each variant of the crops, by the
    detector alone and with the padded retry."""
    from facerec.evaluate.common import embed_paths
    from facerec.evaluate.pairs import evaluate_pairs, read_pairs
    from facerec.pipeline import Pipeline

    lfw_dir = Path(lfw_paths(args.lfw_dir, 1)[0]).parents[1]
    sets = {"uncropped": lfw_dir} | {v: Path(args.crops) / v / "lfw_funneled" for v in args.variants.split(",")}
    pipe = Pipeline.create(embedder=args.embedder, detector=args.detector, device="cpu")
    wrapped = pipe.detector
    rows = []
    for label, folder in sets.items():
        pairs = [p for p in read_pairs(lfw_dir.parent / "pairs.txt", folder) if p.fold < args.folds]
        paths = sorted({p.a for p in pairs} | {p.b for p in pairs})
        for retry in (False, True) if args.alone else (True,):
            pipe.detector = wrapped if retry else wrapped.inner
            t = time.perf_counter()
            embedded = embed_paths(pipe, paths)
            seconds = time.perf_counter() - t
            emb, no_face = embedded.embeddings, embedded.fallback
            r = evaluate_pairs(pairs, dict(zip(paths, emb)))
            rows.append(
                {
                    "images": label,
                    "retry": retry,
                    "pairs": len(pairs),
                    "accuracy": 100 * r["accuracy_mean"],
                    "std": 100 * r["accuracy_std"],
                    "auc": r["auc"],
                    "no_face": int(no_face.sum()),
                    "seconds": seconds,
                }
            )
            print_table(rows[-1:], list(rows[-1]), header=len(rows) == 1)
    write_json(
        args.json,
        {
            "machine": machine(),
            "embedder": args.embedder,
            "detector": args.detector,
            "folds": args.folds,
            "note": "no_face: images with no face found, embedded from their central crop (evaluate's fallback); "
            "retry False: the detector alone (facerec before the padded retry)",
            "rows": rows,
            "pad": pad_settings(),
        },
    )
    return 0


def cmd_choose(args) -> int:
    """Paddings compared where settings may be chosen: on the development set's crops (``build
    --view dev``), CASIA FaceNet, pairs accuracy on its 2,200 pairs and, over all pairs of its
    crops (millions of impostors), the equal error rate and the verification rate at 0.1% false
    accepts. ``before``: a grey border of 30% only where nothing was found (the retry before faces
    that fill the frame were searched again)."""
    from facerec.detect.padding import PaddedRetry
    from facerec.evaluate.common import embed_paths
    from facerec.evaluate.pairs import evaluate_pairs, read_pairs
    from facerec.pipeline import Pipeline

    root = Path(args.crops) / args.variant
    pairs = read_pairs(root / "pairs.txt", root / "lfw_funneled")
    paths = sorted({p.a for p in pairs} | {p.b for p in pairs})
    names = np.array([Path(p).parent.name for p in paths])
    pipe = Pipeline.create(embedder="facenet-casia", detector=args.detector, device="cpu")
    inner = pipe.detector.inner
    rows = []
    for setting in args.settings.split(","):
        if setting == "before":
            pipe.detector = PaddedRetry(inner, share=0.3, mode="constant", fill=float("inf"))
        else:
            mode, share = setting.split(":")
            pipe.detector = PaddedRetry(inner, share=float(share), mode=mode)
        t = time.perf_counter()
        embedded = embed_paths(pipe, paths)
        seconds = time.perf_counter() - t
        r = evaluate_pairs(pairs, dict(zip(paths, embedded.embeddings)))
        rows.append(
            {"setting": setting, "accuracy": 100 * r["accuracy_mean"], "std": 100 * r["accuracy_std"], "auc": r["auc"]}
            | all_pairs(embedded.embeddings, names)
            | {"no_face": int(embedded.fallback.sum()), "seconds": seconds}
        )
        print_table(rows[-1:], list(rows[-1]), header=len(rows) == 1)
    write_json(args.json, {"machine": machine(), "crops": str(root), "detector": args.detector, "rows": rows})
    return 0


def all_pairs(emb: np.ndarray, names: np.ndarray) -> dict:
    """Every pair of these unit embeddings: the equal error rate and the share of genuine pairs
    accepted where 0.1% of impostor pairs are (``facerec evaluate``'s ROC figures)."""
    from facerec.evaluate.pairs import roc_metrics

    upper = np.triu_indices(len(emb), 1)
    dist = np.sqrt(np.maximum(2 - 2 * emb @ emb.T, 0))[upper]
    same = (names[:, None] == names[None, :])[upper]
    roc = roc_metrics(dist, same)
    return {
        "genuine": int(same.sum()),
        "impostor": int((~same).sum()),
        "eer": 100 * roc["eer"],
        "tar_at_far_0.1%": 100 * roc["tar_at_far"]["0.001"],
    }


def cmd_lfw(args) -> int:
    """Every LFW image, untouched: the images with a face and the faces found, by each detector
    alone and with the padded retry (changed: the images whose faces it changed)."""
    from facerec.pipeline import Pipeline

    paths = lfw_paths(args.lfw_dir, args.limit)
    rows = []
    for name in args.detectors.split(","):
        pipe = Pipeline.create(embedder="facenet-casia", detector=name, device="cpu")
        wrapped = pipe.detector
        boxes = {}
        for retry in (False, True):
            pipe.detector = wrapped if retry else wrapped.inner
            boxes[retry] = [[f.box for f in r.faces] for r in detect_all(pipe, paths)]
            rows.append(
                {
                    "detector": name,
                    "retry": retry,
                    "images": len(paths),
                    "with_face": sum(bool(b) for b in boxes[retry]),
                    "faces": sum(len(b) for b in boxes[retry]),
                }
            )
        missed = [p for p, b in zip(paths, boxes[False]) if not b]
        # images whose faces (boxes) the retry changed: missed ones found, faces that filled the frame
        rows[-1]["changed"] = [str(Path(p).name) for p, a, b in zip(paths, boxes[False], boxes[True]) if a != b]
        rows[-1]["missed_alone"] = [str(Path(p).name) for p in missed]
        print_table(rows[-2:], ["detector", "retry", "images", "with_face", "faces"], header=len(rows) == 2)
    write_json(args.json, {"machine": machine(), "rows": rows, "pad": pad_settings()})
    return 0


def cmd_speed(args) -> int:
    """End to end on uncropped LFW (decode, detect, embed), the retry off and on in turn in one
    process, so both see the same machine: what the retry costs where faces have room."""
    from facerec.pipeline import Pipeline

    paths = lfw_paths(args.lfw_dir, args.limit)
    pipe = Pipeline.create(embedder=args.embedder, detector=args.detector, device="cpu")
    wrapped = pipe.detector
    pipe.run(paths[:64])  # warm-up: first calls allocate and plan
    rates: dict[bool, list[float]] = {False: [], True: []}
    no_face = {}
    for _ in range(args.repeats):
        for retry in (False, True):
            pipe.detector = wrapped if retry else wrapped.inner
            t = time.perf_counter()
            results = pipe.run(paths, subject_only=True)
            rates[retry].append(len(paths) / (time.perf_counter() - t))
            no_face[retry] = sum(not r.faces for r in results)
    rows = [
        {
            "retry": retry,
            "img_s_median": float(np.median(r)),
            "runs": [round(x, 1) for x in r],
            "no_face": no_face[retry],
        }
        for retry, r in rates.items()
    ]
    print_table(rows, ["retry", "img_s_median", "no_face"])
    ratio = rows[1]["img_s_median"] / rows[0]["img_s_median"]
    print(f"{len(paths)} LFW images, {args.embedder} + {args.detector}: with the retry {ratio:.3f}x the speed without")
    write_json(
        args.json,
        {
            "machine": machine(),
            "images": len(paths),
            "embedder": args.embedder,
            "detector": args.detector,
            "rows": rows,
            "ratio": ratio,
            "pad": pad_settings(),
        },
    )
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    build = sub.add_parser("build", help="write the tight crops")
    build.add_argument("--out", required=True, help="a temporary folder (never under ../shared)")
    build.add_argument("--limit", type=int, default=0, help="first N pair images (0 = all 7,701)")
    grey = sub.add_parser("grey", help="the pair images uncropped, in grey (the grey crops' reference)")
    grey.add_argument("--out", required=True, help="the folder build wrote")
    grey.add_argument("--view", choices=("test", "dev"), default="test")
    grey.set_defaults(func=cmd_grey)
    build.add_argument(
        "--view",
        choices=("test", "dev"),
        default="test",
        help="test: View 2's pair images (reported); dev: View 1's training pairs (settings chosen on them)",
    )
    for name, fn, helptext in (
        ("detect", cmd_detect, "faces found, with and without the padded retry"),
        ("sweep", cmd_sweep, "paddings compared on a sample"),
        ("pairs", cmd_pairs, "LFW pairs accuracy, uncropped and tight"),
        ("fill", cmd_fill, "how much of the image the subject's box spans (choose FILL_SHARE on dev crops)"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--crops", required=True, help="the folder build wrote")
        p.add_argument("--variants", default=",".join(VARIANTS))
        p.add_argument("--json", default=None)
        p.set_defaults(func=fn)
        if name != "pairs":
            p.add_argument("--detectors", default="mtcnn,yunet")
    sub.choices["detect"].add_argument("--limit", type=int, default=0, help="first N crops of each variant")
    sub.choices["sweep"].add_argument("--sample", type=int, default=300)
    sub.choices["fill"].add_argument("--sample", type=int, default=1500)
    sub.choices["sweep"].add_argument("--shares", default="0.1,0.2,0.3,0.5")
    pairs = sub.choices["pairs"]
    pairs.add_argument("--embedder", default="facenet-casia")
    pairs.add_argument("--detector", "--align", default="mtcnn")
    pairs.add_argument("--folds", type=int, default=10, help="the first N folds of View 2")
    pairs.add_argument(
        "--no-alone", dest="alone", action="store_false", help="only with the retry (not the detector alone)"
    )
    choose = sub.add_parser("choose", help="paddings compared on the development set's crops")
    choose.add_argument("--crops", required=True, help="the folder build --view dev wrote")
    choose.add_argument("--variant", default="colour", choices=VARIANTS)
    choose.add_argument("--detector", default="mtcnn")
    choose.add_argument("--settings", default="before,edge:0.2,edge:0.3,constant:0.2,constant:0.3")
    choose.add_argument("--json", default=None)
    choose.set_defaults(func=cmd_choose)
    lfw = sub.add_parser("lfw", help="faces found on every untouched LFW image, the retry off and on")
    lfw.add_argument("--limit", type=int, default=0, help="first N LFW images (0 = all 13,233)")
    lfw.add_argument("--detectors", default="mtcnn,yunet")
    lfw.add_argument("--json", default=None)
    lfw.set_defaults(func=cmd_lfw)
    speed = sub.add_parser("speed", help="end-to-end speed on uncropped LFW, the retry off and on")
    speed.add_argument("--limit", type=int, default=1000, help="first N LFW images")
    speed.add_argument("--repeats", type=int, default=3)
    speed.add_argument("--embedder", default="facenet-casia")
    speed.add_argument("--detector", "--align", default="mtcnn")
    speed.add_argument("--json", default=None)
    speed.set_defaults(func=cmd_speed)
    for p in sub.choices.values():
        p.add_argument("--lfw-dir", default=None)
    build.set_defaults(func=cmd_build)
    args = ap.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
