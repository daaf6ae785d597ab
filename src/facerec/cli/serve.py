"""``facerec serve``: the HTTP service and its web page."""

from __future__ import annotations

import math
import os

from ..errors import InputError
from .common import EXIT_OK, add, positive_int


def add_parser(sub) -> None:
    from ..server.limits import Limits

    d = Limits()
    p = sub.add_parser("serve", help="HTTP service and web page: identify, verify, enrol")
    add(p, "--model", required=True, help="model file to serve; enrolments are saved back to it")
    add(p, "--host", default="127.0.0.1")
    add(p, "--port", type=int, default=8000)
    add(
        p, "--api-key", default=None, help="require this key in X-API-Key on every /v1 call (default: $FACEREC_API_KEY)"
    )
    add(p, "--insecure-no-key", action="store_true", help="allow serving on a non-loopback address without an API key")
    add(p, "--workers", type=positive_int, default=2, help="requests that embed at the same time")
    add(p, "--max-upload-mb", type=float, default=d.max_upload_bytes / 2**20)
    add(p, "--max-pixels", type=positive_int, default=d.max_pixels)
    add(p, "--max-faces", type=positive_int, default=d.max_faces, help="faces per image")
    add(p, "--device", default="auto")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..server import Limits, create_app, is_loopback

    key = args.api_key or os.environ.get("FACEREC_API_KEY") or None
    if not key and not is_loopback(args.host) and not args.insecure_no_key:
        raise InputError(
            f"--host {args.host} is reachable from other machines: set --api-key (or FACEREC_API_KEY), "
            "or pass --insecure-no-key to serve without one"
        )
    if not 1 <= args.port <= 65535:
        raise InputError(f"--port must be between 1 and 65535, got {args.port}")
    if not math.isfinite(args.max_upload_mb) or args.max_upload_mb <= 0:
        raise InputError(f"--max-upload-mb must be a finite number > 0, got {args.max_upload_mb}")
    import uvicorn

    app = create_app(
        args.model,
        api_key=key,
        workers=args.workers,
        device=args.device,
        limits=Limits(
            max_upload_bytes=int(args.max_upload_mb * 2**20), max_pixels=args.max_pixels, max_faces=args.max_faces
        ),
    )
    print(
        f"serving {args.model} on http://{args.host}:{args.port}/ (API docs at /docs)"
        + ("" if key else "; no API key"),
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return EXIT_OK
