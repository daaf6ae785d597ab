"""What a request may carry and who may send it: size limits, names, the loopback rule, and
413s for oversized bodies (declared or streamed)."""

import ipaddress
import json
import re
import unicodedata
from dataclasses import dataclass

from ..images import DEFAULT_MAX_PIXELS

CONTENT_TYPES = {"image/jpeg", "image/png", "image/webp", "image/bmp", "image/gif", "image/tiff"}
NAME_RE = re.compile(r"^[^\W_](?:[\w .'-]{0,62}[^\W_.])?$")  # letters/digits at both ends; no / \ or ..


@dataclass
class Limits:
    """What one request may carry. ``max_upload_bytes`` bounds the whole request body."""

    max_upload_bytes: int = 10 * 2**20
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_faces: int = 20
    max_files: int = 20


class HTTPError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def check_name(name: str) -> str:
    """A person's name as the URL gave it; refuses anything that could act as a path or markup."""
    name = unicodedata.normalize("NFC", name).strip()
    if not NAME_RE.match(name) or ".." in name:
        raise HTTPError(
            400,
            f"invalid person name {name[:80]!r}: use 1-64 letters, digits, spaces and . ' - _ "
            "(starting and ending with a letter or digit)",
        )
    return name


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class BodyLimit:
    """ASGI middleware: refuse a request body over ``max_bytes`` with 413 (declared or streamed)."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        # multipart framing adds a little around the file itself
        allowed = self.max_bytes + 64 * 1024
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > allowed:
            return await _too_large(send, self.max_bytes)
        seen = 0
        started = False

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > allowed:
                    raise _BodyTooLarge()
            return message

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _too_large(send, self.max_bytes)


class _BodyTooLarge(Exception):
    pass


async def _too_large(send, limit: int) -> None:
    body = json.dumps({"error": f"request body over the upload limit of {limit:,} bytes"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
