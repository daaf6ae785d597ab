"""The service's refusals as HTTP answers: which status (and ``Retry-After``) answers which error,
and the error bodies every ``/v1`` route documents. The message is always the error's own."""

from __future__ import annotations

from collections.abc import Callable

from facerec.errors import FacerecError, NoFaceError, SaveError, StoreUnavailable
from facerec.extras import MissingExtra, missing_extra
from facerec.server import models
from facerec.server.limits import HTTPError
from facerec.server.service import OverLimit, Service, ServiceUnavailable, TooManyFaces
from facerec.video.frames import VideoOverBudget

#: The error answers a ``/v1`` route may give, documented at ``/docs``.
ERRORS = {code: {"model": models.ErrorBody} for code in (400, 401, 403, 404, 409, 413, 415, 422, 500, 501, 503)}

#: Error type -> (status, headers); the first that matches answers, so subclasses come first.
STATUSES: tuple[tuple[type[Exception], int, dict], ...] = (
    (OverLimit, 413, {}),  # pixels, frame size: what the request asks exceeds a limit
    (VideoOverBudget, 413, {}),  # a video too long, too many frames or faces: refused or stopped
    (MissingExtra, 501, {}),  # an optional part this server was installed without (pip install 'facerec[video]')
    (TooManyFaces, 422, {}),
    (NoFaceError, 422, {}),
    (StoreUnavailable, 503, {"retry-after": "5"}),  # the database is down: nothing changed, retry later
    (SaveError, 500, {}),
    (FacerecError, 400, {}),
)


def as_http(exc: Exception) -> HTTPError | None:
    """The HTTP answer to a refusal of the service or the library; None for anything else (a bug:
    left to propagate, answered 500)."""
    if isinstance(exc, ServiceUnavailable):
        headers = {"retry-after": str(exc.retry_after)} if exc.retry_after is not None else {}
        return HTTPError(503, str(exc), headers)
    if isinstance(exc, ImportError) and missing_extra(exc) is not None:
        exc = missing_extra(exc)
    for kind, status, headers in STATUSES:
        if isinstance(exc, kind):
            return HTTPError(status, str(exc), dict(headers))
    return None


async def in_worker(svc: Service, fn, *, first: Callable[[Exception], HTTPError | None] = lambda exc: None):
    """``fn()`` in one of the service's workers, its refusals answered as HTTP errors; ``first``
    answers a route's own cases (a 404, a 409) before the common table."""
    try:
        return await svc.run(fn)
    except HTTPError:
        raise
    except Exception as exc:
        answer = first(exc) or as_http(exc)
        if answer is None:
            raise
        raise answer from None
