"""Progress bars that stay silent when stderr is not a terminal or when asked to be quiet."""

from __future__ import annotations

import sys

from tqdm import tqdm


def progress(*, total: int, desc: str, quiet: bool = False) -> tqdm:
    return tqdm(
        total=total, desc=desc, unit="img", disable=quiet or not sys.stderr.isatty(), file=sys.stderr, leave=False
    )
