"""A local standalone Milvus server for tests, benchmarks and a laptop: the ``milvus`` PyPI package's
bundled server (pip ``milvus==2.3.5``), started as an ordinary process on a free port with its data
in one folder. One at a time per machine: Milvus 2.3 locks ``/run/milvus/standalone.pid`` (a second
one panics at start).

It accepts connections after ~45 s on two cores. Stop it with SIGINT: SIGTERM leaves the server
child running."""

from __future__ import annotations

import os
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


class MilvusServer:
    def __init__(self, data: Path, port: int | None = None):
        self.data, self.port = Path(data), port or free_port()
        self.proc = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MilvusServer:
        exe = shutil.which("milvus-server") or str(Path(sys.executable).with_name("milvus-server"))
        if not Path(exe).exists():
            raise RuntimeError("milvus-server not found: pip install -r requirements-test.txt (milvus==2.3.5)")
        self.data.mkdir(parents=True, exist_ok=True)
        log = open(self.data / "server.log", "ab")
        self.proc = subprocess.Popen(
            [exe, "--data", str(self.data), "--proxy-port", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as one
        )
        deadline = time.time() + START_TIMEOUT_S
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"milvus-server exited with {self.proc.returncode}; see {self.data / 'server.log'}")
            if self._ready():
                return self
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"milvus-server did not start in {START_TIMEOUT_S} s; see {self.data / 'server.log'}")

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
