"""facerec: face recognition with FaceNet or dlib embeddings and k-NN evidence.

The front door is a handful of functions; models load only when one is called::

    import facerec
    gallery = facerec.train("data/lfw_subset.npz", embedder="facenet-casia")
    for face in facerec.identify_image("photo.jpg", gallery):
        print(face.box, face.prediction.name, face.prediction.distance)
"""

__version__ = "0.1.0"

from .api import identify_image, load_model, train  # noqa: E402

__all__ = ["__version__", "identify_image", "load_model", "train"]
