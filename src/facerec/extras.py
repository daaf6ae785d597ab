"""The optional parts of facerec: which extra brings which package, and the message when one is missing.

``pip install facerec`` is the core: detection, embedding, identification, clustering and
evaluation on ONNX Runtime, OpenCV and NumPy. Everything heavier is an extra
(``pip install 'facerec[serve]'``), declared in pyproject.toml; this table says which extra a
missing module belongs to, so that every command and route names the one to install instead of
showing an import traceback.
"""

from __future__ import annotations

import importlib
import importlib.util

from facerec.errors import InputError

#: top-level module -> (extra, what it is for). pyproject.toml's [project.optional-dependencies]
#: lists the packages; tests/unit/test_extras.py checks both agree.
MODULE_EXTRAS: dict[str, tuple[str, str]] = {
    "torch": ("gpu", "PyTorch (a GPU, nvJPEG, bf16/fp16, VGGFace2's PyTorch weights, mtcnn-reference)"),
    "torchvision": ("gpu", "PyTorch (a GPU, nvJPEG, bf16/fp16, VGGFace2's PyTorch weights, mtcnn-reference)"),
    "facenet_pytorch": ("gpu", "facenet-pytorch (VGGFace2's weights, mtcnn-reference)"),
    "dlib": ("dlib", "dlib (--embedder dlib, --detector dlib / dlib-hog / dlib+mtcnn)"),
    "face_recognition_models": ("dlib", "dlib's model files (--embedder dlib, --detector dlib)"),
    "fastapi": ("serve", "the HTTP service (facerec serve)"),
    "uvicorn": ("serve", "the HTTP service (facerec serve)"),
    "multipart": ("serve", "the HTTP service's uploads (facerec serve)"),
    "python_multipart": ("serve", "the HTTP service's uploads (facerec serve)"),
    "swagger_ui": ("serve", "the service's API page (/docs)"),
    "av": ("video", "video files and streams (PyAV)"),
    "pymilvus": ("milvus", "galleries in Milvus (train --store milvus:..., serve --model milvus:...)"),
    "milvus_lite": ("milvus", "Milvus Lite (milvus:./file.db galleries)"),
    "ray": ("ray", "facerec ingest --engine ray (Ray Data)"),
    "pyarrow": ("ray", "Parquet manifests (facerec ingest)"),
}


class MissingExtra(InputError):
    """An optional part of facerec was asked for, but its extra is not installed."""

    def __init__(self, extra: str, purpose: str, module: str):
        self.extra, self.module = extra, module
        super().__init__(
            f"{purpose} is not installed (no module {module!r}); install it with: pip install 'facerec[{extra}]'"
        )


def missing_extra(exc: ImportError) -> MissingExtra | None:
    """The :class:`MissingExtra` an ImportError of an optional module stands for, or None (a bug or
    a broken install, left as it is)."""
    name = getattr(exc, "name", None) or ""
    root = name.split(".")[0]
    if root not in MODULE_EXTRAS:
        return None
    extra, purpose = MODULE_EXTRAS[root]
    return MissingExtra(extra, purpose, root)


def require(module: str):
    """Import and return ``module`` (an optional part); raise :class:`MissingExtra` naming its extra
    when it is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        found = missing_extra(exc)
        if found is None:
            raise
        raise found from None


def has(module: str) -> bool:
    """Whether an optional module can be imported (without importing it twice)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a module made unimportable on purpose (tests/without), or a broken one
        return False
