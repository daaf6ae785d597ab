"""Progress bars that stay silent when stderr is not a terminal or when asked to be quiet."""

from __future__ import annotations

import sys

from tqdm import tqdm


def progress(*, total: int | None, desc: str, quiet: bool = False, unit: str = "img") -> tqdm:
    """A bar on stderr with the rate (``img/s``) and the time left; ``total`` None: a count only
    (a live stream, a video whose container does not say its length)."""
    return tqdm(
        total=total, desc=desc, unit=unit, disable=quiet or not sys.stderr.isatty(), file=sys.stderr, leave=False
    )
