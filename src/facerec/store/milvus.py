"""The ``milvus`` store: the gallery as a Milvus collection, embedded (Milvus Lite) or on a server.

``milvus:./galleries/lfw.db`` is Milvus Lite (pip ``milvus-lite``: in this process, a directory on
disk, one process at a time); ``http://host:19530`` is a Milvus standalone server or cluster (token
from ``--store-token`` or ``$FACEREC_MILVUS_TOKEN``). ``#name`` picks the collection (default
``faces``). The same client code serves both.

One row per face: the vector, the person, the sample id, the source file, the box, when it was
enrolled, its leave-one-out distances (the calibration's raw data), when it last changed, and a
``removed`` flag. A removal marks rows removed (one upsert, visible to every replica as a change)
and deletes the marks once no replica can still need them (:data:`TOMBSTONE_MS`). The header
(pipeline, k, metric, calibration provenance) is a row of a small ``NAME_facerec_meta`` collection.

Unnamed faces (``facerec ingest`` without a person column: every face of a photo archive, kept for
search and for clustering into people) are rows whose name is empty (:data:`UNNAMED`): the gallery
that identifies people (:meth:`MilvusStore.load`, the service's replicas, ``people``) never sees
them; :meth:`MilvusStore.search` includes them when asked.

Consistency: writes are acknowledged after Milvus accepted them (its write-ahead log); reads that
must see every acknowledged write (a replica's sync, counts) ask for Strong consistency.
"""

from __future__ import annotations

import json
import logging
import os
import time

import numpy as np

from facerec.errors import ModelFileError, StoreError, StoreUnavailable
from facerec.extras import require
from facerec.gallery import Gallery
from facerec.gallery.calibration import refresh_calibration
from facerec.gallery.estimator import COLUMNS
from facerec.store.base import Changes, Store

DEFAULT_COLLECTION = "faces"
#: The name of a face that belongs to nobody yet.
UNNAMED = ""
_LIVE = "removed == false"
_NAMED = f'{_LIVE} and name != "{UNNAMED}"'
HEADER_KEY = "facerec.header"
META_SUFFIX = "_facerec_meta"
DIST_SUFFIX = "_facerec_dist"
_MAX_HEADER = 65_535
#: Seconds a call may take before the client gives up (the service answers 503 then).
TIMEOUT_S = 10.0
#: Rows per insert or query page (a gRPC message stays well under Milvus's 64 MB).
BATCH = 2000
#: Changed rows a replica reads in one query (Milvus caps a query's window at 16,384); more than
#: that since its last sync, and it loads the gallery again.
CHANGES_PAGE = 16_384
#: A replica re-reads changes this far back each sync: covers a write's own latency and the clocks
#: of two machines disagreeing by a few seconds (writes are applied idempotently, by face id).
OVERLAP_MS = 15_000
#: Removal marks live this long; a replica that has not synced for half of it loads everything again.
TOMBSTONE_MS = 3_600_000
#: Milvus's index, chosen by the gallery's expected size on a server (Milvus Lite searches every
#: row whatever the index: FLAT). The service searches its own in-process copy; this index serves
#: the store's search API (store copy's check, the library).
IVF_FROM = 100_000
#: Encodings of the distance columns' special values (Milvus floats carry no NaN or inf reliably).
_NOT_COMPUTED, _NONE = -2.0, -1.0
GRPC = {
    "grpc.initial_reconnect_backoff_ms": 200,
    "grpc.min_reconnect_backoff_ms": 200,
    "grpc.max_reconnect_backoff_ms": 1000,
    "grpc.keepalive_time_ms": 60_000,  # Milvus answers pings more often than this with GOAWAY
}
_MAX_TEXT = 2048
_MAX_NAME = 512


def _literal(text: str) -> str:
    """``text`` as a Milvus filter's string literal: double-quoted, with only backslash and the
    quote escaped. (json.dumps writes non-ASCII letters as \\uXXXX, which Milvus's parser
    refuses: a per-person search for any non-ASCII name failed as "database unavailable".)"""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def is_milvus_uri(uri: str) -> bool:
    return str(uri).startswith(("milvus:", "http://", "https://"))


def parse(uri: str) -> tuple[str, str, bool]:
    """``(client uri, collection, lite)`` from a store URI."""
    base, _, collection = str(uri).partition("#")
    collection = collection or DEFAULT_COLLECTION
    if not collection.replace("_", "a").isalnum() or not collection[0].isalpha() or len(collection) > 200:
        raise StoreError(f"{uri}: the collection name must be letters, digits and _, starting with a letter")
    if base.startswith("milvus:"):
        path = base[len("milvus:") :]
        if path.startswith("//"):
            raise StoreError(f"{uri}: milvus: takes a local path (Milvus Lite); a server is http://host:19530")
        if not path.endswith(".db"):
            raise StoreError(f"{uri}: a Milvus Lite path must end in .db (e.g. milvus:./galleries/lfw.db)")
        return os.path.abspath(path), collection, True
    return base.rstrip("/"), collection, False


class MilvusStore(Store):
    def __init__(self, uri: str, *, token: str | None = None):
        self.client_uri, self.collection, self.lite = parse(uri)
        self.uri = str(uri)
        self.shared = not self.lite  # Milvus Lite is one process's
        self.token = token if token is not None else os.environ.get("FACEREC_MILVUS_TOKEN", "")
        self._client = None
        self._compacted_ms = 0

    # -- connection -----------------------------------------------------------------------------
    def client(self):
        if self._client is None:
            MilvusClient = require("pymilvus").MilvusClient  # noqa: N806 - the class, named as pymilvus names it
            # A connection of our own (pymilvus shares one per URI otherwise, and never closes a
            # shared one), so closing it really drops it: after a failure, and for Milvus Lite, whose
            # server may be gone when the gallery is opened again (a shared channel idle for over
            # 30 s was then "recovered" towards the old server's port and failed: the Ray ingest
            # test's reopen, in two of five runs here). For a server, gRPC's reconnect backoff is capped at a
            # second, not two minutes, so the service is back within seconds of the database.
            kw = (
                {"dedicated": True}
                if self.lite
                else {"token": self.token, "timeout": TIMEOUT_S, "dedicated": True, "grpc_options": GRPC}
            )
            # its query iterator warns on every call that Milvus Lite has no MVCC timestamp, and its
            # decorators log a traceback for each failed call, even the ones _call recovers from (a
            # reopened collection not loaded yet); every failure that matters reaches the caller as
            # a StoreError naming the gallery
            logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
            lite_log = _LiteStartFailures()
            try:
                with lite_log:
                    self._client = MilvusClient(self.client_uri, **kw)
            except Exception as exc:  # noqa: BLE001 - every connection failure is the same to a caller
                if self.lite:
                    raise StoreError(
                        f"{self.uri}: Milvus Lite could not open {self.client_uri} ({lite_log.reason or _first_line(exc)}); it opens a "
                        "gallery in one process at a time: stop the other one (a running facerec serve?), or keep "
                        "the gallery on a Milvus server (http://host:19530) to share it"
                    ) from None
                raise self._unavailable(exc) from None
        return self._client

    def _unavailable(self, exc) -> StoreUnavailable:
        self.close()  # reconnect on the next call
        return StoreUnavailable(
            f"the gallery database {self.uri} is unavailable ({_first_line(exc)}); nothing was changed"
        )

    def _call(self, fn, *args, **kw):
        """A client call; connection and server failures become StoreUnavailable."""
        client = self.client()
        if not self.lite:
            kw.setdefault("timeout", TIMEOUT_S)
        try:
            return fn(client, *args, **kw)
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - pymilvus raises many types for one cause
            text = str(exc)
            if ("not loaded" in text or "call load()" in text) and not getattr(self, "_loading", False):
                # a restarted server loads collections back in its own time: ask now, then retry once
                self._loading = True
                try:
                    for name in self.collections:
                        self._call(lambda c, name=name, **k: c.load_collection(name, **k))
                    return self._call(fn, *args, **kw)
                finally:
                    self._loading = False
            raise self._unavailable(exc) from None

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            except Exception:  # noqa: BLE001 - closing a dead connection
                pass
            self._client = None

    # -- header ---------------------------------------------------------------------------------
    def exists(self) -> bool:
        return bool(self._call(lambda c, **kw: c.has_collection(self.collection, **kw)))

    @property
    def meta_collection(self) -> str:
        return f"{self.collection}{META_SUFFIX}"

    @property
    def dist_collection(self) -> str:
        """Newer distances of existing faces, apart from their rows: writing a face's row again to
        update them could bring back a face another replica has just removed."""
        return f"{self.collection}{DIST_SUFFIX}"

    @property
    def collections(self) -> tuple[str, ...]:
        return (self.collection, self.meta_collection, self.dist_collection)

    def header(self) -> dict:
        if not self.exists():
            raise ModelFileError(f"{self.uri}: no gallery here (train one with `facerec train --store {self.uri}`)")
        if not self._call(lambda c, **kw: c.has_collection(self.meta_collection, **kw)):
            raise ModelFileError(f"{self.uri}: collection {self.collection!r} is not a facerec gallery (no header)")
        res = self._call(
            lambda c, **kw: c.query(
                self.meta_collection, filter=f'key == "{HEADER_KEY}"', output_fields=["value"], **kw
            )
        )
        if not res:
            raise ModelFileError(f"{self.uri}: collection {self.collection!r} is not a facerec gallery (no header)")
        try:
            return json.loads(res[0]["value"])
        except ValueError:
            raise ModelFileError(f"{self.uri}: damaged gallery header") from None

    def set_header(self, header: dict) -> None:
        text = json.dumps(header)
        if len(text) > _MAX_HEADER:
            raise StoreError(f"{self.uri}: the gallery header is {len(text):,} bytes, over Milvus's {_MAX_HEADER:,}")
        row = {"key": HEADER_KEY, "value": text, "vector": [0.0, 0.0]}
        self._call(lambda c, **kw: c.upsert(self.meta_collection, [row], **kw))

    def _create_dist(self) -> None:
        from pymilvus import DataType

        self._create_small(
            self.dist_collection,
            [("genuine_d", DataType.FLOAT, {}), ("impostor_d", DataType.FLOAT, {}), ("changed_ms", DataType.INT64, {})],
            key="face_id",
        )

    def _create_small(self, name: str, fields: list, key: str) -> None:
        """A small side collection keyed by ``key`` (VARCHAR). Milvus wants a vector in every
        collection: a 2-d placeholder, FLAT-indexed."""
        from pymilvus import DataType, MilvusClient

        s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field(key, DataType.VARCHAR, is_primary=True, max_length=64)
        for field, dtype, kw in fields:
            s.add_field(field, dtype, **kw)
        s.add_field("vector", DataType.FLOAT_VECTOR, dim=2)
        ip = MilvusClient.prepare_index_params()
        ip.add_index("vector", index_type="FLAT", metric_type="L2")
        self._call(
            lambda c, **kw: c.create_collection(name, schema=s, index_params=ip, consistency_level="Strong", **kw)
        )

    def update_distances(self, face_ids, genuine, impostor) -> None:
        now = int(time.time() * 1000)
        data = [
            {"face_id": str(f), "genuine_d": _enc(g), "impostor_d": _enc(i), "changed_ms": now, "vector": [0.0, 0.0]}
            for f, g, i in zip(face_ids, genuine, impostor)
        ]
        for start in range(0, len(data), BATCH):
            self._call(lambda c, p, **kw: c.upsert(self.dist_collection, p, **kw), data[start : start + BATCH])

    def _distances(self, filter: str) -> dict:
        if not self._call(lambda c, **kw: c.has_collection(self.dist_collection, **kw)):
            return {}  # a gallery stored before there were any
        hits = self._query_all(filter, ["face_id", "genuine_d", "impostor_d"], self.dist_collection)
        return {h["face_id"]: (_dec(h["genuine_d"]), _dec(h["impostor_d"])) for h in hits}

    def _create_meta(self) -> None:
        """The header's own collection: a collection's properties did not survive a restart of
        Milvus 2.3.5 here; rows do."""
        from pymilvus import DataType

        self._create_small(self.meta_collection, [("value", DataType.VARCHAR, {"max_length": _MAX_HEADER})], key="key")

    def _create(self, dim: int, expected: int) -> None:
        from pymilvus import DataType, MilvusClient

        s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field("face_id", DataType.VARCHAR, is_primary=True, max_length=64)
        s.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        s.add_field("name", DataType.VARCHAR, max_length=_MAX_NAME)
        s.add_field("sample_id", DataType.VARCHAR, max_length=_MAX_TEXT)
        s.add_field("source", DataType.VARCHAR, max_length=_MAX_TEXT)
        s.add_field("box", DataType.VARCHAR, max_length=128)
        s.add_field("enrolled_ms", DataType.INT64)
        s.add_field("changed_ms", DataType.INT64)
        s.add_field("removed", DataType.BOOL)
        s.add_field("genuine_d", DataType.FLOAT)
        s.add_field("impostor_d", DataType.FLOAT)
        index = self.index_for(expected)
        ip = MilvusClient.prepare_index_params()
        ip.add_index("vector", **index)
        self._call(
            lambda c, **kw: c.create_collection(
                self.collection, schema=s, index_params=ip, consistency_level="Strong", **kw
            )
        )

    def index_for(self, expected: int) -> dict:
        """FLAT on Milvus Lite and for small galleries; IVF_FLAT (nlist 4 sqrt(n)) on a server from
        :data:`IVF_FROM` faces. Inner product: the embeddings are unit vectors."""
        if self.lite or expected < IVF_FROM:
            return {"index_type": "FLAT", "metric_type": "IP"}
        return {"index_type": "IVF_FLAT", "metric_type": "IP", "params": {"nlist": int(4 * expected**0.5)}}

    # -- rows -----------------------------------------------------------------------------------
    @staticmethod
    def _encode(rows: dict, removed: bool = False) -> list[dict]:
        now = int(time.time() * 1000)
        emb = np.asarray(rows["embeddings"], np.float32)
        out = []
        for i in range(len(emb)):
            box = rows["box"][i]
            out.append(
                {
                    "face_id": str(rows["face_id"][i]),
                    "vector": emb[i],
                    "name": str(rows["names"][i])[:_MAX_NAME],
                    "sample_id": str(rows["sample_ids"][i])[:_MAX_TEXT],
                    "source": str(rows["source"][i])[:_MAX_TEXT],
                    "box": "" if np.isnan(box).any() else ",".join(f"{v:.2f}" for v in box),
                    "enrolled_ms": int(rows["enrolled_ms"][i]),
                    "changed_ms": now,
                    "removed": removed,
                    "genuine_d": _enc(rows["genuine_d"][i]),
                    "impostor_d": _enc(rows["impostor_d"][i]),
                }
            )
        return out

    @staticmethod
    def _decode(hits: list[dict]) -> dict:
        def box(text):
            return np.array([float(v) for v in text.split(",")], np.float32) if text else np.full(4, np.nan, np.float32)

        return {
            "embeddings": np.array([h["vector"] for h in hits], np.float32).reshape(len(hits), -1),
            "names": np.array([h["name"] for h in hits], dtype=object),
            "sample_ids": np.array([h["sample_id"] for h in hits], dtype=object),
            "face_id": np.array([h["face_id"] for h in hits], dtype=object),
            "source": np.array([h["source"] for h in hits], dtype=object),
            "box": np.stack([box(h["box"]) for h in hits]) if hits else np.zeros((0, 4), np.float32),
            "enrolled_ms": np.array([h["enrolled_ms"] for h in hits], np.int64),
            "genuine_d": np.array([_dec(h["genuine_d"]) for h in hits], np.float32),
            "impostor_d": np.array([_dec(h["impostor_d"]) for h in hits], np.float32),
        }

    FIELDS = ["face_id", "vector", "name", "sample_id", "source", "box", "enrolled_ms", "changed_ms", "removed"]
    FIELDS += ["genuine_d", "impostor_d"]

    def _query_all(self, filter: str, fields: list[str], collection: str | None = None) -> list[dict]:
        """Every row matching ``filter`` (paged: Milvus caps one query's window)."""

        def run(c, **kw):
            it = c.query_iterator(
                collection or self.collection, batch_size=BATCH, filter=filter, output_fields=fields, **kw
            )
            out = []
            try:
                while True:
                    page = it.next()
                    if not page:
                        return out
                    out.extend(page)
            finally:
                it.close()

        return self._call(run)

    def load(self) -> Gallery:
        g = Gallery.from_header(self.header(), self.uri)
        hits = _latest(self._query_all(_NAMED, self.FIELDS))
        if not hits:
            unnamed = self.count(unnamed=True)
            raise ModelFileError(
                f"{self.uri}: the gallery holds no named face"
                + (f" ({unnamed} unnamed faces: name some to identify people)" if unnamed else "")
            )
        newer = self._distances("changed_ms >= 0")  # distances updated since the rows were written
        for h in hits:
            if h["face_id"] in newer:
                h["genuine_d"], h["impostor_d"] = (_enc(v) for v in newer[h["face_id"]])
        g.fit_rows(self._decode(hits), self.uri)
        refresh_calibration(g)
        return g

    def count(self, *, unnamed: bool = False) -> int:
        """Named faces (the gallery's), or with ``unnamed`` the faces that belong to nobody yet."""
        flt = f'{_LIVE} and name == "{UNNAMED}"' if unnamed else _NAMED
        res = self._call(lambda c, **kw: c.query(self.collection, filter=flt, output_fields=["count(*)"], **kw))
        return int(res[0]["count(*)"])

    def face_ids(self) -> set[str]:
        """Every stored face's id, named or not (an ingest's rerun skips the images it holds)."""
        return {h["face_id"] for h in self._query_all(_LIVE, ["face_id"])}

    def people(self) -> list[tuple[str, int]]:
        hits = self._query_all(_NAMED, ["name", "enrolled_ms"])
        first, counts = {}, {}
        for h in hits:
            n = h["name"]
            counts[n] = counts.get(n, 0) + 1
            first[n] = min(first.get(n, h["enrolled_ms"]), h["enrolled_ms"])
        return [(n, counts[n]) for n in sorted(counts, key=lambda n: (first[n], n))]

    def search(self, queries, k, person=None, *, unnamed: bool = False):
        """As :meth:`Store.search`; ``unnamed``: unnamed faces are candidates too (their name is None)."""
        header = self.header()
        metric = header.get("metric", "euclidean")
        flt = (_LIVE if unnamed else _NAMED) + (f" and name == {_literal(person)}" if person is not None else "")
        q = [np.asarray(v, np.float32) for v in np.asarray(queries, np.float32)]
        res = self._call(
            lambda c, **kw: c.search(
                self.collection, data=q, limit=k, filter=flt, output_fields=["name", "sample_id"], **kw
            )
        )
        out = []
        for hits in res:
            row = []
            for h in hits:
                sim = float(h["distance"])
                d = 1.0 - sim if metric == "cosine" else float(np.sqrt(max(2.0 - 2.0 * sim, 0.0)))
                ent = h.get("entity", {})
                row.append(
                    {
                        "face_id": h.get("id", h.get("face_id")),
                        "name": None if ent["name"] == UNNAMED else ent["name"],
                        "sample_id": ent["sample_id"],
                        "distance": d,
                    }
                )
            out.append(row)
        return out

    def wait_indexed(self, timeout_s: float = 3600) -> float:
        """Wait until the server has flushed the rows and built its index over all of them (it
        does so in the background after large inserts); returns the seconds waited."""
        t0 = time.time()
        if self.lite:
            return 0.0
        self._call(lambda c, **kw: c.flush(self.collection, **kw), timeout=timeout_s)  # minutes at 10^6
        while time.time() - t0 < timeout_s:
            info = self._call(lambda c, **kw: c.describe_index(self.collection, index_name="vector", **kw))
            if not info.get("pending_index_rows") and info.get("indexed_rows", 0) >= info.get("total_rows", 0):
                return time.time() - t0
            time.sleep(2)
        raise StoreUnavailable(f"{self.uri}: the index was not built in {timeout_s:g} s")

    def changes_since(self, ms: int) -> Changes:
        now = int(time.time() * 1000)
        if now - ms > TOMBSTONE_MS // 2:
            return Changes(None, [], now, reload=True)
        since = f"changed_ms >= {int(ms) - OVERLAP_MS}"
        # one query each (an iterator costs several round trips); past one page, reload instead
        hits = self._call(
            lambda c, **kw: c.query(self.collection, filter=since, output_fields=self.FIELDS, limit=CHANGES_PAGE, **kw)
        )
        dist = self._call(
            lambda c, **kw: c.query(
                self.dist_collection,
                filter=since,
                output_fields=["face_id", "genuine_d", "impostor_d"],
                limit=CHANGES_PAGE,
                **kw,
            )
        )
        if len(hits) >= CHANGES_PAGE or len(dist) >= CHANGES_PAGE:
            return Changes(None, [], now, reload=True)
        hits = _latest(hits)
        live = [h for h in hits if not h["removed"] and h["name"] != UNNAMED]
        gone = [h["face_id"] for h in hits if h["removed"]]
        distances = {h["face_id"]: (_dec(h["genuine_d"]), _dec(h["impostor_d"])) for h in dist}
        return Changes(self._decode(live) if live else None, gone, now, distances=distances)

    def save(self, gallery: Gallery) -> None:
        """Replace whatever is stored here with ``gallery`` (train --store, store copy)."""
        self.create(gallery.header(), gallery.dim, len(gallery))
        rows = gallery.rows()
        for start in range(0, len(gallery), BATCH):
            self.add({key: v[start : start + BATCH] for key, v in rows.items()})

    def create(self, header: dict, dim: int, expected: int = 0) -> None:
        """An empty gallery with this header (:meth:`Gallery.header`), replacing what was here;
        ``expected``: the faces it will hold (chooses a server's index)."""
        for name in self.collections:
            if self._call(lambda c, name=name, **kw: c.has_collection(name, **kw)):
                self._call(lambda c, name=name, **kw: c.drop_collection(name, **kw))
        self._create(dim, expected)
        self._create_meta()
        self._create_dist()
        self.set_header(header)

    def add(self, rows: dict, fresh: int = 0) -> None:
        """Write rows; the first ``fresh`` are faces new to this writer's copy, inserted (an upsert
        first looks for the key in every segment, so its cost grows with the gallery); the rest
        replace their rows (upsert). A fresh face that another replica stored meanwhile is then
        twice under one key, and read as one (:func:`_latest`)."""
        data = self._encode(rows)
        for start in range(0, len(data), BATCH):
            part = data[start : start + BATCH]
            new, old = part[: max(0, fresh - start)], part[max(0, fresh - start) :]
            if new:
                self._call(lambda c, p, **kw: c.insert(self.collection, p, **kw), new)
            if old:
                self._call(lambda c, p, **kw: c.upsert(self.collection, p, **kw), old)

    def remove(self, face_ids: list[str], rows: dict | None = None) -> None:
        """Mark the faces removed (``rows``: their current rows, which the marks carry; without
        them the rows are deleted outright and replicas learn of it only when they reload)."""
        if rows is None or not self.shared:  # no replica to tell: delete outright
            ids = [str(f) for f in face_ids]
            self._call(lambda c, **kw: c.delete(self.collection, ids=ids, **kw))
            return
        data = self._encode(rows, removed=True)
        for start in range(0, len(data), BATCH):
            self._call(lambda c, part, **kw: c.upsert(self.collection, part, **kw), data[start : start + BATCH])
        now = int(time.time() * 1000)
        if now - self._compacted_ms > TOMBSTONE_MS // 6:  # marks no replica can need any more
            self._call(
                lambda c, **kw: c.delete(
                    self.collection, filter=f"removed == true and changed_ms < {now - TOMBSTONE_MS}", **kw
                )
            )
            self._compacted_ms = now


def _latest(hits: list[dict]) -> list[dict]:
    """One row per face id, the latest written: two replicas inserting the same new face at once
    (a retried request) leave two rows with one key, which are one face."""
    if len({h["face_id"] for h in hits}) == len(hits):
        return hits
    latest = {}
    for h in sorted(hits, key=lambda h: h["changed_ms"]):
        latest[h["face_id"]] = h
    return list(latest.values())


class _LiteStartFailures(logging.Handler):
    """While a Milvus Lite connection opens, keeps what Milvus Lite logs when its server cannot
    start (a traceback on stderr, before our own message) as one line for that message instead."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.reason = ""
        self._logger = logging.getLogger("milvus_lite")

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.reason = _first_line(record.exc_info[1])

    def __enter__(self):
        self._propagate = self._logger.propagate
        self._logger.addHandler(self)
        self._logger.propagate = False
        return self

    def __exit__(self, *exc) -> None:
        self._logger.removeHandler(self)
        self._logger.propagate = self._propagate


def _first_line(exc) -> str:
    """What a pymilvus or gRPC error says, in one line."""
    text = str(exc).strip()
    for line in text.splitlines():  # gRPC errors: the "details" line says it
        if line.strip().startswith("details ="):
            return line.split("=", 1)[1].strip().strip('"')[:300]
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _enc(v) -> float:
    v = float(v)
    return _NOT_COMPUTED if np.isnan(v) else _NONE if np.isinf(v) else v


def _dec(v) -> float:
    v = float(v)
    return np.nan if v == _NOT_COMPUTED else np.inf if v == _NONE else v


__all__ = ["COLUMNS", "UNNAMED", "MilvusStore", "is_milvus_uri", "parse"]
