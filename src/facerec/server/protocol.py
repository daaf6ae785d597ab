"""uvicorn's HTTP/1.1 protocol with the timeouts it lacks, and accept errors logged once a while.

uvicorn closes an idle keep-alive connection after ``timeout_keep_alive``, but a connection that
never sends a complete request head, or trickles its body (slowloris), is held forever: ~70 such
sockets exhausted a 64-descriptor server. Here a connection must finish its request head within
``HEAD_TIMEOUT`` seconds of opening (or of its previous response) and its body within
``BODY_TIMEOUT``; otherwise it is closed.
"""

from __future__ import annotations

import logging
import time

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

HEAD_TIMEOUT = 10.0
BODY_TIMEOUT = 60.0
KEEP_ALIVE = 5  # seconds an idle keep-alive connection stays open
LIMIT_CONCURRENCY = 256  # connections + tasks; beyond it uvicorn answers 503
BACKLOG = 512


class GuardedH11Protocol(H11Protocol):
    def connection_made(self, transport):
        super().connection_made(transport)
        self._deadline = None
        self._arm(HEAD_TIMEOUT)

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expire)

    def _disarm(self) -> None:
        if getattr(self, "_deadline", None) is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        # only a connection still sending its request is cut; one whose request is in is being answered
        if not self.transport.is_closing() and self.conn.their_state in (h11.IDLE, h11.SEND_BODY):
            self.transport.close()

    def handle_events(self) -> None:
        was_idle = self.conn.their_state is h11.IDLE
        super().handle_events()
        state = self.conn.their_state
        if state is h11.SEND_BODY and was_idle:
            self._arm(BODY_TIMEOUT)  # the head arrived: now the body has its own deadline
        elif state is h11.DONE:
            self._disarm()  # the request is in; the app answers in its own time

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # a pipelined request may already be in (its body timer armed): only an idle connection waits
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm(HEAD_TIMEOUT + KEEP_ALIVE)  # the next request's head (uvicorn's keep-alive closes first)

    def connection_lost(self, exc):
        self._disarm()
        super().connection_lost(exc)


class OncePerInterval(logging.Filter):
    """Let a message through once per ``seconds`` for each of its first words: a flood of failed
    accepts (out of file descriptors) logs one line every few seconds, not one traceback per try."""

    def __init__(self, seconds: float = 10.0):
        super().__init__()
        self.seconds = seconds
        self._last: dict = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg)[:40])
        now = time.monotonic()
        if now - self._last.get(key, -1e9) < self.seconds:
            return False
        self._last[key] = now
        record.exc_info = None  # one line, no traceback
        record.exc_text = None
        return True


def quiet_accept_errors() -> None:
    for name in ("asyncio", "uvicorn.error"):
        logging.getLogger(name).addFilter(OncePerInterval())


def raise_file_limit() -> None:
    """Use the hard limit on open files (often 1,024 soft vs 1,048,576 hard): more sockets fit."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
        if want > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ImportError, ValueError, OSError):
        pass


def uvicorn_config(app, *, host: str, port: int | None = None, log_level: str = "warning"):
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port or 0,
        http=GuardedH11Protocol,
        timeout_keep_alive=KEEP_ALIVE,
        limit_concurrency=LIMIT_CONCURRENCY,
        backlog=BACKLOG,
        log_level=log_level,
        server_header=False,
    )
