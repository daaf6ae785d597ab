"""A local standalone Milvus server for tests, benchmarks and a laptop: the ``milvus`` PyPI package's
bundled server (pip ``milvus==2.3.5``), started as an ordinary process on a free port with its data
in one folder. One at a time per machine: Milvus 2.3 locks ``/run/milvus/standalone.pid`` (a second
one panics at start).

It accepts connections after ~10-45 s on two cores. Stop it with SIGINT: SIGTERM leaves the server
child running.

Restarting on the same port needs care: the package's launcher checks the port with a plain bind
(no ``SO_REUSEADDR``) and, when that fails, silently moves the proxy to the next free port. After a
stop, the old server's connections hold the port in TIME_WAIT for up to a minute, so a quick restart
would come up elsewhere and never answer here. ``start`` therefore waits until the port binds, and
refuses a server whose proxy landed on another port."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

START_TIMEOUT_S = 240


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _is_milvus(pid: str) -> bool:
    """Whether ``pid`` runs the ``milvus`` binary (a zombie has no command line; a gone one raises)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].endswith(b"milvus")
    except OSError:
        return False


class MilvusServer:
    def __init__(self, data: Path, port: int | None = None):
        self.data, self.port = Path(data), port or free_port()
        self.proc = None
        self._seen_binary, self._launched = False, 0.0

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MilvusServer:
        exe = shutil.which("milvus-server") or str(Path(sys.executable).with_name("milvus-server"))
        if not Path(exe).exists():
            raise RuntimeError("milvus-server not found: pip install -r requirements-test.txt (milvus==2.3.5)")
        self.data.mkdir(parents=True, exist_ok=True)
        deadline = time.time() + START_TIMEOUT_S
        self._wait_port_free(deadline)
        log = open(self.data / "server.log", "ab")
        self._seen_binary = False
        self._launched = time.time() - 1  # mtime granularity: a config written in this second counts
        self.proc = subprocess.Popen(
            [exe, "--data", str(self.data), "--proxy-port", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as one
        )
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"milvus-server exited with {self.proc.returncode}; see {self.data / 'server.log'}")
            if self._server_died():
                self.stop()
                raise RuntimeError(f"the Milvus binary exited at start; see {self.data / 'logs' / 'milvus-stderr.log'}")
            moved = self._configured_port()
            if moved not in (None, self.port):
                self.stop()
                raise RuntimeError(
                    f"milvus-server put its proxy on port {moved}, not {self.port}; see {self.data / 'server.log'}"
                )
            if self._ready():
                return self
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"milvus-server did not start in {START_TIMEOUT_S} s; see {self.data / 'server.log'}")

    def _wait_port_free(self, deadline: float) -> None:
        """Until the port binds the way the launcher checks it: no SO_REUSEADDR, so TIME_WAIT counts."""
        while True:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", self.port))
                    return
                except OSError as exc:
                    if time.time() > deadline:
                        raise RuntimeError(
                            f"port {self.port} is still in use ({exc}); a milvus-server cannot start there"
                        ) from None
            time.sleep(1)

    def _server_died(self) -> bool:
        """The launcher stays up when the ``milvus`` binary under it dies (a panic at start): the
        binary was seen running and no longer is."""
        try:
            kids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        except OSError:
            return False  # not Linux, or the launcher is gone (poll() reports that)
        alive = any(_is_milvus(k) for k in kids)
        self._seen_binary = self._seen_binary or alive
        return self._seen_binary and not alive

    def _configured_port(self) -> int | None:
        """The proxy port the launcher wrote into this start's config (None before it is written)."""
        cfg = self.data / "configs" / "milvus.yaml"
        try:
            if cfg.stat().st_mtime < self._launched:
                return None
            m = re.search(r"^proxy:\n(?:[ #].*\n|\n)*?  port: (\d+)", cfg.read_text(), re.M)
        except OSError:
            return None
        return int(m.group(1)) if m else None

    def _ready(self) -> bool:
        try:
            from pymilvus import MilvusClient

            c = MilvusClient(self.uri, timeout=3, dedicated=True)  # a fresh channel: no reconnect backoff
            c.list_collections(timeout=3)
            c.close()
            return True
        except Exception:  # noqa: BLE001 - not up yet
            return False

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGINT)
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
        except ProcessLookupError:
            pass
