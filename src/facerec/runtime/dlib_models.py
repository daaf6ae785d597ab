"""Locate dlib's model files shipped by ``face_recognition_models``.

Its ``__init__`` imports ``pkg_resources`` (gone from recent setuptools), so we find the
package directory with ``importlib.util.find_spec`` and never import it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from facerec.errors import WeightsError
from facerec.extras import MODULE_EXTRAS, MissingExtra, require

RESNET = "dlib_face_recognition_resnet_model_v1.dat"
SHAPE_5 = "shape_predictor_5_face_landmarks.dat"


def dlib_model_path(filename: str) -> Path:
    try:
        spec = importlib.util.find_spec("face_recognition_models")
    except ImportError:  # made unimportable (tests/without): the same as not installed
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtra(*MODULE_EXTRAS["face_recognition_models"], "face_recognition_models")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / filename
    if not path.is_file():
        raise WeightsError(f"{path} is missing; reinstall face_recognition_models")
    return path


def import_dlib():
    return require("dlib")
