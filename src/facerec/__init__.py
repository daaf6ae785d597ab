"""facerec: find, embed and identify faces, with the evidence next to every answer.

The library in five lines (models load when a function is called, never at import)::

    import facerec
    faces = facerec.detect("group.jpg")                    # boxes, landmarks, scores
    vectors = facerec.embed("group.jpg", embedder="facenet-casia")
    print(facerec.verify("a.jpg", "b.jpg", embedder="facenet-casia").same)

    gallery = facerec.train("people/", embedder="facenet-casia").gallery  # folder per person, or .npz
    for face in facerec.identify_image("photo.jpg", gallery):
        print(face.box, face.prediction.name, face.prediction.distance)

For many images build one :class:`Pipeline` and call its ``detect``/``embed``/``identify``.
"""

from facerec._version import __version__
from facerec.api import detect, embed, identify_image, load_model, train, verify
from facerec.errors import (
    DataError,
    FacerecError,
    ImageError,
    InputError,
    ModelFileError,
    NoFaceError,
    NotFittedError,
    WeightsError,
)
from facerec.gallery import Gallery
from facerec.gallery.verify import Verification
from facerec.pipeline import Face, Pipeline, PipelineConfig, PipelineOptions

__all__ = [
    "DataError",
    "Face",
    "FacerecError",
    "Gallery",
    "ImageError",
    "InputError",
    "ModelFileError",
    "NoFaceError",
    "NotFittedError",
    "Pipeline",
    "PipelineConfig",
    "PipelineOptions",
    "Verification",
    "WeightsError",
    "__version__",
    "detect",
    "embed",
    "identify_image",
    "load_model",
    "train",
    "verify",
]
