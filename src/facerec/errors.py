"""One exception hierarchy for the library; the CLI and server translate it at the edges."""


class FacerecError(Exception):
    """Base class for every error the library raises on purpose."""


class InputError(FacerecError):
    """A user-supplied file or value is unusable (bad image, malformed .npz, bad option)."""


class ImageError(InputError):
    """An image could not be decoded or is unsafe to decode."""


class DataError(InputError):
    """A dataset (.npz or folder) is malformed."""


class NotEnrolledError(InputError):
    """A person asked for by name is not in the gallery."""


class ModelFileError(FacerecError):
    """A saved model is missing, corrupt, not a model, or built by another pipeline."""


class SaveError(FacerecError):
    """A change could not be written to disk; it was undone in memory too."""


class WeightsError(FacerecError):
    """Model weights could not be found, downloaded or converted."""


class NoFaceError(FacerecError):
    """No face was found where one was required."""


class NotFittedError(FacerecError):
    """A gallery was queried before it was fitted."""


class StoreError(FacerecError):
    """A gallery store (a model file or a database) cannot be used as asked: a bad URI, a gallery
    that exists already or does not, a second writer on a file."""


class StoreUnavailable(SaveError):
    """The database holding the gallery is down or unreachable; nothing was changed. Retry later
    (the service answers 503 and reconnects by itself)."""
