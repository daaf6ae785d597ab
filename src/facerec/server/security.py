"""The gate every request passes before the app sees it (an ASGI middleware).

In order: the Host header must name this server (DNS rebinding: a page on evil.example that
resolves to 127.0.0.1 sends ``Host: evil.example``); a state-changing request (POST, PUT, PATCH,
DELETE) that a browser sends from another site is refused (its ``Origin`` or ``Sec-Fetch-Site``
says so; a multipart POST needs no CORS preflight, so this check is what stops a page the user
visits from enrolling faces); with an API key, a ``/v1`` request without it is answered 401
before its body is read; the body may not exceed the upload limit, declared or streamed (413,
chunked too). A refused body is drained (up to a bound) before the answer, so the client reads
the JSON instead of a connection reset. Every answer carries a Content-Security-Policy,
``X-Content-Type-Options`` and ``X-Frame-Options``.
"""

from __future__ import annotations

import asyncio
import hmac
import json
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

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.lower(): v for k, v in scope.get("headers") or []}
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
        if self.api_key and scope["path"].startswith("/v1/"):
            given = headers.get(b"x-api-key", b"")
            if not hmac.compare_digest(given, self.api_key.encode()):
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
        body, more = await _read_body(receive, allowed)
        if body is None:  # the client went away mid-body: a partial upload must not enrol anything
            return
        if more:  # streamed (chunked) past the limit
            return await refuse(413, _too_large(limit), DRAIN_BYTES, [(b"connection", b"close")])
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the disconnect, when it comes

        await self.app(scope, replay, _with_headers(send))

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


async def _read_body(receive, limit: int) -> tuple[bytes | None, bool]:
    """The request body; (b"", True) once it passes ``limit``; (None, False) when the client
    disconnected before it was complete."""
    parts, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None, False
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return b"", True
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts), False


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
