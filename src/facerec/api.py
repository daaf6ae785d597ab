"""The front door: train a gallery, load one, identify the faces in images."""

from __future__ import annotations

import io
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .calibrate import Calibration, calibrate
from .datasets import Sample, collect_inputs, label_from_filename, load_dataset
from .errors import DataError, InputError
from .gallery import Gallery
from .identify import Prediction, identify
from .paths import atomic_write_bytes
from .pipeline import FacePipeline, ImageResult


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
    embedder: str = "facenet-vggface2",
    align: str = "mtcnn",
    margin: float = 32,
    k: int = 3,
    metric: str = "euclidean",
    weights: str | None = None,
    device: str = "auto",
    batch_size: int = 64,
    out_dir: str | os.PathLike | None = "models",
    model_path: str | os.PathLike | None = None,
    art_dir: str | os.PathLike | None = "artifacts",
    far: float = 0.01,
    flip: bool = False,
    index: str = "exact",
    index_params: dict | None = None,
    fast: bool = False,
    precision: str = "fp32",
    compile: bool = False,
    quiet: bool = True,
) -> TrainReport:
    """Embed a labelled dataset (``.npz`` or folder-per-person) and fit a k-NN gallery.

    The most prominent face (large and central) of each image is enrolled; images with no face are
    listed in the report, never replaced by a resize. The open-set threshold is calibrated
    on the gallery for false-accept rate ``far`` (see :mod:`facerec.calibrate`). ``index`` picks the
    search backend (see :mod:`facerec.index`), stored with the model. Writes the model (unless ``out_dir``
    and ``model_path`` are both None) and the embeddings artefact, each atomically.

    ``fast`` embeds through :class:`~facerec.batch_pipeline.BatchPipeline` (batched MTCNN on the
    device, decoding overlapped; FaceNet embedders with ``mtcnn`` only), with ``precision``
    fp32/bf16/fp16 and optional ``torch.compile``; nothing is cached. The model is the same kind.
    """
    if not 0 < far < 1:
        raise InputError(f"--far must be between 0 and 1 (a rate, e.g. 0.01), got {far}")
    dataset = load_dataset(data)
    # validates k, metric and the index before any model loads
    gallery = Gallery(k=k, metric=metric, index=index, index_params=index_params)
    if fast:
        pipe = fast_pipeline(
            embedder=embedder,
            align=align,
            margin=margin,
            weights=weights,
            device=device,
            batch_size=batch_size,
            flip=flip,
            precision=precision,
            compile=compile,
        )
        results = pipe.run_samples(dataset.samples, quiet=quiet, desc="train")
    else:
        if precision != "fp32" or compile:
            raise InputError("--precision and --compile apply to the fast path: add --fast")
        pipe = FacePipeline.create(
            embedder=embedder,
            align=align,
            margin=margin,
            weights=weights,
            device=device,
            art_dir=str(art_dir) if art_dir else None,
            batch_size=batch_size,
            flip=flip,
        )
        results = pipe.run(dataset.samples, quiet=quiet, desc="train")
    keep = [r for r in results if r.faces]
    no_face = [r.sample.id for r in results if not r.faces and r.error is None]
    errors = [r.error for r in results if r.error]
    if not keep:
        raise DataError(f"{data}: no face found in any of its {len(results)} images; nothing was saved")
    emb = np.stack([r.faces[0].embedding for r in keep])
    labels = np.array([r.sample.label for r in keep])
    ids = [r.sample.id for r in keep]
    gallery.pipeline = asdict(pipe.config)
    gallery.fit(emb, labels, dataset.names, ids)
    gallery.calibration = calibrate(
        emb, labels, far=far, metric=metric, default_euclidean=pipe.embedder.spec.default_threshold
    ).to_dict()

    tag = f"{embedder}_{dataset.name}"
    if model_path is None and out_dir is not None:
        model_path = Path(out_dir) / f"knn_{tag}.npz"
    saved = gallery.save(model_path) if model_path is not None else None
    artifact = None
    if art_dir:
        artifact = Path(art_dir) / f"embeddings_{tag}_{align}.npz"
        buf = io.BytesIO()
        np.savez(buf, embeddings=emb, labels=labels, ids=np.array(ids, dtype=str))
        atomic_write_bytes(artifact, buf.getvalue())
    return TrainReport(gallery, saved, artifact, len(results), len(keep), len(set(labels.tolist())), no_face, errors)


def fast_pipeline(
    *,
    embedder: str,
    align: str = "mtcnn",
    margin: float = 32,
    weights: str | None = None,
    device: str = "auto",
    batch_size: int = 64,
    flip: bool = False,
    precision: str = "fp32",
    compile: bool = False,
):
    """The throughput path (``--fast``), or an error saying why this configuration has none."""
    from .batch_pipeline import BatchPipeline
    from .embed import get_spec

    if align != "mtcnn":
        raise InputError(f"--fast aligns with the batched MTCNN only; drop --fast for --align {align}")
    if get_spec(embedder).crop != "margin":
        raise InputError(f"--fast runs the FaceNet embedders; {embedder} has no on-device path: drop --fast")
    if batch_size < 1:
        raise InputError(f"--batch_size must be >= 1, got {batch_size}")
    return BatchPipeline(
        embedder=embedder,
        weights=weights,
        device=device,
        precision=precision,
        compile=compile,
        batch_size=batch_size,
        margin=margin,
        flip=flip,
    )  # nvJPEG on a GPU


def load_model(path: str | os.PathLike) -> Gallery:
    """Load a saved gallery (safe: no code runs)."""
    return Gallery.load(path)


@dataclass
class FaceResult:
    """One face in one input image, with its prediction and evidence."""

    file: str
    face: int
    box: tuple[float, float, float, float]
    score: float
    prediction: Prediction


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
    align_note: str | None = None
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


def pipeline_for_model(
    gallery: Gallery,
    *,
    align: str = "mtcnn",
    margin: float | None = None,
    embedder: str | None = None,
    weights: str | None = None,
    device: str = "auto",
    art_dir: str | None = None,
    batch_size: int = 64,
) -> FacePipeline:
    """The pipeline that makes embeddings comparable with ``gallery``'s (refuses a mismatch)."""
    p = gallery.pipeline
    embedder = embedder or p.get("embedder")
    if not embedder:
        raise InputError("the model does not record its embedder; pass --embedder")
    margin = p.get("margin", 32) if margin is None else margin
    pipe = FacePipeline.create(
        embedder=embedder,
        align=align,
        margin=margin,
        weights=weights,
        device=device,
        art_dir=art_dir,
        batch_size=batch_size,
        flip=bool(p.get("flip", False)),
    )
    gallery.check_pipeline(embedder=pipe.config.embedder, weights_id=pipe.config.weights_id, dim=pipe.config.dim)
    return pipe


def infer(
    inputs: str | os.PathLike,
    gallery: Gallery,
    pipe: FacePipeline,
    *,
    topk: int = 5,
    calibration: Calibration | None = None,
    quiet: bool = True,
) -> InferReport:
    """Identify every face in an image or a folder of images (recursive).

    ``calibration`` None is closed set; see :func:`facerec.calibrate.resolve_threshold`."""
    if topk < 1:
        raise InputError(f"--topk must be >= 1, got {topk}")
    files, skipped = collect_inputs(inputs)
    results = pipe.run([Sample(str(f), str(f)) for f in files], quiet=quiet, desc="infer")
    note = None
    trained_align = gallery.pipeline.get("aligner")
    if trained_align and trained_align != pipe.config.aligner:
        note = (
            f"note: the model was trained with --align {trained_align}; this run aligns with "
            f"--align {pipe.config.aligner} (allowed, but matching alignment is usually more accurate)"
        )
    return InferReport(
        [_report(r, gallery, topk, calibration) for r in results], [str(s) for s in skipped], note, calibration
    )


def _report(result: ImageResult, gallery: Gallery, topk: int, calibration: Calibration | None) -> ImageReport:
    file = str(result.sample.source)
    label = label_from_filename(file)
    if result.error:
        return ImageReport(file, [], label, result.error)
    faces = []
    if result.faces:
        preds = identify(gallery, np.stack([f.embedding for f in result.faces]), topk=topk, calibration=calibration)
        faces = [FaceResult(file, j, f.box, f.score, p) for j, (f, p) in enumerate(zip(result.faces, preds))]
    return ImageReport(file, faces, label)


def identify_image(
    image: str | os.PathLike | bytes,
    gallery: Gallery,
    *,
    pipeline: FacePipeline | None = None,
    topk: int = 5,
    threshold: float | None = None,
    closed_set: bool = False,
) -> list[FaceResult]:
    """Every face in one image with its prediction (``unknown`` beyond the gallery's calibrated
    threshold unless ``closed_set``). Raises ImageError for a bad image."""
    from .calibrate import resolve_threshold
    from .errors import ImageError

    pipe = pipeline or pipeline_for_model(gallery, align=gallery.pipeline.get("aligner", "mtcnn"))
    source = image if not isinstance(image, (bytes, bytearray)) else None
    if source is None:
        from .images import decode_image

        sample = Sample("<bytes>", decode_image(bytes(image)))
    else:
        sample = Sample(str(source), str(source))
    result = pipe.run([sample])[0]
    if result.error:
        raise ImageError(result.error)
    cal = resolve_threshold(gallery, threshold=threshold, closed_set=closed_set, align=pipe.config.aligner)
    return _report(result, gallery, topk, cal).faces
