"""The gallery's ``.npz`` file: a JSON header (``meta``) beside plain arrays, read without ever
unpickling (a model file cannot run code) and written atomically (an earlier file survives any
failure). This module knows the layout and its versions; :class:`~facerec.gallery.Gallery` knows
what the header and the arrays mean."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from facerec.errors import ModelFileError
from facerec.paths import atomic_write_bytes

FORMAT = "facerec-gallery"
FORMAT_VERSION = 1

#: Arrays in the file -> the gallery's per-face column of that name. Files of 0.1/0.2 lack them:
#: the gallery gives such faces its defaults.
COLUMN_ARRAYS = {
    "face_ids": "face_id",
    "sources": "source",
    "boxes": "box",
    "enrolled_ms": "enrolled_ms",
    "genuine_d": "genuine_d",
    "impostor_d": "impostor_d",
}


def check_header(meta: object, source: str) -> dict:
    """``meta`` if it is a facerec gallery header this version reads; ModelFileError naming ``source`` otherwise."""
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{source}: not a facerec model")
    version = meta.get("format_version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise ModelFileError(f"{source}: damaged model (format_version {version!r} is not an integer)")
    if version > FORMAT_VERSION:
        raise ModelFileError(f"{source}: made by a newer facerec (format {version}); upgrade facerec")
    return meta


def write_npz(path: str | os.PathLike, meta: dict, embeddings, labels, sample_ids, columns: dict) -> Path:
    """Write the header and the rows atomically (temp file, then rename)."""
    by_column = {col: key for key, col in COLUMN_ARRAYS.items()}
    text = {"face_id", "source"}
    arrays = {
        by_column[c]: (np.array(v, dtype=str) if c in text else np.asarray(v))
        for c, v in columns.items()
        if c in by_column
    }
    buf = io.BytesIO()
    np.savez(
        buf,
        meta=np.frombuffer(json.dumps(meta).encode(), np.uint8),
        embeddings=embeddings,
        labels=labels,
        sample_ids=np.array(sample_ids, dtype=str),
        **arrays,
    )
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path


def read_npz(path: str | os.PathLike) -> tuple[dict, np.ndarray, np.ndarray, list, dict]:
    """``(meta, embeddings, labels, sample_ids, columns)`` from a gallery file, the header checked;
    ModelFileError naming the file for anything that is not one."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file (train one with `facerec train`)")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path}: not a facerec model file (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as data:
            if "meta" not in data.files:
                raise ModelFileError(f"{path}: not a facerec model (no header)")
            meta = json.loads(bytes(data["meta"]).decode())
            emb, labels, ids = data["embeddings"], data["labels"], data["sample_ids"]
            columns = {col: data[key] for key, col in COLUMN_ARRAYS.items() if key in data.files}
    except ModelFileError:
        raise
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path}: not a facerec model file ({type(exc).__name__}: {exc})") from None
    return check_header(meta, str(path)), emb, labels, ids.tolist(), columns
