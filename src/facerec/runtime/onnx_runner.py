"""One ONNX Runtime session on the CPU, shared by the networks that run there (FaceNet's fp32 and
int8 graphs, YuNet's detector).

The session is made on the first call, in the calling thread, so that its worker threads inherit
that thread's scheduling priority (the service's image workers run niced). Its threads never spin
while idle: on a 2-core machine a spinning pool takes the core that the other stage needs.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from facerec.errors import WeightsError


class OnnxRunner:
    """A graph (a file, or its bytes) with one float32 input: ``runner(x)`` gives its first output,
    ``runner.run(x)`` all of them by name. ``session.run`` may be called from several threads at once.
    ``providers``: ONNX Runtime's execution providers in order (default the CPU's). ``arena``: keep
    ONNX Runtime's CPU memory arena (faster for inputs of one size); False gives memory back after
    each run, for graphs fed inputs of ever-changing sizes (MTCNN's P-Net over a pyramid), whose
    arena otherwise keeps the largest run's memory, per session, for good."""

    def __init__(
        self, source: Path | bytes, threads: int, label: str | None = None, providers=None, arena: bool = True
    ):
        self.arena = arena
        self._source = source if isinstance(source, bytes) else Path(source)
        self.label = label or ("the ONNX graph made in memory" if isinstance(source, bytes) else str(source))
        self.threads = max(1, int(threads))
        self.providers = list(providers) if providers else ["CPUExecutionProvider"]
        self._session = None
        self._lock = threading.Lock()

    def _open(self):
        import onnxruntime as ort

        with self._lock:
            if self._session is None:
                opts = ort.SessionOptions()
                opts.intra_op_num_threads = self.threads
                opts.inter_op_num_threads = 1
                opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
                opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                opts.enable_cpu_mem_arena = self.arena
                source = self._source if isinstance(self._source, bytes) else str(self._source)
                try:
                    session = ort.InferenceSession(source, opts, providers=self.providers)
                except Exception as exc:
                    hint = (
                        "" if isinstance(self._source, bytes) else "; if the file is damaged, deleting it rebuilds it"
                    )
                    raise WeightsError(f"{self.label}: ONNX Runtime cannot load it ({exc}){hint}") from None
                self._input = session.get_inputs()[0].name
                self._outputs = [o.name for o in session.get_outputs()]
                self._session = session
                if isinstance(self._source, bytes):
                    self._source = None  # the session holds its own copy
        return self._session

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        session = self._session or self._open()
        values = session.run(self._outputs, {self._input: np.ascontiguousarray(x, dtype=np.float32)})
        return dict(zip(self._outputs, values))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        session = self._session or self._open()
        return session.run(self._outputs[:1], {self._input: np.ascontiguousarray(x, dtype=np.float32)})[0]
