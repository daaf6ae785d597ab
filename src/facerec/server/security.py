"""The gate every request passes before the app sees it (an ASGI middleware).

In order: the Host header must name this server (DNS rebinding: a page on evil.example that
resolves to 127.0.0.1 sends ``Host: evil.example``); a state-changing request (POST, PUT, PATCH,
DELETE) that a browser sends from another site is refused (its ``Origin`` or ``Sec-Fetch-Site``
says so; a multipart POST needs no CORS preflight, so this check is what stops a page the user
visits from enrolling faces); with an API key, a ``/v1`` request without it is answered 401
before its body is read; the body may not exceed the upload limit, declared or streamed (413,
chunked too). A refused body is drained (up to a bound) before the answer, so the client reads
the JSON instead of a connection reset. Every answer carries a Content-Security-Policy,
``X-Content-Type-Options`` and ``X-Frame-Options``. A header the checks read (``Host``,
``Origin``, ``Sec-Fetch-Site``, ``X-API-Key``, ``Content-Length``) sent twice is refused (400):
which copy would count is a guess a proxy and this server could make differently.

Memory: a body is read before the app sees it (so a cut-off upload changes nothing), but it is
never all held in memory while it arrives. Each body keeps at most :data:`SPOOL_BYTES` in memory,
and all bodies being received together at most :data:`BODY_MEMORY_BYTES`; past either, it goes
to a temporary file (``$TMPDIR``). A complete body then enters the app only while the bodies
already inside (being parsed, waiting for a worker, worked on) total less than
:data:`ADMITTED_BODY_BYTES`; otherwise it is answered 503 with ``Retry-After``. So bodies cost at
most BODY_MEMORY_BYTES + LIMIT_CONCURRENCY x 64 KiB (uvicorn's read buffer per connection) +
2 x ADMITTED_BODY_BYTES (the app's multipart parts and the route's copy), ~0.6 GB, whatever the
clients do (30 connections each holding a 50 MB video body one byte short: tested).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import tempfile
import time

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
#: A refused body is read and thrown away up to this much (and this long), so that the client
#: reads the answer; past it the connection is closed.
DRAIN_BYTES = 96 * 2**20
DRAIN_SECONDS = 15.0
DRAIN_PAUSE = 1.0  # a client that stops sending (it waits for our answer) is answered after this
UNAUTHENTICATED_DRAIN_BYTES = 2**20  # a client without the key gets little of our time
MULTIPART_SLACK = 64 * 1024  # multipart framing around the files themselves
#: A body being received stays in memory up to this size (most photos), beyond it on disk ...
SPOOL_BYTES = 2**20
#: ... and all bodies being received together hold at most this much memory.
BODY_MEMORY_BYTES = 64 * 2**20
#: Complete bodies inside the app together (each can be in memory twice: parsed, then read).
ADMITTED_BODY_BYTES = 256 * 2**20
REPLAY_CHUNK = 256 * 1024  # how a spooled body is handed to the app
#: Set in the request's scope when it carries the API key (or the server has none): /healthz shows
#: where the gallery lives only to such clients.
AUTHORIZED = "facerec.authorized"
#: Headers whose value decides a check: sent twice, the request is refused.
SINGLE_HEADERS = (b"host", b"origin", b"sec-fetch-site", b"x-api-key", b"content-length")

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HEADERS = [
    (b"content-security-policy", PAGE_CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


class Gate:
    """ASGI middleware; see the module's docstring. ``allowed_hosts``: host names (no port) this
    server answers to; ``allowed_origins``: other origins (``scheme://host[:port]``) that may write."""

    def __init__(
        self,
        app,
        *,
        max_body: int,
        allowed_hosts,
        allowed_origins=(),
        api_key: str | None = None,
        larger_bodies: dict | None = None,
    ):
        self.app, self.max_body = app, max_body
        self.larger_bodies = dict(larger_bodies or {})  # path -> its own body limit (a video upload)
        self.allowed_hosts = {h.lower().strip("[]") for h in allowed_hosts}
        self.allowed_origins = {o.lower().rstrip("/") for o in allowed_origins}
        self.api_key = api_key
        self.budget = BodyBudget()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        raw = [(k.lower(), v) for k, v in scope.get("headers") or []]
        headers = dict(raw)
        twice = [k.decode("latin-1") for k in SINGLE_HEADERS if sum(1 for n, _ in raw if n == k) > 1]
        if twice:
            await _answer(send, 400, f"the {twice[0]} header is sent more than once", [(b"connection", b"close")])
            return
        host = headers.get(b"host", b"").decode("latin-1")
        method = scope["method"]

        async def refuse(status: int, message: str, drain: int, extra=()):
            await _drain(receive, drain)
            await _answer(send, status, message, extra)

        if _host_name(host) not in self.allowed_hosts:
            return await refuse(
                421, f"this server does not answer to the host {host[:100]!r} (allow it with --allow-host)", 0
            )
        if method not in SAFE_METHODS and not self._same_site(headers, host, scope):
            origin = headers.get(b"origin", b"").decode("latin-1")[:100]
            return await refuse(403, f"cross-site request refused (Origin {origin or 'unknown'!r})", 2**20)
        given = headers.get(b"x-api-key", b"")
        scope[AUTHORIZED] = not self.api_key or hmac.compare_digest(given, self.api_key.encode())
        if not scope[AUTHORIZED] and scope["path"].startswith("/v1/"):
            return await refuse(
                401, "missing or wrong API key (send it in the X-API-Key header)", UNAUTHENTICATED_DRAIN_BYTES
            )
        limit = self.larger_bodies.get(scope["path"], self.max_body)
        allowed = limit + MULTIPART_SLACK
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > allowed:
            return await refuse(413, _too_large(limit), DRAIN_BYTES, [(b"connection", b"close")])
        if method in SAFE_METHODS:
            return await self.app(scope, receive, _with_headers(send))
        body = SpooledBody(self.budget)
        try:
            complete, more = await _read_body(receive, allowed, body)
            if not complete:  # the client went away mid-body: a partial upload must not enrol anything
                return
            if more:  # streamed (chunked) past the limit
                body.close()
                return await refuse(413, _too_large(limit), DRAIN_BYTES, [(b"connection", b"close")])
            if not self.budget.admit(body.size):
                return await _answer(
                    send,
                    503,
                    "busy: the requests being served hold too much uploaded data; retry in a second",
                    [(b"retry-after", b"1")],
                )
            try:
                await self.app(scope, _replay(body, receive), _with_headers(send))
            finally:
                self.budget.release(body.size)
        finally:
            body.close()

    def _same_site(self, headers: dict, host: str, scope) -> bool:
        """Whether a browser sent this from this server's own page (or an allowed origin); requests
        that carry neither Origin nor Sec-Fetch-Site come from programs, not web pages."""
        if headers.get(b"sec-fetch-site", b"").lower() == b"cross-site":
            return False
        origin = headers.get(b"origin")
        if origin is None:
            return True
        origin = origin.decode("latin-1").lower().rstrip("/")
        scheme = scope.get("scheme", "http")
        return origin == f"{scheme}://{host.lower()}" or origin in self.allowed_origins


def _host_name(host: str) -> str:
    """``Host`` without its port: ``127.0.0.1:8000`` -> ``127.0.0.1``, ``[::1]:8000`` -> ``::1``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _with_headers(send):
    async def send_with_headers(message):
        if message["type"] == "http.response.start":
            present = {k.lower() for k, _ in message.get("headers", [])}
            message = {
                **message,
                "headers": list(message.get("headers", [])) + [h for h in HEADERS if h[0] not in present],
            }
        await send(message)

    return send_with_headers


class BodyBudget:
    """The server's memory for bodies, counted across connections (only the event loop touches it):
    ``held``, bytes of bodies being received kept in memory; ``admitted``, bytes of complete bodies
    inside the app."""

    def __init__(self, memory: int | None = None, admitted: int | None = None):
        self.memory = BODY_MEMORY_BYTES if memory is None else memory
        self.admitted_limit = ADMITTED_BODY_BYTES if admitted is None else admitted
        self.held = self.admitted = 0

    def take(self, n: int) -> bool:
        if self.held + n > self.memory:
            return False
        self.held += n
        return True

    def give(self, n: int) -> None:
        self.held -= n

    def admit(self, n: int) -> bool:
        """Room for a complete body of ``n`` bytes in the app; one body alone always fits (each is
        within the upload limit), so a large video is never refused on an idle server."""
        if self.admitted and self.admitted + n > self.admitted_limit:
            return False
        self.admitted += n
        return True

    def release(self, n: int) -> None:
        self.admitted -= n


class SpooledBody:
    """One request's body: in memory while it is small and the budget allows, else in a temporary
    file (unnamed: gone when closed, or when the process dies)."""

    def __init__(self, budget: BodyBudget):
        self.budget, self.size = budget, 0
        self.parts: list[bytes] = []
        self.in_memory = 0  # bytes of ``parts``, taken from the budget
        self.file = None

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.file is None:
            if self.in_memory + len(chunk) <= SPOOL_BYTES and self.budget.take(len(chunk)):
                self.parts.append(chunk)
                self.in_memory += len(chunk)
                return
            self.file = tempfile.TemporaryFile(prefix="facerec-body-")
            for part in self.parts:
                self.file.write(part)
            self._free_memory()
        self.file.write(chunk)

    def chunks(self):
        """The body in order, in pieces of at most REPLAY_CHUNK bytes (a file is read as it goes)."""
        if self.file is None:
            yield from self.parts
            return
        self.file.seek(0)
        while piece := self.file.read(REPLAY_CHUNK):
            yield piece

    def _free_memory(self) -> None:
        self.parts = []
        self.budget.give(self.in_memory)
        self.in_memory = 0

    def close(self) -> None:
        self._free_memory()
        if self.file is not None:
            self.file.close()
            self.file = None


def _replay(body: SpooledBody, receive):
    """The app's ``receive``: the spooled body in pieces, then (when it comes) the disconnect.
    The body's memory is given back as soon as its last piece is handed over."""
    pieces = body.chunks()
    ahead = next(pieces, b"")
    done = False

    async def replay():
        nonlocal ahead, done
        if done:
            return await receive()
        piece, ahead = ahead, next(pieces, None)
        if ahead is None:
            done = True
            body.close()
        return {"type": "http.request", "body": piece, "more_body": not done}

    return replay


async def _read_body(receive, limit: int, body: SpooledBody) -> tuple[bool, bool]:
    """Read the request body into ``body``: (complete, over) -- over once it passes ``limit``;
    not complete when the client disconnected first."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return False, False
        chunk = message.get("body", b"")
        if body.size + len(chunk) > limit:
            return True, True
        body.add(chunk)
        if not message.get("more_body", False):
            return True, False


async def _drain(receive, limit: int) -> None:
    """Read and discard up to ``limit`` bytes of the body (within DRAIN_SECONDS)."""
    if limit <= 0:
        return
    deadline, seen = time.monotonic() + DRAIN_SECONDS, 0
    while seen <= limit:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        try:
            message = await asyncio.wait_for(receive(), min(left, DRAIN_PAUSE))
        except asyncio.TimeoutError:
            return
        if message["type"] != "http.request":
            return
        seen += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


def _too_large(limit: int) -> str:
    return f"request body over the upload limit of {limit:,} bytes"


async def _answer(send, status: int, message: str, extra=()) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + list(extra) + HEADERS})
    await send({"type": "http.response.body", "body": body})
