"""The served gallery: an in-process copy of a store's rows, searched by many requests at once and
changed through the store.

Readers (identify, verify) hold a shared lock while they search; a writer holds it exclusively
only for the moment it appends rows or swaps in a smaller gallery, so no request sees a
half-made change and a removal's index rebuild never stops identification.

A change is acknowledged only once the store holds it. A database store (Milvus) writes just the
new or changed rows first, then the copy shows them; a file store rewrites the whole file after
the copy changed, and undoes the change in memory if the save fails. Either way a failed change
leaves memory and storage as they were. The open-set threshold follows every change in O(changed
faces) (:func:`facerec.gallery.calibration.distances_for_new`); ``recalibrate`` recomputes it from scratch.

With a shared store (a Milvus server), a background thread applies what other replicas wrote,
every ``sync_s`` seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager

import numpy as np

from facerec.errors import InputError, NotEnrolledError, SaveError, StoreUnavailable
from facerec.gallery import Gallery
from facerec.gallery.calibration import (
    Calibration,
    SortedDistances,
    distances_for_new,
    ensure_distances,
    open_set_calibration,
    per_sample_distances,
    resolve_threshold,
    stored_fpir,
)
from facerec.gallery.estimator import COLUMNS, face_key
from facerec.pipeline.config import DEFAULT_FPIR
from facerec.store.base import Store

log = logging.getLogger("facerec.store")

#: How often a replica asks a shared store for the others' changes.
SYNC_S = 1.0


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


class ServedGallery:
    """A store's gallery held in memory for search, written through the store.

    Args:
        fpir: the share of strangers the threshold may name someone (default: the model's own target).
        sync_s: seconds between syncs with a shared store (0: never; the tests call :meth:`sync`).
    """

    def __init__(
        self,
        store: Store,
        *,
        fpir: float | None = None,
        sync_s: float = SYNC_S,
        gallery: Gallery | None = None,
    ):
        self.store = store
        self.gallery = gallery if gallery is not None else store.load()
        cal = self.gallery.calibration
        self.fpir = fpir or stored_fpir(cal) or DEFAULT_FPIR
        self._lock = RWLock()
        self._writers = threading.Lock()  # one change at a time, in arrival order; syncs too
        self.sync_error: str | None = None
        self._seen_ms = int(time.time() * 1000)
        ensure_distances(self.gallery)
        self.gallery.row_of()  # built now, not by the first enrolment
        self._sorted = SortedDistances(self.gallery.genuine_d_, self.gallery.impostor_d_)
        self._calibration = self._calibrate(self.gallery, self._sorted, keep_stored=True)
        self._stop = threading.Event()
        self._thread = None
        if store.shared and sync_s > 0:
            self._thread = threading.Thread(target=self._sync_loop, args=(sync_s,), name="facerec-sync", daemon=True)
            self._thread.start()

    # -- reading --------------------------------------------------------------------------------
    @contextmanager
    def reading(self):
        """``with served.reading() as (gallery, calibration):`` a consistent view while it lasts."""
        with self._lock.read():
            yield self.gallery, self._calibration

    def people(self) -> list[tuple[str, int]]:
        with self._lock.read():
            return self.gallery.people()

    def totals(self) -> tuple[int, int]:
        """(people, faces) without listing anyone: O(people) in numpy, for /healthz on the event loop.
        No lock, on purpose: a reader can wait behind a writer that waits behind a long save, and
        the loop must never wait. Mid-change the pair may be one enrolment apart; a health figure
        can be."""
        g = self.gallery
        return g.people_count, len(g)

    @property
    def calibration(self) -> Calibration | None:
        return self._calibration

    # -- calibration ------------------------------------------------------------------------------
    def _calibrate(self, g: Gallery, dist: SortedDistances, *, keep_stored: bool = False) -> Calibration | None:
        """The threshold from the per-face distances, kept sorted (a look-up); an explicit one stays."""
        stored = g.calibration
        if stored is not None and stored.source == "explicit":
            return resolve_threshold(g)
        cal = self._threshold(g, dist)
        if keep_stored and stored is not None and stored.threshold == cal.threshold:
            cal = stored  # as the model was saved: its provenance stays word for word
        else:
            cal.incremental = stored is None or stored.incremental or stored.threshold != cal.threshold
        g.calibration = cal
        return resolve_threshold(g)

    def _threshold(self, g: Gallery, dist: SortedDistances) -> Calibration:
        return open_set_calibration(g, fpir=self.fpir, distances=dist)

    def recalibrate(self) -> Calibration:
        """Recompute every face's leave-one-out distances and the threshold (O(n^2 d)), and store them."""
        with self._writers:
            g = self.gallery
            gen, imp = per_sample_distances(g.embeddings_, g.labels_, g.metric)
            dist = SortedDistances(gen, imp)
            cal = self._threshold(g, dist)
            if self.store.saves_whole:
                new = g.without(np.zeros(len(g), bool))
                new.genuine_d_[:], new.impostor_d_[:] = gen, imp
                new.calibration = cal
                self._save(new, "the recalibration")
            else:
                self.store.update_distances(list(g.face_ids_), gen, imp)
                self.store.set_header({**g.header(), "calibration": cal.to_dict()})
                new = g
            with self._lock.write():
                new.genuine_d_[:], new.impostor_d_[:] = gen, imp
                new.calibration = cal
                self.gallery = new
                self._sorted = dist
                self._calibration = resolve_threshold(new)
            return cal

    # -- changes ----------------------------------------------------------------------------------
    def enrol(self, name: str, embeddings: np.ndarray, sample_ids: list[str], columns: dict | None = None) -> int:
        """Add ``name``'s faces (float32 (n, d)); returns how many images the person now has. A face
        id already enrolled (default id: the person and the embedding) counts once."""
        emb = np.asarray(embeddings, np.float32)
        if len(emb) == 0:
            raise InputError("nothing to enrol")
        columns = dict(columns or {})
        if columns.get("face_id") is None:
            columns["face_id"] = [face_key(name, e.tobytes()) for e in emb]
        columns.setdefault("enrolled_ms", np.full(len(emb), int(time.time() * 1000), np.int64))
        with self._writers:
            g = self.gallery
            known, fresh = g.row_of(), {}
            for i, f in enumerate(columns["face_id"]):
                if str(f) not in known:
                    fresh.setdefault(str(f), i)  # a photo sent twice in one request is one face
            fresh = list(fresh.values())
            if not fresh:
                return g.count_of(name)
            emb = emb[fresh]
            sample_ids = [sample_ids[i] for i in fresh]
            columns = {c: [v[i] for i in fresh] if v is not None else None for c, v in columns.items()}
            label = g.label_of(name)
            label = len(g.names_) if label is None else label
            upd = distances_for_new(g, emb, np.full(len(emb), label))
            columns["genuine_d"], columns["impostor_d"] = upd.genuine, upd.impostor
            j = np.array(list(upd.changed), np.int64)
            dist = self._sorted.after(
                (g.genuine_d_[j], g.impostor_d_[j]),
                (
                    [v[0] for v in upd.changed.values()] + list(upd.genuine),
                    [v[1] for v in upd.changed.values()] + list(upd.impostor),
                ),
            )
            if self.store.saves_whole:
                self._change_whole(g, emb, name, sample_ids, columns, upd, dist, f"the enrolment of {name!r}")
            else:
                # durable before anyone sees it
                self.store.add(self._rows_for(g, emb, name, sample_ids, columns), fresh=len(emb))
                if upd.changed:  # the neighbours the new faces moved closer: calibration data only
                    j = list(upd.changed)
                    try:
                        self.store.update_distances(
                            [str(f) for f in g.face_ids_[j]], *zip(*(upd.changed[i] for i in j))
                        )
                    except StoreUnavailable as exc:  # the enrolment itself is stored
                        log.warning("neighbour distances not stored (`facerec calibrate` redoes them): %s", exc)
                with self._lock.write():
                    g.add(emb, [name] * len(emb), sample_ids, columns)
                    self._apply_distances(g, upd.changed)
                self._install_calibration(g, dist)
            return self.gallery.count_of(name)

    def remove(self, name: str) -> int:
        """Forget ``name``; returns how many images went. NotEnrolledError when not enrolled."""
        with self._writers:
            g = self.gallery
            if not g.count_of(name):
                raise NotEnrolledError(f"no person named {name!r} is enrolled")
            return self._remove_rows(g, g.labels_ == g.label_of(name), f"the removal of {name!r}")

    def remove_faces(self, face_ids: list[str]) -> int:
        """Forget these faces (ids not enrolled are ignored); returns how many went."""
        with self._writers:
            g = self.gallery
            rows_of = g.row_of()
            drop = np.zeros(len(g), bool)
            drop[[rows_of[f] for f in face_ids if f in rows_of]] = True
            return self._remove_rows(g, drop, "the removal of faces") if drop.any() else 0

    def _remove_rows(self, g: Gallery, drop: np.ndarray, change: str) -> int:
        new = g.without(drop)  # built while requests still search g
        new.row_of()
        dist = self._sorted.after((g.genuine_d_[drop], g.impostor_d_[drop]), ((), ()))
        if self.store.saves_whole:
            self._calibrate(new, dist)
            self._save(new, change)
        else:
            rows = g.rows(np.flatnonzero(drop))
            self.store.remove(list(rows["face_id"]), rows)
        with self._lock.write():
            self.gallery = new
        self._install_calibration(new, dist)
        return int(drop.sum())

    def _change_whole(self, g, emb, name, sample_ids, columns, upd, dist, change: str) -> None:
        """A file store: change the copy, save it whole, undo the change in memory if that fails."""
        before, before_sorted = g.snapshot(), self._sorted
        try:
            with self._lock.write():
                g.add(emb, [name] * len(emb), sample_ids, columns)
                self._apply_distances(g, upd.changed)
            self._install_calibration(g, dist)
            with self._lock.read():
                self._save(g, change)
        except BaseException:
            with self._lock.write():
                g.restore(before)
                self._sorted = before_sorted
                self._calibration = resolve_threshold(g)
            raise

    def _save(self, g: Gallery, change: str) -> None:
        try:
            self.store.save(g)
        except OSError as exc:
            raise SaveError(
                f"{change} could not be saved: {self.store.uri}: {exc.strerror or exc}; nothing was changed"
            ) from None

    def _install_calibration(self, g: Gallery, dist: SortedDistances | None = None) -> None:
        """``dist``: the sorted distances after the change (default: sorted anew from ``g``)."""
        dist = dist if dist is not None else SortedDistances(g.genuine_d_, g.impostor_d_)
        cal = self._calibrate(g, dist)
        with self._lock.write():
            self._calibration = cal
            self._sorted = dist

    @staticmethod
    def _apply_distances(g: Gallery, changed: dict) -> None:
        for j, (gen, imp) in changed.items():
            g.genuine_d_[j], g.impostor_d_[j] = gen, imp

    @staticmethod
    def _rows_for(g, emb, name, sample_ids, columns) -> dict:
        """The rows an enrolment writes, as :meth:`Gallery.rows` gives them."""
        from facerec.gallery.estimator import make_columns

        cols = make_columns(len(emb), np.array(sample_ids, dtype=object), columns)
        return {
            "embeddings": emb,
            "names": np.array([name] * len(emb), dtype=object),
            "sample_ids": np.array(sample_ids, dtype=object),
            **cols,
        }

    # -- replicas ---------------------------------------------------------------------------------
    def sync(self) -> int:
        """Apply what other writers stored since the last sync; returns how many faces changed."""
        with self._writers:
            changes = self.store.changes_since(self._seen_ms)
            g = self.gallery
            if changes.reload:
                new = self.store.load()
                ensure_distances(new)
                n = abs(len(new) - len(g))
            else:
                rows_of = g.row_of()
                drop = np.zeros(len(g), bool)
                drop[[rows_of[f] for f in changes.removed if f in rows_of]] = True
                new = g.without(drop) if drop.any() else g
                n = int(drop.sum())
                if changes.rows is not None:
                    n += self._apply_rows(new, changes.rows)
                n += self._apply_newer_distances(new, changes.distances)
            if new is not g:
                with self._lock.write():
                    self.gallery = new
            if n or new is not g:
                self._install_calibration(new)
            self._seen_ms = changes.seen_ms
            return n

    def _apply_newer_distances(self, g: Gallery, distances: dict) -> int:
        """Take other writers' newer distances of the faces held."""
        rows_of = g.row_of()
        changed = {}
        for f, new in distances.items():
            j = rows_of.get(f)
            if j is not None and not np.array_equal(new, (g.genuine_d_[j], g.impostor_d_[j]), equal_nan=True):
                changed[j] = new
        with self._lock.write():
            self._apply_distances(g, changed)
        return len(changed)

    def _apply_rows(self, g: Gallery, rows: dict) -> int:
        """Add the rows not held yet (idempotent: a face held is not touched)."""
        rows_of = g.row_of()
        fresh = np.flatnonzero([f not in rows_of for f in rows["face_id"]])
        n = 0
        with self._lock.write():
            for name in dict.fromkeys(rows["names"][fresh]):  # one append per person, in order
                sel = fresh[rows["names"][fresh] == name]
                g.add(
                    rows["embeddings"][sel],
                    [str(name)] * len(sel),
                    list(rows["sample_ids"][sel]),
                    {c: rows[c][sel] for c in COLUMNS},
                )
                n += len(sel)
        return n

    def _sync_loop(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                self.sync()
                if self.sync_error:
                    log.warning("the gallery store is back: %s", self.store.uri)
                self.sync_error = None
            except StoreUnavailable as exc:
                if self.sync_error is None:
                    log.warning("%s", exc)
                self.sync_error = str(exc)
            except Exception as exc:  # noqa: BLE001 - a sync thread must not die
                log.exception("sync with %s failed", self.store.uri)
                self.sync_error = f"sync failed: {exc}"

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.store.close()


#: The name the service used before stores were pluggable.
GalleryStore = ServedGallery
