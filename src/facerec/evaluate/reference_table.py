"""``facerec calibrate --embedder X --lfw-dir DIR``: a model's reference table, measured as
facerec's shipped tables are (``bench/reference.py``): the subject face of every LFW image of
View 1's development *training* people (``peopleDevTrain.txt``) through the pipeline, then
:func:`facerec.gallery.reference.measure_reference`. The table goes to facerec's home, keyed by
the model's weights id (:func:`facerec.gallery.reference.save_user_reference`), where every
threshold look-up finds it. ``people`` limits the people (the first N of the list) for a quick
try; the table records how many it was measured on, and says so in its provenance.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facerec.datasets import Sample
from facerec.errors import DataError, InputError
from facerec.pipeline import Pipeline

PEOPLE_LIST = "peopleDevTrain.txt"  # beside lfw_funneled, as LFW ships it
EVALUATION_LIST = "peopleDevTest.txt"


@dataclass
class Measured:
    path: Path
    table: dict
    seconds: float


def training_people(lfw_dir: Path, limit: int | None = None) -> list[tuple[str, int]]:
    """(name, images) of View 1's development training people, in the list's order; the first
    ``limit`` of them when given."""
    list_file = lfw_dir.parent / PEOPLE_LIST
    if not list_file.is_file():
        raise DataError(f"{list_file}: no such file (LFW View 1's development training people, beside {lfw_dir.name})")
    people = []
    for line in list_file.read_text().splitlines()[1:]:
        if line.strip():
            name, count = line.split("\t")[:2]
            people.append((name, int(count)))
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 2:
            raise InputError(f"--people must be a whole number >= 2 (strangers need two people), got {limit!r}")
        people = people[:limit]
    return people


def samples_of(lfw_dir: Path, people: list[tuple[str, int]]) -> tuple[list[Sample], list[str]]:
    samples, missing = [], []
    for label, (name, count) in enumerate(people):
        for n in range(1, count + 1):
            path = lfw_dir / name / f"{name}_{n:04d}.jpg"
            if path.is_file():
                samples.append(Sample(str(path), str(path), label))
            else:
                missing.append(str(path))
    if missing:
        raise DataError(f"{len(missing)} images of {PEOPLE_LIST} are not in {lfw_dir}, e.g. {missing[0]}")
    return samples, [name for name, _ in people]


def measure_pipeline_reference(
    pipe: Pipeline, lfw_dir: str | Path, *, people: int | None = None, quiet=True
) -> Measured:
    """Measure and save the reference table of ``pipe`` on LFW at ``lfw_dir`` (its lfw_funneled folder)."""
    from facerec.evaluate.common import embed_samples
    from facerec.gallery.reference import measure_reference, save_user_reference

    lfw_dir = Path(lfw_dir)
    chosen = training_people(lfw_dir, people)
    samples, names = samples_of(lfw_dir, chosen)
    t0 = time.perf_counter()
    emb = embed_samples(pipe, samples, quiet=quiet)
    if emb.errors:
        raise DataError(f"{len(emb.errors)} LFW images could not be read, e.g. {emb.errors[0]}")
    labels = np.array([s.label for s in samples])
    table = measure_reference(emb.embeddings, labels, metric="euclidean")
    all_people = len(training_people(lfw_dir))
    subset = f"the first {len(chosen):,} of its {all_people:,} people" if len(chosen) < all_people else "all its people"
    table.update(
        pipeline=pipe.config.to_dict(),
        precision="fp32",
        measured_people=len(chosen),
        all_people=all_people,
        provenance={
            "data": (
                f"LFW View 1 development training people ({PEOPLE_LIST}): {subset}, {len(samples):,} images "
                f"({int(emb.fallback.sum())} with no face detected, their central crop used)"
            ),
            "disjoint_from": f"LFW View 1 development test people ({EVALUATION_LIST}), which `facerec evaluate "
            "open-set` uses",
            "measured_by": f"facerec calibrate --embedder {pipe.config.embedder}"
            + (f" --people {people}" if people else ""),
            "date": datetime.date.today().isoformat(),
            "people_names_first": names[:3],
        },
    )
    path = save_user_reference(table)
    return Measured(path, table, time.perf_counter() - t0)
