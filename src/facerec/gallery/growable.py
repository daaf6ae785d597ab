"""Arrays that grow at the end in amortised O(added) time, so an enrolment into a gallery of 10^6
faces copies only the new rows (``np.concatenate`` would copy all 2 GB each time).

The backing buffer doubles when full. A view of the first n rows taken earlier stays valid after
later appends (they write past n, or into a new buffer), which is what lets a gallery snapshot
cost nothing and readers keep searching the rows they started with.
"""

from __future__ import annotations

import numpy as np


class GrowableArray:
    """The rows of ``self.view``; ``append`` adds rows at the end."""

    def __init__(self, data: np.ndarray):
        data = np.asarray(data)
        # room for an eighth more from the start: the first enrolments after loading a large
        # gallery must not each pay for copying it
        self._buf = np.empty((len(data) + max(64, len(data) // 8), *data.shape[1:]), data.dtype)
        self._buf[: len(data)] = data
        self._n = len(data)

    @property
    def view(self) -> np.ndarray:
        return self._buf[: self._n]

    def __len__(self) -> int:
        return self._n

    def append(self, rows: np.ndarray) -> np.ndarray:
        """Add ``rows`` (same trailing shape); returns the new :attr:`view`."""
        rows = np.asarray(rows, dtype=self._buf.dtype)
        need = self._n + len(rows)
        if need > len(self._buf):
            cap = max(need, 2 * len(self._buf), 16)
            buf = np.empty((cap, *self._buf.shape[1:]), self._buf.dtype)
            buf[: self._n] = self._buf[: self._n]
            self._buf = buf
        self._buf[self._n : need] = rows
        self._n = need
        return self.view

    def truncate(self, n: int) -> np.ndarray:
        """Back to the first ``n`` rows (undoing appends); returns the new :attr:`view`."""
        if not 0 <= n <= self._n:
            raise ValueError(f"cannot truncate {self._n} rows to {n}")
        self._n = n
        return self.view
