"""The library's calls: detect, embed, verify, train a gallery, load one, identify the faces in images.

Each function builds what it needs on its first call (nothing loads at import) and keeps it for
the next calls of the same configuration (:mod:`facerec.pipeline.kept`; ``facerec.clear_pipelines()``
lets them go): the first ``verify`` loads its models, about a second here; later ones cost only
the work. For many images in one call, build one :class:`~facerec.pipeline.Pipeline` and call
its methods.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facerec.datasets import Sample, collect_inputs, label_from_filename, load_dataset
from facerec.errors import DataError, ImageError, InputError
from facerec.gallery import Gallery
from facerec.gallery.calibration import (
    Calibration,
    check_rate,
    open_set_calibration,
    per_sample_distances,
    resolve_threshold,
    verification_threshold,
)
from facerec.gallery.identify import Prediction
from facerec.gallery.identify import identify as identify_faces
from facerec.gallery.verify import Verification, verify_results
from facerec.limits import DEFAULT_MAX_PIXELS
from facerec.paths import atomic_write_bytes
from facerec.pipeline import Face, ImageResult, Pipeline
from facerec.pipeline.config import DEFAULT_DETECTOR, DEFAULT_EMBEDDER, DEFAULT_FPIR, DEFAULT_K, DEFAULT_TOPK
from facerec.pipeline.kept import kept_detector, kept_pipeline
from facerec.pipeline.options import PipelineOptions, as_options


def detect(image, *, detector: str = DEFAULT_DETECTOR, device: str = "auto") -> list[Face]:
    """Every face in ``image`` (a path, bytes or uint8 (H, W, 3) RGB array), most prominent first;
    each :class:`~facerec.pipeline.Face` has ``.box`` (x1, y1, x2, y2), ``.landmarks`` and ``.score``."""
    from facerec.image_batch import ImageBatch
    from facerec.pipeline.core import as_sample, faces_from
    from facerec.runtime.device import resolve_device

    device = resolve_device(device)
    sample = as_sample(image, 0)
    _, raw = sample.read()
    batch = ImageBatch([sample.decode(raw, DEFAULT_MAX_PIXELS)], device)
    with kept_detector(detector, device) as det:
        return faces_from(det.detect(batch)[0], batch.width, batch.height)


def embed(
    image_or_faces,
    *,
    faces: list[Face] | None = None,
    embedder: str = DEFAULT_EMBEDDER,
    detector: str = DEFAULT_DETECTOR,
    device: str = "auto",
    weights: str | None = None,
) -> np.ndarray:
    """float32 (n, d) unit embeddings: of every face in an image (most prominent first), of the
    ``faces`` given (from :func:`detect`) in that image, or of aligned crops already cut
    (uint8 (n, S, S, 3), S the embedder's input size)."""
    options = PipelineOptions(embedder=embedder, detector=detector, device=device, weights=weights)
    with kept_pipeline(options) as pipe:
        x = image_or_faces
        if isinstance(x, np.ndarray) and x.ndim == 4:
            return pipe.embed_crops(x)
        return pipe.embed(x, faces)


def verify(
    a,
    b,
    *,
    embedder: str = DEFAULT_EMBEDDER,
    threshold: float | None = None,
    far: float | None = None,
    model=None,
    detector: str | None = None,
    device: str = "auto",
    weights: str | None = None,
) -> Verification:
    """Are ``a`` and ``b`` (images: paths, bytes or arrays) the same person? Their most prominent
    faces are compared at the distance where about ``far`` (default 1 in 1,000) pairs of different
    people would pass, by the pipeline's reference calibration; ``threshold`` (a distance) overrides
    it. ``model`` (a :class:`Gallery` or a model path) gives the pipeline and metric."""
    gallery = load_model(model) if isinstance(model, (str, os.PathLike)) else model
    if gallery is not None:
        options, metric = PipelineOptions(detector=detector, device=device, weights=weights), gallery.metric
    else:
        options = PipelineOptions(
            embedder=embedder, detector=detector or DEFAULT_DETECTOR, device=device, weights=weights
        )
        metric = "euclidean"
    with kept_pipeline(options, gallery) as pipe:
        cal = verification_threshold(pipe.config, far=far, threshold=threshold, metric=metric)
        ra, rb = pipe.run([a]), pipe.run([b])
    return verify_results(ra, rb, cal, metric=metric, labels=(_label(a, "a"), _label(b, "b")))


@dataclass
class TrainReport:
    gallery: Gallery
    model_path: Path | None
    artifact_path: Path | None
    images: int
    enrolled: int
    people: int
    no_face: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def train(
    data: str | os.PathLike,
    *,
    options: PipelineOptions | None = None,
    k: int = DEFAULT_K,
    metric: str = "euclidean",
    out_dir: str | os.PathLike | None = None,
    model_path: str | os.PathLike | None = None,
    store: str | None = None,
    store_token: str | None = None,
    art_dir: str | os.PathLike | None = None,
    fpir: float = DEFAULT_FPIR,
    far: float | None = None,
    index: str = "exact",
    index_params: dict | None = None,
    cache: bool = True,
    pipeline: Pipeline | None = None,
    quiet: bool = True,
    **keywords,
) -> TrainReport:
    """Embed a labelled dataset (``.npz`` or folder-per-person) and fit a k-NN gallery.

    The pipeline is the one ``options`` (a :class:`~facerec.pipeline.options.PipelineOptions`)
    describe, with ``keywords`` (its fields: ``embedder=``, ``detector=``, ``margin=``,
    ``device=``...) over them: ``train("people/", embedder="facenet-casia")``; ``pipeline``, one
    already built, overrides both. The most prominent face (large and central) of each image is
    enrolled; images with no face are listed in the report, never replaced by a resize. The
    open-set threshold names at most ``fpir`` of strangers (``far`` is its older name), for the
    gallery's size (see :mod:`facerec.gallery.calibration`). ``index`` picks the search backend
    (see :mod:`facerec.gallery.index`), stored with the model. Files are written only when asked:
    the model to ``model_path`` (or ``out_dir``/knn_<embedder>_<data>.npz), the embeddings
    artefact under ``art_dir`` and the content cache in the options' ``cache_dir`` (default:
    ``art_dir``; none when ``cache`` is False); each atomically.
    """
    fpir = check_rate(fpir if far is None else far, "fpir")
    dataset = load_dataset(data)
    # validates k, metric and the index (and then the pipeline's options) before any model loads
    gallery = Gallery(k=k, metric=metric, index=index, index_params=index_params)
    options = as_options(options, **keywords)
    if not cache:
        options = options.replace(cache_dir=None)
    elif options.cache_dir is None and art_dir:
        options = options.replace(cache_dir=art_dir)
    pipe = pipeline or Pipeline.create(options)
    results = pipe.run(dataset.samples, subject_only=True, quiet=quiet, desc="train")
    keep = [r for r in results if r.faces]
    no_face = [r.sample.id for r in results if not r.faces and r.error is None]
    errors = [r.error for r in results if r.error]
    if not keep:
        raise DataError(f"{data}: no face found in any of its {len(results)} images; nothing was saved")
    emb = np.stack([r.faces[0].embedding for r in keep])
    labels = np.array([r.sample.label for r in keep])
    ids = [r.sample.id for r in keep]
    gallery.pipeline = pipe.config
    gallery.fit(emb, labels, dataset.names, ids)
    # each face's leave-one-out distances, kept with the gallery: a later change updates only its own
    gallery.genuine_d_[:], gallery.impostor_d_[:] = per_sample_distances(emb, labels, metric)
    gallery.calibration = open_set_calibration(gallery, fpir=fpir)

    tag = f"{pipe.config.embedder}_{dataset.name}"
    if model_path is None and out_dir is not None:
        model_path = Path(out_dir) / f"knn_{tag}.npz"
    if store is not None:  # a database (milvus:… or a server URI) instead of a model file
        from facerec.store import open_store

        with open_store(store, writer=True, token=store_token) as st:
            st.save(gallery)
        saved = store
    else:
        saved = gallery.save(model_path) if model_path is not None else None
    artifact = None
    if art_dir:
        artifact = Path(art_dir) / f"embeddings_{tag}_{pipe.config.detector}.npz"
        buf = io.BytesIO()
        np.savez(buf, embeddings=emb, labels=labels, ids=np.array(ids, dtype=str))
        atomic_write_bytes(artifact, buf.getvalue())
    return TrainReport(gallery, saved, artifact, len(results), len(keep), len(set(labels.tolist())), no_face, errors)


def load_model(path: str | os.PathLike, *, token: str | None = None) -> Gallery:
    """Load a saved gallery (safe: no code runs) from a model file or a store URI
    (``milvus:./g.db``, ``http://host:19530``; see :mod:`facerec.store`)."""
    from facerec.store import is_store_uri, open_store

    if not is_store_uri(path):
        return Gallery.load(path)
    with open_store(path, token=token) as store:
        return store.load()


@dataclass
class FaceResult:
    """One face in one input image, with its prediction and evidence."""

    file: str
    face: int
    box: tuple[float, float, float, float]
    score: float
    prediction: Prediction

    def __repr__(self) -> str:
        p = self.prediction
        answer = f"unknown (nearest {p.candidate!r})" if p.name == "unknown" else repr(p.name)
        box = ", ".join(f"{v:.0f}" for v in self.box)
        return f"FaceResult({self.file!r} face {self.face} at ({box}): {answer}, distance {p.distance:.3f})"


@dataclass
class ImageReport:
    file: str
    faces: list[FaceResult]
    label: int | None = None
    error: str | None = None


@dataclass
class InferReport:
    images: list[ImageReport]
    skipped: list[str]
    detector_note: str | None = None
    calibration: Calibration | None = None

    @property
    def n_faces(self) -> int:
        return sum(len(i.faces) for i in self.images)

    @property
    def n_errors(self) -> int:
        return sum(1 for i in self.images if i.error)

    def accuracy(self) -> tuple[int, int]:
        """(correct, total) over decodable images whose file name carries ``y{label}``;
        the image's most prominent face is its answer, and an image with no face counts as wrong."""
        labelled = [i for i in self.images if i.label is not None and i.error is None]
        correct = sum(1 for i in labelled if i.faces and i.faces[0].prediction.label == i.label)
        return correct, len(labelled)


def infer(
    inputs: str | os.PathLike,
    gallery: Gallery,
    pipe: Pipeline,
    *,
    topk: int = DEFAULT_TOPK,
    calibration: Calibration | None = None,
    quiet: bool = True,
) -> InferReport:
    """Identify every face in an image or a folder of images (recursive).

    ``calibration`` None is closed set; see :func:`facerec.gallery.calibration.resolve_threshold`."""
    if topk < 1:
        raise InputError(f"topk must be >= 1, got {topk}")
    files, skipped = collect_inputs(inputs)
    results = pipe.run([Sample(str(f), str(f)) for f in files], quiet=quiet, desc="infer")
    note = None
    trained = gallery.pipeline.detector if gallery.pipeline else None
    if trained and trained != pipe.config.detector:
        note = (
            f"note: the model was trained with alignment {trained}; this run aligns with "
            f"{pipe.config.detector} (allowed, but matching alignment is usually more accurate)"
        )
    return InferReport(
        [_report(r, gallery, topk, calibration) for r in results], [str(s) for s in skipped], note, calibration
    )


def _report(result: ImageResult, gallery: Gallery, topk: int, calibration: Calibration | None) -> ImageReport:
    file = str(result.sample.source) if isinstance(result.sample.source, str) else result.sample.id
    label = label_from_filename(file)
    if result.error:
        return ImageReport(file, [], label, result.error)
    faces = []
    if result.faces:
        preds = identify_faces(
            gallery, np.stack([f.embedding for f in result.faces]), topk=topk, calibration=calibration, one_image=True
        )
        faces = [FaceResult(file, j, f.box, f.score, p) for j, (f, p) in enumerate(zip(result.faces, preds))]
    return ImageReport(file, faces, label)


def identify_image(
    image,
    gallery: Gallery,
    *,
    pipeline: Pipeline | None = None,
    topk: int = DEFAULT_TOPK,
    threshold: float | None = None,
    closed_set: bool = False,
) -> list[FaceResult]:
    """Every face in one image (path, bytes or uint8 (H, W, 3) array) with its prediction
    (``unknown`` beyond the gallery's calibrated threshold unless ``closed_set``). Raises
    ImageError for a bad image."""
    if topk < 1:
        raise InputError(f"topk must be >= 1, got {topk}")
    if pipeline is not None:
        result, used = pipeline.run([image])[0], pipeline.config.detector
    else:
        with kept_pipeline(PipelineOptions(), gallery) as pipe:
            result, used = pipe.run([image])[0], pipe.config.detector
    if result.error:
        raise ImageError(result.error)
    cal = resolve_threshold(gallery, threshold=threshold, closed_set=closed_set, detector=used)
    return _report(result, gallery, topk, cal).faces


#: The same function as :func:`identify_image`: ``facerec.identify(photo, gallery)``.
identify = identify_image


def distance(a, b, *, metric: str = "euclidean"):
    """Distances between embeddings (from :func:`embed`, or a gallery's): ``a`` and ``b`` each one
    vector (d,) or rows (n, d); a float for two vectors, else an array (n,) or (n, m). Euclidean
    (the default, what thresholds are measured in) or cosine. For unit vectors, under FaceNet's
    usual 1:1 threshold (about 1.1) is likely one person: :func:`verify` states a measured one."""
    from facerec.gallery.distance import pairwise_distances

    x, y = np.asarray(a, np.float32), np.asarray(b, np.float32)
    if x.ndim not in (1, 2) or y.ndim not in (1, 2) or x.shape[-1] != y.shape[-1]:
        raise InputError(f"expected embeddings (d,) or (n, d) of one size, got {x.shape} and {y.shape}")
    d = pairwise_distances(np.atleast_2d(x), np.atleast_2d(y), metric)
    if x.ndim == 1 and y.ndim == 1:
        return float(d[0, 0])
    if x.ndim == 1 or y.ndim == 1:
        return d.ravel()
    return d


def _label(x, default: str) -> str:
    return str(x) if isinstance(x, (str, os.PathLike)) else default
