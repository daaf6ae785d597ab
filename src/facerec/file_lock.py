"""An exclusive lock held on a file beside what it guards (``model.npz.lock``, ``people/.lock``),
removed again when released, so that a clean exit leaves nothing behind.

The lock is the kernel's (``flock``): it goes with the process, so a lock file left by a process
that was killed is recognised as free by the next one, never obeyed forever. The file is removed
while still locked; a process that opened it just before then finds, once it holds its lock, that
the path no longer names the file it locked, and tries again on the new one.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO


class LockHeld(Exception):
    """Another live process holds the lock; ``holder`` is what it wrote there ("pid 1234")."""

    def __init__(self, path: Path, holder: str):
        super().__init__(f"{path} is held by {holder}")
        self.path, self.holder = path, holder


def acquire(path: Path) -> IO:
    """Hold the lock at ``path`` (made if missing), written with this process's pid; raises
    :class:`LockHeld` at once when a live process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fh = open(path, "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise LockHeld(path, holder) from None
        if _still_named(fh, path):
            break
        fh.close()  # its holder released and removed it while we waited: lock the new one
    fh.seek(0)
    fh.truncate()
    fh.write(f"pid {os.getpid()}\n")
    fh.flush()
    return fh


def release(fh: IO, path: Path) -> None:
    """Remove the lock file, then let go of it (in that order: see the module's docstring)."""
    try:
        if _still_named(fh, path):
            path.unlink()
    except OSError:
        pass  # a read-only folder keeps the file; the lock itself still goes below
    fcntl.flock(fh, fcntl.LOCK_UN)
    fh.close()


def _still_named(fh: IO, path: Path) -> bool:
    try:
        return os.fstat(fh.fileno()).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False
