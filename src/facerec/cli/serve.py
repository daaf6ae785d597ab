"""``facerec serve``: the HTTP service and its web page."""

from __future__ import annotations

import math
import os
import sys

from facerec.cli.common import EXIT_OK, add, positive_int, store_token_arg
from facerec.errors import InputError


def add_parser(sub) -> None:
    from facerec.server.limits import Limits

    d = Limits()
    p = sub.add_parser("serve", help="HTTP service and web page: identify, verify, enrol")
    add(
        p,
        "--model",
        required=True,
        help="the gallery to serve: a model file (enrolments are saved back to it; one server per file) or "
        "a store URI, milvus:./g.db or http://host:19530 (replicas on one Milvus server share it)",
    )
    store_token_arg(p)
    add(
        p,
        "--people",
        default=None,
        metavar="DIR",
        help="a people folder (facerec cluster --out DIR): the page's People view names, merges and rejects "
        "its clusters (one service per folder)",
    )
    add(p, "--host", default="127.0.0.1")
    add(p, "--port", type=int, default=8000)
    add(
        p,
        "--api-key-file",
        default=None,
        help="read the key every /v1 call must send (X-API-Key) from this file (default: $FACEREC_API_KEY)",
    )
    add(p, "--api-key", default=None, help="the key itself (visible to other users in `ps`: prefer the file or env)")
    add(p, "--insecure-no-key", action="store_true", help="allow serving on a non-loopback address without an API key")
    add(
        p,
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer to this Host name (a DNS name users reach the server by); loopback names always",
    )
    add(
        p,
        "--allow-origin",
        action="append",
        default=[],
        metavar="URL",
        help="also accept writes from pages of this origin (scheme://host[:port]); the server's own page always",
    )
    add(p, "--workers", type=positive_int, default=2, help="requests that embed at the same time")
    add(
        p,
        "--fpir",
        type=float,
        default=None,
        help="share of strangers the open-set threshold may name someone, e.g. 0.001 for 1 in 1,000 "
        "(default: the model's, 0.01 unless trained otherwise); follows every enrolment and removal",
    )
    add(
        p,
        "--max-pending",
        type=positive_int,
        default=d.max_pending,
        help="requests served or waiting at once; more are answered 503 with Retry-After",
    )
    add(p, "--max-upload-mb", type=float, default=d.max_upload_bytes / 2**20)
    add(p, "--max-pixels", type=positive_int, default=d.max_pixels, help="decoded pixels per image")
    add(
        p,
        "--max-request-pixels",
        type=positive_int,
        default=d.max_request_pixels,
        help="decoded pixels per request, all its images together",
    )
    add(p, "--max-faces", type=positive_int, default=d.max_faces, help="faces per image")
    add(p, "--device", default="auto")
    p.set_defaults(func=run)


def api_key(args) -> str | None:
    if args.api_key_file:
        try:
            key = open(args.api_key_file, encoding="utf-8").read().strip()
        except OSError as exc:
            raise InputError(f"--api-key-file {args.api_key_file}: {exc.strerror or exc}") from None
        if not key:
            raise InputError(f"--api-key-file {args.api_key_file}: the file is empty")
        return key
    if args.api_key:
        print(
            "warning: --api-key is visible to every user of this machine (ps); use --api-key-file or FACEREC_API_KEY",
            file=sys.stderr,
        )
        return args.api_key
    return os.environ.get("FACEREC_API_KEY") or None


def run(args) -> int:
    import socket

    from facerec.extras import require
    from facerec.store import check_store

    for module in ("fastapi", "uvicorn", "python_multipart"):  # the serve extra, named before anything starts
        require(module)
    check_store(args.model)

    from facerec.server import Limits, create_app, is_loopback
    from facerec.server.protocol import quiet_accept_errors, raise_file_limit, uvicorn_config

    if args.fpir is not None:
        from facerec.gallery.calibration import check_rate

        check_rate(args.fpir, "--fpir")
    key = api_key(args)
    if not key and not is_loopback(args.host) and not args.insecure_no_key:
        raise InputError(
            f"--host {args.host} is reachable from other machines: set --api-key-file (or FACEREC_API_KEY), "
            "or pass --insecure-no-key to serve without one"
        )
    if not 1 <= args.port <= 65535:
        raise InputError(f"--port must be between 1 and 65535, got {args.port}")
    if not math.isfinite(args.max_upload_mb) or args.max_upload_mb <= 0:
        raise InputError(f"--max-upload-mb must be a finite number > 0, got {args.max_upload_mb}")
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))  # before anything is printed: a busy port is a clear error
    except OSError as exc:
        sock.close()
        raise InputError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    import uvicorn

    limits = Limits(
        max_upload_bytes=int(args.max_upload_mb * 2**20),
        max_pixels=args.max_pixels,
        max_request_pixels=args.max_request_pixels,
        max_faces=args.max_faces,
        max_pending=args.max_pending,
    )
    hosts = set(args.allow_host) | ({args.host} if args.host not in ("0.0.0.0", "::") else set())
    app = create_app(
        args.model,
        api_key=key,
        workers=args.workers,
        device=args.device,
        limits=limits,
        allowed_hosts=hosts,
        allowed_origins=args.allow_origin,
        store_token=args.store_token,
        people=args.people,
        fpir=args.fpir,
    )
    raise_file_limit()
    quiet_accept_errors()
    print(
        f"serving {args.model} on http://{args.host}:{args.port}/ (API docs at /docs)"
        + ("" if key else "; no API key"),
        flush=True,
    )
    uvicorn.Server(uvicorn_config(app, host=args.host, port=args.port)).run(sockets=[sock])
    return EXIT_OK
