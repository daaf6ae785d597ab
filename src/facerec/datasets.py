"""Labelled image sets: the seed's ``.npz`` (X, y, names) and folder-per-person directories."""

from __future__ import annotations

import hashlib
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facerec.errors import DataError, ImageError
from facerec.images import MAX_IMAGE_FILE_BYTES, check_rgb_array, decode_image, is_image_path
from facerec.paths import read_regular_file


@dataclass
class Sample:
    """One image to embed. ``source`` is a file path, encoded image bytes, or an in-memory uint8
    (H, W, 3) array."""

    id: str
    source: str | bytes | np.ndarray
    label: int = -1

    def read(self) -> tuple[str, object]:
        """Return (content key, raw) where raw is the file's bytes or the array.

        The key is a SHA-256 of the content, so the embedding cache follows the pixels,
        not the file name."""
        if isinstance(self.source, np.ndarray):
            arr = np.ascontiguousarray(self.source)
            h = hashlib.sha256(str(arr.shape).encode())
            h.update(arr.tobytes())
            return h.hexdigest(), arr
        if isinstance(self.source, bytes):
            if not self.source:
                raise ImageError(f"{self.id}: empty (0 bytes)")
            return hashlib.sha256(self.source).hexdigest(), self.source
        try:
            data = read_regular_file(self.source, max_bytes=MAX_IMAGE_FILE_BYTES)  # no FIFO, no /dev/zero
        except OSError as exc:
            raise ImageError(f"{self.source}: cannot read file ({exc.strerror or exc})") from None
        if not data:
            raise ImageError(f"{self.source}: empty file (0 bytes)")
        return hashlib.sha256(data).hexdigest(), data

    def decode(self, raw: object, max_pixels: int) -> np.ndarray:
        if isinstance(raw, np.ndarray):
            return check_rgb_array(raw, label=self.id)
        label = self.id if isinstance(self.source, bytes) else str(self.source)
        return decode_image(raw, label=label, max_pixels=max_pixels)


@dataclass
class Dataset:
    """Samples plus the label -> name table. ``name`` feeds default output file names."""

    samples: list[Sample]
    names: list[str]
    name: str

    @property
    def labels(self) -> np.ndarray:
        return np.array([s.label for s in self.samples], dtype=np.int64)


def load_dataset(path: str | os.PathLike) -> Dataset:
    """An ``.npz`` file or a folder of per-person subfolders."""
    p = Path(path)
    if p.is_dir():
        return load_folder(p)
    if not p.exists():
        raise DataError(f"{p}: no such file or folder")
    return load_npz(p)


def load_npz(path: str | os.PathLike) -> Dataset:
    """Load and validate the seed's format: X uint8 (N, H, W, 3), y int (N,), names (K,) str."""
    path = Path(path)
    if path.is_file() and not zipfile.is_zipfile(path):
        raise DataError(f"{path}: not a readable .npz (not a zip archive of arrays)")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in ("X", "y", "names") if k not in data.files]
            if missing:
                raise DataError(
                    f"{path}: missing key(s) {missing}; expected X (N,H,W,3) uint8, "
                    f"y (N,) int, names (K,) str; found {sorted(data.files)}"
                )
            X, y, names = data["X"], data["y"], data["names"]
    except DataError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise DataError(
                f"{path}: holds Python objects (pickled arrays), which facerec never loads; "
                f"save names as a string array, e.g. np.array(names, dtype=str)"
            ) from None
        raise DataError(f"{path}: not a readable .npz ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz ({exc})") from None
    if X.ndim == 3:
        X = np.repeat(X[..., None], 3, axis=3)  # grayscale stack
    if X.ndim != 4 or X.shape[3] != 3:
        raise DataError(f"{path}: X must have shape (N, H, W, 3), got {X.shape}")
    if X.dtype != np.uint8:
        raise DataError(
            f"{path}: X must be uint8 (0-255), got {X.dtype}; "
            f"convert with (X * 255).round().astype(np.uint8) if it holds 0-1 floats"
        )
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{path}: y must be a 1-D integer array, got {y.dtype} {y.shape}")
    if len(y) != len(X):
        raise DataError(f"{path}: X has {len(X)} images but y has {len(y)} labels")
    if names.ndim != 1 or names.dtype.kind not in "US":
        raise DataError(f"{path}: names must be a 1-D string array, got {names.dtype} {names.shape}")
    names_list = [n.decode() if isinstance(n, bytes) else str(n) for n in names.tolist()]
    if len(y) and (y.min() < 0 or y.max() >= len(names_list)):
        raise DataError(
            f"{path}: labels must lie in [0, {len(names_list) - 1}] (one per name), got range [{y.min()}, {y.max()}]"
        )
    if len(X) == 0:
        raise DataError(f"{path}: holds no images")
    stem = path.stem
    samples = [Sample(f"{stem}#{i}", X[i], int(y[i])) for i in range(len(X))]
    return Dataset(samples, names_list, stem)


def load_folder(root: str | os.PathLike) -> Dataset:
    """``root/<person>/<image>``: one subfolder per person; other files are ignored."""
    root = Path(root)
    people = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    samples, names = [], []
    for person in people:
        files = sorted(f for f in person.rglob("*") if f.is_file() and is_image_path(f))
        if not files:
            continue
        label = len(names)
        names.append(person.name)
        samples += [Sample(str(f.relative_to(root)), str(f), label) for f in files]
    if not samples:
        raise DataError(f"{root}: no images found; expected one subfolder per person holding image files")
    return Dataset(samples, names, root.name)


_LABEL_RE = re.compile(r"_y(\d+)(?:\D|$)")


def label_from_filename(path: str | os.PathLike) -> int | None:
    """The seed's sanity-check convention: ``test_0_y3.jpg`` -> 3."""
    m = _LABEL_RE.search(Path(path).stem + ".")
    return int(m.group(1)) if m else None


def scan_files(root: str | os.PathLike) -> tuple[list[Path], list[Path]]:
    """Every regular file under the folder ``root`` (recursive, sorted; symbolic links to folders
    not followed), and the paths that could not be listed or checked (longer than the system's
    limit, unreadable): one bad path is the caller's to report, never the end of the scan."""
    files, failed = [], []

    def unlisted(exc: OSError) -> None:
        failed.append(Path(exc.filename or root))

    for folder, _, names in os.walk(root, onerror=unlisted):
        for name in names:
            f = Path(folder) / name
            try:
                if f.is_file():  # not a FIFO, socket or device
                    files.append(f)
            except OSError:
                failed.append(f)
    return sorted(files), sorted(failed)


def collect_inputs(path: str | os.PathLike) -> tuple[list[Path], list[Path]]:
    """Image files under ``path`` (a file or a folder, recursive, sorted) and skipped non-images.
    A path the scan could not check is listed with the images: reading it fails, and says why."""
    p = Path(path)
    if p.is_file():
        return [p], []
    if not p.is_dir():
        raise ImageError(f"{p}: no such file or folder")
    images, skipped = [], []
    files, failed = scan_files(p)
    for f in files:
        if not f.name.startswith("."):
            (images if is_image_path(f) else skipped).append(f)
    return sorted(images + failed), skipped
