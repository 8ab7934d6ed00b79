"""Progress bars for the long stages: tqdm on stderr with rate and ETA, silent when stderr is
not a terminal (DVC logs, CI, tests), so a pipeline log holds only what a user can act on."""

from __future__ import annotations

import sys
from collections.abc import Iterable


def progress(iterable: Iterable | None = None, total: int | None = None, desc: str = "", unit="it"):
    from tqdm.auto import tqdm

    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        disable=not sys.stderr.isatty(),
        dynamic_ncols=True,
    )
