"""What an ingest reads: a folder of photos (recursive), a text file of paths or URLs, or a
Parquet/CSV manifest with ``path`` and an optional ``person`` column.

Relative paths in a list or manifest are relative to the file that names them. A person column
enrols each image's most prominent face under that name; without one (or where a row's person is
empty) every face of the image is stored unnamed, for search and for clustering into people.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from facerec.datasets import scan_files
from facerec.errors import DataError
from facerec.images import is_image_path
from facerec.names import InvalidName, check_name

MANIFEST_SUFFIXES = (".csv", ".parquet", ".pq")
#: A manifest's path and person column names (any case).
PATH_COLUMN, PERSON_COLUMN = "path", "person"


@dataclass(frozen=True)
class Item:
    """One image to ingest: a local path or an http(s) URL, and its person (None: unnamed)."""

    path: str
    person: str | None = None


def is_url(path: str) -> bool:
    return path.startswith(("http://", "https://"))


def read_source(source: str | os.PathLike) -> list[Item]:
    """Every image ``source`` names, in a stable order (a folder's sorted paths; a list's lines).
    A folder's path that could not be checked (over the system's length limit, unreadable) is an
    item too: reading it fails, and the job reports it as a failed image and goes on."""
    src = Path(source)
    if src.is_dir():
        files, failed = scan_files(src)
        items = [Item(str(p)) for p in sorted([p for p in files if is_image_path(p)] + failed)]
        if not items:
            raise DataError(f"{source}: no image files (.jpg, .png, ...) in this folder or below it")
        return items
    if not src.is_file():
        raise DataError(f"{source}: no such file or folder")
    suffix = src.suffix.lower()
    if suffix == ".csv":
        rows = _csv_rows(src)
    elif suffix in (".parquet", ".pq"):
        rows = _parquet_rows(src)
    else:
        rows = _list_rows(src)
    items = []
    for line, (path, person) in rows:
        path = (path or "").strip()
        if not path:
            raise DataError(f"{source}: row {line} has no path")
        if not is_url(path) and not Path(path).is_absolute():
            path = str(src.parent / path)
        person = (person or "").strip() or None
        if person is not None:  # the API's rule: every person an ingest stores can be addressed there
            try:
                person = check_name(person)
            except InvalidName as exc:
                raise DataError(f"{source}: row {line}: {exc}") from None
        items.append(Item(path, person))
    if not items:
        raise DataError(f"{source}: names no image")
    return items


def _list_rows(src: Path):
    try:
        text = src.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(
            f"{src}: not a text list of paths (not UTF-8); SOURCE is a folder, a text file of paths or URLs, "
            f"or a manifest ({', '.join(MANIFEST_SUFFIXES)})"
        ) from None
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if line and not line.startswith("#"):
            yield n, (line, None)


def _columns(src: Path, header: list[str]) -> tuple[str, str | None]:
    by_lower = {h.strip().lower(): h for h in header}
    if PATH_COLUMN not in by_lower:
        raise DataError(
            f"{src}: a manifest needs a {PATH_COLUMN!r} column (and optionally {PERSON_COLUMN!r}); it has {header}"
        )
    return by_lower[PATH_COLUMN], by_lower.get(PERSON_COLUMN)


def _csv_rows(src: Path):
    try:
        with open(src, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            path_col, person_col = _columns(src, reader.fieldnames or [])
            rows = [(n, (r.get(path_col), r.get(person_col) if person_col else None)) for n, r in enumerate(reader, 2)]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{src}: not a readable CSV manifest ({exc})") from None
    return rows


def _parquet_rows(src: Path):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{src}: reading a Parquet manifest needs pyarrow (pip install pyarrow)") from None
    try:
        schema = pq.read_schema(src)
        path_col, person_col = _columns(src, list(schema.names))
        table = pq.read_table(src, columns=[c for c in (path_col, person_col) if c])
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a damaged file
        raise DataError(f"{src}: not a readable Parquet manifest ({exc})") from None
    paths = table.column(path_col).to_pylist()
    people = table.column(person_col).to_pylist() if person_col else [None] * len(paths)
    return [
        (n, (None if p is None else str(p), None if q is None else str(q)))
        for n, (p, q) in enumerate(zip(paths, people), 1)
    ]
