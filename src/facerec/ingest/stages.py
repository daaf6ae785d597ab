"""The stages of an ingest, shared by both engines: read + decode, faces (detect + embed), and the
store sink. Each takes and returns a batch: a dict of equal-length numpy columns (Ray Data's
``numpy`` batch format), so the local engine calls them in a loop and Ray runs the same functions
as ``map_batches`` tasks and actors.

Idempotence: a face's id comes from its image's content (SHA-256) and its rank in the image
(:func:`ingest_face_id`), and the sink writes by upsert, so a rerun, a retried batch or a photo
listed twice never stores a face twice.
"""

from __future__ import annotations

import hashlib
import os
import time
import urllib.request

import numpy as np

from facerec.datasets import Sample
from facerec.errors import FacerecError, ImageError
from facerec.gallery.estimator import face_key
from facerec.images import decode_image
from facerec.ingest.source import is_url
from facerec.limits import DEFAULT_MAX_PIXELS, MAX_URL_BYTES
from facerec.pipeline.options import PipelineOptions

URL_TIMEOUT_S = 30.0  # one read: a server that sends nothing for this long has stopped
URL_DEADLINE_S = 120.0  # the whole download: a server trickling a byte at a time is cut off too
URL_CHUNK = 64 << 10

#: What happened to an image, one value per output row.
FACE, NO_FACE, FAILED, SKIPPED = "face", "no_face", "failed", "skipped"


def ingest_face_id(content_hash: str, rank: int) -> str:
    """The id of the ``rank``-th most prominent face of the image whose SHA-256 is ``content_hash``."""
    return face_key("ingest", content_hash, rank)


def read_bytes(path: str) -> bytes:
    """A file's or an http(s) URL's bytes; ImageError naming it when it cannot be read."""
    if is_url(path):
        data = _download(path)
    else:
        _, data = Sample(path, path).read()
        return data
    if not data:
        raise ImageError(f"{path}: empty (0 bytes)")
    return data


def _download(url: str) -> bytes:
    """An http(s) URL's body, within MAX_URL_BYTES and URL_DEADLINE_S (each read within URL_TIMEOUT_S)."""
    deadline = time.monotonic() + URL_DEADLINE_S
    parts, size = [], 0
    try:
        with urllib.request.urlopen(url, timeout=URL_TIMEOUT_S) as r:  # noqa: S310 - http(s) only
            while chunk := r.read1(URL_CHUNK):
                size += len(chunk)
                if size > MAX_URL_BYTES:
                    raise ImageError(f"{url}: larger than {MAX_URL_BYTES >> 20} MB")
                if time.monotonic() > deadline:
                    raise ImageError(f"{url}: the download did not finish within {URL_DEADLINE_S:g} s")
                parts.append(chunk)
    except ImageError:
        raise
    except Exception as exc:  # noqa: BLE001 - urllib raises many types for one cause
        raise ImageError(f"{url}: cannot download ({exc})") from None
    return b"".join(parts)


def decode_batch(batch: dict, *, known: frozenset | set | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> dict:
    """Read and decode each ``path``; ``known``: face ids already stored (an image whose first face
    is among them is skipped: a rerun does not embed it again).

    In: ``path``, ``person`` (str, "" for unnamed). Out: those, plus ``hash`` (SHA-256 hex),
    ``image`` (object array of uint8 (H, W, 3), None where not decoded), ``status`` (FACE = decoded,
    FAILED, SKIPPED), ``error`` and ``decode_s`` (this batch's seconds, shared among its rows)."""
    t0 = time.perf_counter()
    paths = [str(p) for p in batch["path"]]
    n = len(paths)
    hashes, images = np.full(n, "", dtype=object), np.full(n, None, dtype=object)
    status, errors = np.full(n, FACE, dtype=object), np.full(n, "", dtype=object)
    for i, path in enumerate(paths):
        try:
            data = read_bytes(path)
            hashes[i] = hashlib.sha256(data).hexdigest()
            if known and ingest_face_id(hashes[i], 0) in known:
                status[i] = SKIPPED
                continue
            images[i] = decode_image(data, label=path, max_pixels=max_pixels)
        except FacerecError as exc:
            status[i], errors[i] = FAILED, str(exc)
        except Exception as exc:  # noqa: BLE001 - one bad image never stops the job; it is reported
            status[i], errors[i] = FAILED, f"{path}: {type(exc).__name__}: {exc}"
    return {
        "path": np.array(paths, dtype=object),
        "person": np.array([str(p) for p in batch["person"]], dtype=object),
        "hash": hashes,
        "image": images,
        "status": status,
        "error": errors,
        "decode_s": np.full(n, (time.perf_counter() - t0) / max(n, 1)),
    }


class FaceStage:
    """Detect and embed every decoded image of a batch with one :class:`~facerec.pipeline.Pipeline`
    (built once: a Ray actor holds one). An image with a person gives its most prominent face; an
    unnamed image gives every face.

    Args:
        options: the pipeline's (the store's choices; on Ray, this actor's device).
        threads: the CPU runtimes' threads in this process: ONNX Runtime's, OpenCV's, PyTorch's
            where installed (None: leave them be).
    """

    def __init__(self, options: PipelineOptions, threads: int | None = None):
        from facerec.pipeline import Pipeline

        if threads:
            from facerec.runtime.device import set_cpu_threads

            set_cpu_threads(threads)
        self.pipeline = Pipeline.create(options)
        self.dim = self.pipeline.config.dim
        self.node = _node_id()

    def __call__(self, batch: dict) -> dict:
        t0 = time.perf_counter()
        n = len(batch["path"])
        ok = [i for i in range(n) if batch["status"][i] == FACE]
        faces_of: dict[int, list] = {}
        for subject_only in (True, False):  # named images: their subject; unnamed: every face
            idx = [i for i in ok if bool(batch["person"][i]) == subject_only]
            if not idx:
                continue
            results = self.pipeline.run(
                [Sample(str(batch["path"][i]), batch["image"][i]) for i in idx], subject_only=subject_only
            )
            for i, r in zip(idx, results):
                faces_of[i] = r
        out = {
            k: []
            for k in ("path", "person", "hash", "status", "error", "rank", "box", "score", "embedding", "decode_s")
        }
        for i in range(n):
            r = faces_of.get(i)
            faces = [] if r is None or r.error else r.faces
            if r is not None and r.error:
                rows = [(FAILED, r.error, -1, None)]
            elif r is not None and not faces:
                rows = [(NO_FACE, "", -1, None)]
            elif r is None:
                rows = [(batch["status"][i], batch["error"][i], -1, None)]
            else:
                rows = [(FACE, "", rank, f) for rank, f in enumerate(faces)]
            for status, error, rank, face in rows:
                out["path"].append(batch["path"][i])
                out["person"].append(batch["person"][i])
                out["hash"].append(batch["hash"][i])
                out["status"].append(status)
                out["error"].append(error)
                out["rank"].append(rank)
                out["box"].append(np.full(4, np.nan, np.float32) if face is None else np.asarray(face.box, np.float32))
                out["score"].append(np.nan if face is None else float(face.score))
                out["embedding"].append(np.zeros(self.dim, np.float32) if face is None else face.embedding)
                # an image's decode seconds go with its first row, so the sink's sums count each image once
                out["decode_s"].append(float(batch["decode_s"][i]) if rank <= 0 else 0.0)
        m = len(out["path"])
        cols = {
            k: np.array(v, dtype=object) for k, v in out.items() if k in ("path", "person", "hash", "status", "error")
        }
        cols["rank"] = np.array(out["rank"], np.int64)
        cols["box"] = np.stack(out["box"]).astype(np.float32) if m else np.zeros((0, 4), np.float32)
        cols["score"] = np.array(out["score"], np.float32)
        cols["embedding"] = np.stack(out["embedding"]).astype(np.float32) if m else np.zeros((0, self.dim), np.float32)
        cols["decode_s"] = np.array(out["decode_s"], np.float64)
        first = cols["rank"] <= 0
        cols["face_s"] = np.where(first, (time.perf_counter() - t0) / max(n, 1), 0.0)
        cols["node"] = np.full(m, self.node, dtype=object)
        cols["pid"] = np.full(m, os.getpid(), np.int64)
        return cols


def _node_id() -> str:
    """The Ray node this runs on ("local" outside Ray)."""
    try:
        import ray

        if ray.is_initialized():
            return ray.get_runtime_context().get_node_id()
    except Exception:  # noqa: BLE001 - no Ray, or not inside a Ray worker
        pass
    return "local"
