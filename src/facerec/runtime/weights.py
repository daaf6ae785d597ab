"""Model files fetched on first use: looked up in the folders a user names, then in facerec's
model cache, else downloaded from their official location into the cache. Every file's sha256 is
checked wherever it came from, so a truncated download or a different file never loads.

Where to look, in order: ``weights_dir`` (``--weights-dir``), the folders in ``$FACEREC_MODELS``
(``os.pathsep``-separated), ``facerec_home()/models``. A machine without internet copies the file
into one of them (the project's tests use ``../shared/models/yunet``).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from facerec.errors import WeightsError
from facerec.paths import atomic_write_bytes, facerec_home

DOWNLOAD_TIMEOUT_S = 60


@dataclass(frozen=True)
class ModelFile:
    """A model file with its one true content (``sha256``) and where it is published (``urls``,
    tried in order)."""

    filename: str
    sha256: str
    urls: tuple[str, ...]
    licence: str


def search_dirs(weights_dir: str | os.PathLike | None = None) -> list[Path]:
    dirs = [Path(weights_dir).expanduser()] if weights_dir else []
    dirs += [Path(d).expanduser() for d in os.environ.get("FACEREC_MODELS", "").split(os.pathsep) if d]
    return dirs + [facerec_home() / "models"]


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_path(model: ModelFile, weights_dir: str | os.PathLike | None = None, *, download: bool = True) -> Path:
    """The local path of ``model``, checked; downloaded into the cache when no folder has it."""
    dirs = search_dirs(weights_dir)
    for d in dirs:
        path = d / model.filename
        if path.is_file():
            digest = sha256_of(path)
            if digest != model.sha256:
                raise WeightsError(
                    f"{path}: sha256 {digest} is not {model.filename}'s ({model.sha256}); "
                    "delete it, or replace it with the official file"
                )
            return path
    cached = dirs[-1] / model.filename
    errors = []
    if download:
        for url in model.urls:
            try:
                data = _download(url)
            except OSError as exc:
                errors.append(f"{url}: {exc}")
                continue
            digest = hashlib.sha256(data).hexdigest()
            if digest != model.sha256:
                errors.append(f"{url}: got sha256 {digest}, expected {model.sha256}")
                continue
            atomic_write_bytes(cached, data)
            return cached
    looked = ", ".join(str(d) for d in dirs)
    raise WeightsError(
        f"{model.filename} is not in {looked}"
        + (f" and could not be downloaded ({'; '.join(errors)})" if errors else "")
        + f". Remedies: connect to the internet and run again; or download {model.urls[0]} "
        f"(sha256 {model.sha256}) into one of those folders, or name its folder with --weights-dir "
        "or $FACEREC_MODELS"
    )


def _download(url: str) -> bytes:
    from urllib.request import urlopen

    with urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:  # noqa: S310 (https URLs of our own table)
        return response.read()
