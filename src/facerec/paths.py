"""Where facerec keeps its caches; every location can be moved with an environment variable.

- ``FACEREC_HOME``: facerec's own cache (converted weights, the LFW symlink farm).
  Defaults to ``$XDG_CACHE_HOME/facerec`` (``~/.cache/facerec``).
- ``TORCH_HOME``: where facenet-pytorch downloads the VGGFace2 weights (``$TORCH_HOME/checkpoints``).
- ``SCIKIT_LEARN_DATA``: where scikit-learn looks for / downloads LFW.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path


def facerec_home() -> Path:
    env = os.environ.get("FACEREC_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "facerec"


def torch_home() -> Path:
    env = os.environ.get("TORCH_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "torch"


def real_path(path: str | os.PathLike) -> Path:
    """``path`` with every symbolic link resolved (it need not exist yet): what a lock is named
    after and what a save replaces, so that ``g.npz`` and a link to it are one file to both."""
    return Path(os.path.realpath(os.path.expanduser(path)))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder, then rename.

    A crash or error mid-write leaves any earlier file at ``path`` untouched. A ``path`` that is a
    symbolic link (``current.npz -> releases/v3.npz``) stays one: the file it points to is replaced.
    """
    path = real_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


_KINDS = {
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def read_regular_file(path: str | os.PathLike, *, max_bytes: int) -> bytes:
    """The bytes of the regular file at ``path``, at most ``max_bytes``; OSError (with a readable
    ``strerror``) for anything else. A FIFO is opened without blocking and refused (reading one
    waits forever for a writer), as is a device (``/dev/zero`` never ends) or a file over the limit."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
        if not stat.S_ISREG(info.st_mode):
            kind = _KINDS.get(stat.S_IFMT(info.st_mode), "not a file")
            raise OSError(errno.EINVAL, f"not a regular file: {kind}", str(path))
        if info.st_size > max_bytes:
            raise OSError(errno.EFBIG, f"{info.st_size:,} bytes, over the limit of {max_bytes:,}", str(path))
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb") as fh:
            fd = -1  # the file object closes it
            data = fh.read(max_bytes + 1)
    finally:
        if fd >= 0:
            os.close(fd)
    if len(data) > max_bytes:  # it grew while read
        raise OSError(errno.EFBIG, f"over the limit of {max_bytes:,} bytes", str(path))
    return data
