"""Where the networks run: the device a user asked for, whether it runs bf16 natively, and how many
threads the CPU's runtimes use.

PyTorch is optional (the ``gpu`` extra): without it every network runs on the CPU, through ONNX
Runtime, and a CUDA device is refused naming the extra.
"""

from __future__ import annotations

import os
import sys

from facerec.errors import InputError
from facerec.extras import MissingExtra, has


def resolve_device(device: str) -> str:
    """``auto`` picks CUDA when PyTorch sees a GPU, else the CPU; an explicit ``cuda`` without a GPU,
    or without PyTorch, is an error."""
    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        raise InputError(f"device must be auto, cpu, cuda or cuda:N, got {device!r}")
    if device == "cpu":
        return device
    if not has("torch"):  # the core install: the CPU's runtimes only
        if device == "auto":
            return "cpu"
        raise MissingExtra("gpu", f"device {device!r} runs on PyTorch, and PyTorch", "torch")
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available():
        raise InputError("device cuda was asked for, but PyTorch sees no CUDA GPU; use cpu or auto")
    return device


def fast_bf16(device: str) -> bool:
    """Whether ``device`` runs bf16 matrix work natively: a CUDA GPU that supports it, or a CPU with
    AMX-BF16 tiles (Intel Sapphire Rapids and later; oneDNN then runs FaceNet ~2.7x faster than
    fp32). Elsewhere bf16 is emulated and slower than fp32."""
    if device.startswith("cuda"):
        if not has("torch"):
            return False
        import torch

        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and " amx_bf16" in line for line in f)
    except OSError:
        return False


_threads: int | None = None  # set_cpu_threads's choice, for this process


def cpu_threads() -> int:
    """Threads for a CPU runtime's session (ONNX Runtime's intra-op pool): what
    :func:`set_cpu_threads` chose; else PyTorch's count where PyTorch is already loaded (so that
    ``torch.set_num_threads`` steers it, as before PyTorch was optional; its default is the
    machine's cores); else the cores this process may run on. PyTorch is never imported for this."""
    if _threads is not None:
        return _threads
    if "torch" in sys.modules:
        return sys.modules["torch"].get_num_threads()
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def set_cpu_threads(threads: int) -> None:
    """The CPU's threads for runtimes made from now on in this process (a Ray actor's share of a
    node): ONNX Runtime's sessions, PyTorch's pool where installed, OpenCV's."""
    global _threads
    import cv2

    _threads = max(1, int(threads))
    cv2.setNumThreads(_threads)
    if has("torch"):
        import torch

        torch.set_num_threads(_threads)
