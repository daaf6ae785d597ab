"""The served gallery: searched by many requests at once, changed by enrolments, always saved whole.

Readers (identify, verify) hold a shared lock while they search; a writer (enrol, remove) holds it
exclusively only for the moment it changes the arrays and the index, so no request ever sees a
half-updated gallery. Every change is written to the model file atomically (temp file, then
rename) before the writer returns, so an acknowledged enrolment survives a crash.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .calibrate import Calibration, calibrate, resolve_threshold
from .errors import InputError, SaveError
from .gallery import Gallery
from .pipeline.config import DEFAULT_FAR


class RWLock:
    """Many readers or one writer; a waiting writer stops new readers (no writer starvation)."""

    def __init__(self):
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting = 0

    @contextmanager
    def read(self):
        with self._cond:
            while self._writer or self._waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def write(self):
        with self._cond:
            self._waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class GalleryStore:
    """A :class:`Gallery` shared by a server's threads, saved to ``path`` after every change.

    Args:
        far: target false-accept rate when the threshold is recalibrated after a change (the
            model's own calibration FAR when it has one).
        default_threshold: the embedder's documented threshold, for galleries too small to calibrate.
    """

    def __init__(self, gallery: Gallery, path: str | Path, *, default_threshold: float, far: float | None = None):
        self.gallery, self.path = gallery, Path(path)
        self.default_threshold = default_threshold
        self.far = far or (gallery.calibration.far if gallery.calibration else None) or DEFAULT_FAR
        self._lock = RWLock()
        self._writers = threading.Lock()  # one change at a time, in arrival order
        self._calibration = self._current_calibration()

    def _current_calibration(self) -> Calibration | None:
        return resolve_threshold(self.gallery)

    @contextmanager
    def reading(self):
        """``with store.reading() as (gallery, calibration):`` a consistent view while it lasts."""
        with self._lock.read():
            yield self.gallery, self._calibration

    def people(self) -> list[tuple[str, int]]:
        with self._lock.read():
            return self.gallery.people()

    def enrol(self, name: str, embeddings: np.ndarray, sample_ids: list[str]) -> int:
        """Add ``name``'s faces (float32 (n, d)); returns how many images the person now has."""
        if len(embeddings) == 0:
            raise InputError("nothing to enrol")
        with self._writers:
            self._change(
                lambda g: g.add(embeddings, [name] * len(embeddings), sample_ids), f"the enrolment of {name!r}"
            )
            return dict(self.people()).get(name, 0)

    def remove(self, name: str) -> int:
        """Forget ``name``; returns how many images went. NotEnrolledError when not enrolled."""
        with self._writers:
            return self._change(lambda g: g.remove(name), f"the removal of {name!r}")

    def _change(self, apply, change: str):
        """``apply(gallery)``, recalibrate, save; if any step fails the gallery is restored in memory
        too (memory and disk never disagree, and a failed change never returns with a later save),
        and a failed save is a SaveError. Returns what ``apply`` returned."""
        g = self.gallery
        before = g.snapshot()
        try:
            with self._lock.write():
                result = apply(g)
            # Calibration reads the arrays (only writers replace them, and we are the only writer),
            # so readers keep searching while it runs; the result is installed under the lock.
            cal = calibrate(
                g.embeddings_, g.labels_, far=self.far, metric=g.metric, default_euclidean=self.default_threshold
            )
            with self._lock.write():
                g.calibration = cal
                self._calibration = self._current_calibration()
            with self._lock.read():
                g.save(self.path)
            return result
        except BaseException as exc:
            with self._lock.write():
                g.restore(before)
                self._calibration = self._current_calibration()
            if isinstance(exc, OSError):
                raise SaveError(
                    f"{change} could not be saved: {self.path}: {exc.strerror or exc}; nothing was changed"
                ) from None
            raise
