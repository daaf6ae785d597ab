"""What every command shares: flag spelling, the pipeline options, exit codes, and building the pipeline."""

from __future__ import annotations

import argparse
import sys

from facerec.align.croppers import ALIGNMENTS
from facerec.embed.registry import PRECISIONS
from facerec.pipeline.config import DEFAULT_ALIGNMENT, DEFAULT_DETECTOR, DEFAULT_EMBEDDER, DEFAULT_MARGIN

EXIT_OK, EXIT_PARTIAL, EXIT_ERROR = 0, 1, 2


#: What "no face found" tells the user to try: every detector already searches a face that fills
#: the frame on a padded copy, so an image it still misses may be an aligned crop of a face.
NO_FACE_REMEDY = "if these are already aligned face crops, --detector resize takes each whole image as the face"


def add(parser: argparse.ArgumentParser, *flags: str, **kw) -> None:
    """Accept both the seed's ``--out_dir`` and the conventional ``--out-dir`` spelling."""
    names = list(flags)
    for f in flags:
        alt = f.replace("_", "-") if "_" in f else None
        if alt and alt not in names:
            names.append(alt)
    parser.add_argument(*names, **kw)


def whole_number(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
    return value


def positive_int(text: str) -> int:
    return whole_number(text, 1)


def non_negative_int(text: str) -> int:
    return whole_number(text, 0)


def alignment_arg(value: str) -> str:
    """``--alignment``: one of ALIGNMENTS, or A+B of them (a fused embedder's, checked against it later)."""
    from facerec.align.croppers import alignment_parts
    from facerec.errors import InputError

    try:
        alignment_parts(value, len(value.split("+")))
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def detector_arg(p: argparse.ArgumentParser, *, default: str | None, help: str) -> None:
    """``--detector NAME``; the seed's ``--align NAME`` is the same flag, accepted but not listed
    (one name in the help for one concept)."""
    from facerec.detect.registry import detector_names

    choices = detector_names()
    p.add_argument("--detector", dest="detector", choices=choices, default=default, help=help)
    p.add_argument("--align", dest="detector", choices=choices, default=default, help=argparse.SUPPRESS)


def pipeline_args(p: argparse.ArgumentParser, *, embedder_default: str | None, flip: bool = True) -> None:
    """The pipeline's options. ``embedder_default`` None: a command that follows its model's."""

    follows = embedder_default is None
    detector_arg(
        p,
        default=None if follows else DEFAULT_DETECTOR,
        help=f"the detector: {DEFAULT_DETECTOR} (default{': the model' + chr(39) + 's' if follows else ''}; "
        "batched MTCNN), mtcnn-reference (facenet-pytorch's own), dlib (HOG), dlib+mtcnn (HOG, and MTCNN "
        "where HOG finds no face: best for the dlib embedder), yunet (OpenCV's YuNet, batched: fastest), "
        "yunet-opencv (the same through cv2.FaceDetectorYN), yunet+onet (YuNet's faces framed by MTCNN's "
        "O-Net: FaceNet's accuracy at YuNet's speed), resize (whole image)",
    )
    add(
        p,
        "--embedder",
        default=embedder_default,
        help=f"{DEFAULT_EMBEDDER} (the default: offline), facenet-vggface2 (the seed's: a download and the gpu "
        "extra), dlib (the dlib extra), A+B (fused), onnx:PATH or onnx:sface (your own model: `facerec embedders`); "
        "infer and verify take the model's",
    )
    add(p, "--weights", default=None, help="explicit weights file for the embedder")
    add(
        p,
        "--weights-dir",
        default=None,
        help="a folder searched first for downloadable model files (YuNet's), before $FACEREC_MODELS "
        "and the model cache",
    )
    add(
        p,
        "--margin",
        type=float,
        default=None,
        help=f"pixels of margin around the detected face (default {DEFAULT_MARGIN:g})",
    )
    if not follows:  # infer and verify follow the model
        add(
            p,
            "--alignment",
            type=alignment_arg,
            default=DEFAULT_ALIGNMENT,
            metavar="{" + ",".join(ALIGNMENTS) + ",A+B}",
            help="box (each embedder's own crop around the detector's box) or five-point (the detector's "
            "landmarks onto the embedder's template: yunet and mtcnn have them); a fused embedder takes one "
            "per part, e.g. box+five-point",
        )
    add(p, "--device", default="auto", help="auto | cpu | cuda (cuda needs the gpu extra: pip install 'facerec[gpu]')")
    add(
        p, "--batch_size", type=positive_int, default=None, help="images per detection batch (default 64; 512 on a GPU)"
    )
    add(p, "--art_dir", default="artifacts", help="embeddings artefacts and the content cache")
    add(p, "--no-cache", action="store_true", help="do not read or write the content cache under --art_dir")
    if not follows and flip:  # train chooses; infer and verify follow the model
        add(p, "--flip", action="store_true", help="average each face's embedding with its mirror image's")
    add(
        p,
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="the embedding network's precision (FaceNet embedders): bf16/fp16 for GPUs (the gpu extra; same LFW accuracy); "
        "int8 on a CPU (ONNX Runtime, about 1.6x fp32's speed; LFW accuracy in the README)",
    )
    add(
        p,
        "--compile",
        action="store_true",
        help="torch.compile the embedding network (FaceNet embedders, the gpu extra; seconds of compiling, pays off on GPUs)",
    )
    add(p, "--fast", action="store_true", help=argparse.SUPPRESS)  # deprecated: every command is batched now
    add(p, "--quiet", action="store_true", help="no progress bars")


def store_token_arg(p: argparse.ArgumentParser) -> None:
    add(
        p,
        "--store-token",
        default=None,
        help="a Milvus server's token, user:password or an API key (default: $FACEREC_MILVUS_TOKEN; "
        "prefer the variable: a flag is visible to every user in `ps`)",
    )


def note_deprecations(args) -> None:
    if getattr(args, "fast", False):
        print(
            "note: --fast is deprecated and does nothing: every command runs the batched pipeline now; "
            "it will be removed in a later release",
            file=sys.stderr,
        )


def cache_dir(args):
    return None if getattr(args, "no_cache", False) or not getattr(args, "art_dir", None) else args.art_dir


def pipeline_options(args, **overrides):
    """The one :class:`~facerec.pipeline.options.PipelineOptions` the command line describes, with
    ``overrides`` over it. A choice the flags leave open stays None: the model's when a command
    follows one, else the default. Commands without a flag get its default (ingest has no --compile)."""
    from facerec.pipeline.options import PipelineOptions

    note_deprecations(args)
    return PipelineOptions(
        embedder=args.embedder,
        detector=args.detector,
        margin=args.margin,
        flip=getattr(args, "flip", None),
        alignment=getattr(args, "alignment", None),
        weights=args.weights,
        weights_dir=args.weights_dir,
        device=args.device,
        precision=args.precision,
        compile=getattr(args, "compile", False),
        batch_size=args.batch_size,
        cache_dir=cache_dir(args),
    ).replace(**overrides)


def build_pipeline(args, **overrides):
    """The pipeline the options describe (a command without a model)."""
    from facerec.pipeline import Pipeline

    return Pipeline.create(pipeline_options(args, **overrides))


def model_pipeline(args, gallery):
    """The pipeline whose embeddings compare with ``gallery``'s; --embedder must agree with it.
    The gallery decides flip and alignment: the flags cluster has for a new pipeline do not apply."""
    from facerec.pipeline import Pipeline

    return Pipeline.for_model(gallery, pipeline_options(args, flip=None, alignment=None))
