"""Named ONNX embedders (``--embedder onnx:sface``): each with its official file, its sha256, its
licence and what its authors published, so that ``onnx:NAME`` downloads exactly that file
through :mod:`facerec.runtime.weights` and refuses any other.

Only models whose sha256 was verified against their official publication are listed (see
docs/models.md): a hash copied from a third party, or computed from a download of unknown origin,
would make the check promise what it cannot. Any other model works by path,
``--embedder onnx:/path/model.onnx``.
"""

from __future__ import annotations

from dataclasses import dataclass

from facerec.embed.onnx_input import InputSpec
from facerec.runtime.weights import ModelFile


@dataclass(frozen=True)
class Preset:
    """A named ONNX embedder: its file, how its input is made, its length and what was published."""

    name: str
    file: ModelFile
    size_bytes: int
    input: InputSpec
    dim: int
    published: str  # the accuracy its authors published, with where
    terms: str  # shown before the first download: the licence in a sentence


PRESETS: dict[str, Preset] = {
    "sface": Preset(
        name="sface",
        file=ModelFile(
            filename="face_recognition_sface_2021dec.onnx",
            sha256="0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79",
            urls=(
                "https://github.com/opencv/opencv_zoo/raw/main/models/face_recognition_sface/"
                "face_recognition_sface_2021dec.onnx",
                "https://huggingface.co/opencv/face_recognition_sface/resolve/main/face_recognition_sface_2021dec.onnx",
            ),
            licence="Apache-2.0",
        ),
        size_bytes=38_696_353,
        # OpenCV's FaceRecognizerSF: blobFromImage(aligned BGR, scale 1, mean 0, swapRB=true): RGB, raw 0..255
        input=InputSpec(size=112, channels="rgb", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), crop="arcface"),
        dim=128,
        published="LFW 99.40% (opencv_zoo's README)",
        terms="SFace (OpenCV Zoo) is published under the Apache License 2.0: free for commercial use.",
    ),
}


def preset_names() -> list[str]:
    return [f"onnx:{name}" for name in sorted(PRESETS)]
