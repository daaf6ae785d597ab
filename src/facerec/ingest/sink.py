"""The ingest's last stage: faces into the store, and the tally the progress line and the report
are made of. It runs in the process that drives the job (Milvus Lite opens a database in one
process; a server store takes one writer's batches as easily as many)."""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from facerec.gallery.estimator import COLUMNS
from facerec.ingest.stages import FACE, FAILED, NO_FACE, SKIPPED, ingest_face_id
from facerec.store.milvus import BATCH, UNNAMED

#: Seconds between progress lines.
PROGRESS_EVERY_S = 5.0


@dataclass
class IngestReport:
    """What an ingest did (the final JSON report). Stage figures: seconds busy and images per
    busy second, summed over every worker (with N workers a stage's wall rate is up to N times it)."""

    engine: str
    source: str
    store: str
    images: int = 0  # images the source names
    stored_images: int = 0  # images whose faces were stored by this run
    faces: int = 0  # faces stored by this run
    named_faces: int = 0
    unnamed_faces: int = 0
    no_face: int = 0  # images decoded, no face found
    skipped: int = 0  # images already in the store (an earlier run's)
    duplicates: int = 0  # images whose content an earlier line of this run already had
    failures: int = 0
    failed: list = field(default_factory=list)  # [{"path", "error"}]
    duration_s: float = 0.0
    images_per_s: float = 0.0
    # until the first batch was stored: starting Ray, loading the models, the first batch's work
    first_batch_s: float = 0.0
    # images per second after the first batch (the rate a long job runs at; no start-up in it)
    steady_images_per_s: float = 0.0
    stages: dict = field(default_factory=dict)
    workers: int = 1
    nodes: list = field(default_factory=list)  # where the faces stage ran (Ray node ids; "local")
    worker_pids: list = field(default_factory=list)
    store_faces: int = 0  # faces in the store afterwards, named and unnamed
    calibration: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


class StoreSink:
    """Writes each batch's faces to ``store`` and keeps the tally.

    Args:
        store: an open :class:`~facerec.store.milvus.MilvusStore`.
        report: the report it fills in.
        insert: the store was made by this run (nothing to replace: insert rather than upsert).
        quiet: no progress lines.
    """

    def __init__(self, store, report: IngestReport, *, insert: bool = False, quiet: bool = False):
        self.store, self.report, self.insert, self.quiet = store, report, insert, quiet
        self.hashes: set[str] = set()  # image contents stored or seen by this run
        self.done = 0
        self.busy = {"decode": 0.0, "faces": 0.0, "store": 0.0}
        self.nodes: set[str] = set()
        self.pids: set[int] = set()
        self.t0 = time.perf_counter()
        self._last_print = self.t0
        self._first: tuple[float, int] | None = None  # (seconds, images) when the first batch was stored

    def write(self, batch: dict) -> int:
        """Store one batch (FaceStage's rows); returns the images it finished."""
        t0 = time.perf_counter()
        r = self.report
        status, rank = batch["status"], np.asarray(batch["rank"])
        self.busy["decode"] += float(np.sum(batch["decode_s"]))
        self.busy["faces"] += float(np.sum(batch["face_s"]))
        self.nodes.update(str(v) for v in batch["node"])
        self.pids.update(int(v) for v in batch["pid"])
        keep: list[int] = []
        images = 0
        current_dup = False
        for i in range(len(status)):
            first = rank[i] <= 0
            if first:
                images += 1
            s = status[i]
            if s == FAILED:
                r.failures += 1
                r.failed.append({"path": str(batch["path"][i]), "error": str(batch["error"][i])})
            elif s == SKIPPED:
                r.skipped += 1
            elif s == NO_FACE:
                r.no_face += 1
            elif s == FACE:
                h = str(batch["hash"][i])
                if first:  # an image's rows arrive together, its first face first
                    current_dup = h in self.hashes
                    self.hashes.add(h)
                    if current_dup:
                        r.duplicates += 1
                    else:
                        r.stored_images += 1
                if not current_dup:
                    keep.append(i)
        if keep:
            self._store(batch, np.array(keep))
        self.done += images
        self.busy["store"] += time.perf_counter() - t0
        if self._first is None and images:
            self._first = (time.perf_counter() - self.t0, self.done)
        self.maybe_print()
        return images

    def _store(self, batch: dict, idx: np.ndarray) -> None:
        people = np.array([str(p) or UNNAMED for p in batch["person"][idx]], dtype=object)
        paths = np.array([str(p) for p in batch["path"][idx]], dtype=object)
        n = len(idx)
        rows = {
            "embeddings": np.asarray(batch["embedding"], np.float32)[idx],
            "names": people,
            "sample_ids": paths,
            "face_id": np.array(
                [ingest_face_id(str(h), int(k)) for h, k in zip(batch["hash"][idx], batch["rank"][idx])], dtype=object
            ),
            "source": paths,
            "box": np.asarray(batch["box"], np.float32)[idx],
            "enrolled_ms": np.full(n, int(time.time() * 1000), np.int64),
            "genuine_d": np.full(n, np.nan, np.float32),
            "impostor_d": np.full(n, np.nan, np.float32),
        }
        assert set(COLUMNS) <= set(rows)
        # whole images per call, each call under the store's batch: a crash loses whole images,
        # which the rerun then embeds again (it skips an image only when its first face is stored)
        start = 0
        while start < n:
            stop = min(n, start + BATCH)
            while stop < n and batch["rank"][idx[stop]] > 0 and stop > start + 1:
                stop -= 1
            part = {k: v[start:stop] for k, v in rows.items()}
            self.store.add(part, fresh=(stop - start) if self.insert else 0)
            start = stop
        named = int(np.count_nonzero(people != UNNAMED))
        self.report.faces += n
        self.report.named_faces += named
        self.report.unnamed_faces += n - named

    def maybe_print(self, force: bool = False) -> None:
        now = time.perf_counter()
        if self.quiet or (not force and now - self._last_print < PROGRESS_EVERY_S):
            return
        self._last_print = now
        r, elapsed = self.report, now - self.t0
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = r.images - self.done
        eta = f"{left / rate:,.0f} s" if rate > 0 and left > 0 else "-"
        print(
            f"ingest: {self.done:,}/{r.images:,} images, {rate:,.1f} img/s, ETA {eta}, "
            f"{r.faces:,} faces stored, {r.failures:,} failed",
            file=sys.stderr,
            flush=True,
        )

    def finish(self) -> IngestReport:
        r = self.report
        r.duration_s = round(time.perf_counter() - self.t0, 3)
        r.images_per_s = round(self.done / r.duration_s, 2) if r.duration_s > 0 else 0.0
        if self._first is not None:
            first_s, first_n = self._first
            r.first_batch_s = round(first_s, 3)
            rest_s = r.duration_s - first_s
            r.steady_images_per_s = round((self.done - first_n) / rest_s, 2) if rest_s > 0 else 0.0
        r.stages = {
            name: {"busy_s": round(s, 3), "images_per_busy_s": round(self.done / s, 2) if s > 0 else None}
            for name, s in self.busy.items()
        }
        r.nodes, r.worker_pids = sorted(self.nodes), sorted(self.pids)
        self.maybe_print(force=True)
        return r
