"""facerec: find, embed and identify faces, with the evidence next to every answer.

The library in five lines (models load when a function is called, never at import)::

    import facerec
    faces = facerec.detect("group.jpg")                    # boxes, landmarks, scores
    vectors = facerec.embed("group.jpg", embedder="facenet-casia")
    print(facerec.verify("a.jpg", "b.jpg", embedder="facenet-casia").same)

    gallery = facerec.train("people/", embedder="facenet-casia").gallery  # folder per person, or .npz
    gallery.enrol("Ada", ["ada1.jpg", "ada2.jpg"])                      # more people later
    for face in facerec.identify("photo.jpg", gallery):                 # identify_image is the same
        print(face.box, face.prediction.name, face.prediction.distance)

Images are paths, bytes, PIL images or uint8 (H, W, 3) RGB arrays. The models a call loads are
kept for the next call of the same configuration (``facerec.clear_pipelines()`` lets them go);
for many images in one call, build one :class:`Pipeline` and call its ``run``/``embed``.
"""

from facerec._version import __version__
from facerec.api import detect, distance, embed, identify, identify_image, load_model, train, verify
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
from facerec.pipeline.kept import clear_pipelines

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
    "clear_pipelines",
    "detect",
    "distance",
    "embed",
    "identify",
    "identify_image",
    "load_model",
    "train",
    "verify",
]
