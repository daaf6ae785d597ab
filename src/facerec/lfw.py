"""Prepare LFW as the seed's ``.npz`` through scikit-learn's loader (offline when cached)."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from facerec.errors import DataError, InputError
from facerec.paths import atomic_write_bytes, facerec_home

#: Default crop of the 250x250 deep-funneled images: the central 160x160 (rows/cols 45-205),
#: kept at full resolution. It matches what MTCNN + a 32 px margin cuts around an LFW face,
#: so ``--detector resize`` sees the same framing FaceNet was trained on, and MTCNN still has
#: context to find the face. (scikit-learn's default, 125x94 at half size = 62x47 px, is
#: far too small and tight for FaceNet.)
DEFAULT_SLICE = (slice(45, 205), slice(45, 205))
DEFAULT_RESIZE = 1.0
LFW_FILES = (
    "pairs.txt",
    "pairsDevTrain.txt",
    "pairsDevTest.txt",
    "people.txt",
    "peopleDevTrain.txt",
    "peopleDevTest.txt",
    "lfw-names.txt",
    "LFW-README.txt",
)


def sklearn_data_home(data_home: str | os.PathLike | None = None) -> Path | None:
    """A folder scikit-learn can use as ``data_home``.

    scikit-learn writes a joblib cache inside ``lfw_home``; when the given folder (or
    ``$SCIKIT_LEARN_DATA``) holds LFW but is read-only, we build a writable symlink farm
    of it under ``$FACEREC_HOME/sklearn_data`` instead of copying 13,233 images.
    """
    home = Path(data_home or os.environ.get("SCIKIT_LEARN_DATA") or Path.home() / "scikit_learn_data").expanduser()
    lfw = home / "lfw_home"
    if not lfw.is_dir() or os.access(lfw, os.W_OK):
        return home
    farm = facerec_home() / "sklearn_data"
    farm_lfw = farm / "lfw_home"
    farm_lfw.mkdir(parents=True, exist_ok=True)
    for entry in lfw.iterdir():
        link = farm_lfw / entry.name
        if entry.name == "joblib":
            continue
        if not link.exists():
            if link.is_symlink():
                link.unlink()
            link.symlink_to(entry.resolve())
    return farm


def lfw_people(min_faces: int, *, data_home=None, slice_=DEFAULT_SLICE, resize: float = DEFAULT_RESIZE):
    """(X uint8 (N,H,W,3), y int (N,), names str (K,)) from ``fetch_lfw_people(color=True)``."""
    from sklearn.datasets import fetch_lfw_people

    home = sklearn_data_home(data_home)
    try:
        lfw = fetch_lfw_people(
            data_home=str(home),
            min_faces_per_person=min_faces,
            color=True,
            slice_=slice_,
            resize=resize,
            funneled=True,
            download_if_missing=True,
        )
    except OSError as exc:
        raise DataError(
            f"cannot load LFW from {home} nor download it ({exc}); set SCIKIT_LEARN_DATA to a "
            f"folder holding lfw_home/ or connect to the internet"
        ) from None
    X = np.clip(np.rint(lfw.images * 255.0), 0, 255).astype(np.uint8)
    return X, lfw.target.astype(np.int64), np.asarray(lfw.target_names, dtype=str)


@dataclass
class PreparedLFW:
    out: Path
    images: int
    people: int
    holdout: list[Path]


def prepare_lfw(
    out: str | os.PathLike,
    *,
    min_faces: int = 20,
    holdout: int = 0,
    holdout_per_person: int = 0,
    max_per_person: int = 0,
    holdout_dir: str | os.PathLike = "infer_images",
    seed: int = 0,
    data_home=None,
    slice_=DEFAULT_SLICE,
    resize: float = DEFAULT_RESIZE,
) -> PreparedLFW:
    """Write ``out`` (.npz: X, y, names) and optionally hold images out as ``test_{i}_y{label}.jpg``.

    ``holdout`` takes N random images; ``holdout_per_person`` takes that many of each person
    (the closed-set protocol). Held-out images are removed from the ``.npz``.
    ``max_per_person`` keeps at most that many images of each person (a small, balanced set).
    """
    if min_faces < 1:
        raise InputError(f"min_faces must be >= 1, got {min_faces}")
    if holdout < 0 or holdout_per_person < 0:
        raise InputError("hold-out counts must be >= 0")
    X, y, names = lfw_people(min_faces, data_home=data_home, slice_=slice_, resize=resize)
    rng = np.random.default_rng(seed)
    if max_per_person:
        keep_idx = np.concatenate(
            [np.sort(rng.permutation(np.flatnonzero(y == label))[:max_per_person]) for label in np.unique(y)]
        )
        keep_idx.sort()
        X, y = X[keep_idx], y[keep_idx]
    held = np.zeros(len(y), bool)
    if holdout_per_person:
        for label in np.unique(y):
            idx = np.flatnonzero(y == label)
            if len(idx) <= holdout_per_person:
                raise InputError(f"{names[label]} has {len(idx)} images; cannot hold out {holdout_per_person}")
            held[rng.choice(idx, holdout_per_person, replace=False)] = True
    if holdout:
        free = np.flatnonzero(~held)
        if holdout >= len(free):
            raise InputError(f"holding out {holdout} images would leave no training images ({len(free)} available)")
        held[rng.choice(free, holdout, replace=False)] = True
    written: list[Path] = []
    if held.any():
        hdir = Path(holdout_dir)
        hdir.mkdir(parents=True, exist_ok=True)
        for stale in hdir.glob("test_*_y*.jpg"):  # an earlier hold-out would corrupt the accuracy line
            stale.unlink()
        for i, idx in enumerate(np.flatnonzero(held)):
            path = hdir / f"test_{i}_y{y[idx]}.jpg"
            buf = io.BytesIO()
            Image.fromarray(X[idx]).save(buf, format="JPEG", quality=95)
            atomic_write_bytes(path, buf.getvalue())
            written.append(path)
    keep = ~held
    buf = io.BytesIO()
    np.savez_compressed(buf, X=X[keep], y=y[keep], names=names)
    out = Path(out)
    atomic_write_bytes(out, buf.getvalue())
    return PreparedLFW(out, int(keep.sum()), len(names), written)
