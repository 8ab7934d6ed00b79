"""Continuous health tests of NIST SP 800-90B section 4.4, run while a source is read.

Repetition Count Test (4.4.1): fail when one value repeats C times in a row,
    C = 1 + ceil(-log2(alpha) / H).
Adaptive Proportion Test (4.4.2): in each window of W samples, count how often the
window's first value occurs; fail when the count reaches C. Two cutoff forms:
    "sp800-90b"      C = 1 + CRITBINOM(W, 2^-H, 1 - alpha)        (counts the first sample)
    "jitterentropy"  C = 2 + CRITBINOM(W - 1, 2^-H, 1 - alpha)    (the first sample is given,
                                                                  so only W-1 are random)
The default is SP 800-90B's formula, as the standard states it; the corrected form is the
one jitterentropy ships. Start-up testing (4.3) runs both tests over the first 1024
samples before any output is used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

from entropy_lab.errors import UserError

AptForm = Literal["sp800-90b", "jitterentropy"]
STARTUP_SAMPLES = 1024


def rct_cutoff(h: float, alpha: float) -> int:
    return 1 + math.ceil(-math.log2(alpha) / h)


def apt_window(bits_per_sample: int) -> int:
    return 1024 if bits_per_sample == 1 else 512


def critbinom(n: int, p: float, alpha: float) -> int:
    """The smallest k with P(Binomial(n, p) > k) <= alpha, i.e. CRITBINOM(n, p, 1 - alpha).

    Searched on the survival function, which stays accurate for alpha far below float64's
    2^-53 resolution of 1 - alpha (scipy's binom.ppf and binom.isf both fail there).
    """
    return int(np.argmax(stats.binom.sf(np.arange(n + 1), n, p) <= alpha))


def apt_cutoff(h: float, alpha: float, window: int, form: AptForm = "sp800-90b") -> int:
    p = 2.0**-h
    c = (
        1 + critbinom(window, p, alpha)
        if form == "sp800-90b"
        else 2 + critbinom(window - 1, p, alpha)
    )
    return min(c, window)  # a cutoff above W could never fail


class HealthTestFailure(UserError):
    """A source failed a continuous health test; the stage stops and writes no pool."""


class RepetitionCount:
    """RCT: the longest run of one value, carried across chunks."""

    name = "repetition count test"

    def __init__(self, cutoff: int):
        self.cutoff = cutoff
        self.last: int | None = None
        self.run = 0

    def update(self, x: np.ndarray) -> str | None:
        change = np.flatnonzero(np.diff(x)) + 1
        starts = np.concatenate(([0], change))
        lengths = np.diff(np.concatenate((starts, [x.size])))
        if self.last is not None and x[0] == self.last:
            lengths[0] += self.run
        self.last, self.run = int(x[-1]), int(lengths[-1])
        worst = int(lengths.max())
        return (
            f"{worst} identical samples in a row, cutoff {self.cutoff}"
            if worst >= self.cutoff
            else None
        )


class AdaptiveProportion:
    """APT: in each window, how often the window's first value recurs (the first counts)."""

    name = "adaptive proportion test"

    def __init__(self, cutoff: int, window: int):
        self.cutoff, self.window = cutoff, window
        self.base: int | None = None
        self.seen = self.count = 0

    def update(self, x: np.ndarray) -> str | None:
        i = 0
        while i < x.size:
            if self.base is None:
                self.base, self.seen, self.count = int(x[i]), 1, 1
                i += 1
                continue
            take = min(self.window - self.seen, x.size - i)
            self.count += int(np.count_nonzero(x[i : i + take] == self.base))
            self.seen += take
            i += take
            if self.count >= self.cutoff:
                return f"value {self.base} {self.count} times in a window of {self.window}, cutoff {self.cutoff}"
            if self.seen == self.window:
                self.base = None
        return None


@dataclass
class HealthTests:
    """Both continuous tests over a source's raw samples, chunk by chunk."""

    source: str
    h: float  # entropy per sample claimed for the source (bits)
    alpha: float
    bits_per_sample: int = 8
    form: AptForm = "sp800-90b"

    def __post_init__(self) -> None:
        self.rct = RepetitionCount(rct_cutoff(self.h, self.alpha))
        window = apt_window(self.bits_per_sample)
        self.apt = AdaptiveProportion(apt_cutoff(self.h, self.alpha, window, self.form), window)
        self.samples = 0

    def update(self, samples: np.ndarray) -> None:
        """Run both tests over the next chunk; raise on the first failure."""
        x = np.asarray(samples).astype(np.int64, copy=False)
        if x.size == 0:
            return
        for test in (self.rct, self.apt):
            failure = test.update(x)
            if failure:
                raise HealthTestFailure(
                    f"source {self.source!r} failed the {test.name} within samples "
                    f"{self.samples}-{self.samples + x.size} ({failure}); no pool written"
                )
        self.samples += int(x.size)


def startup_test(tests: HealthTests, samples: np.ndarray) -> None:
    """SP 800-90B 4.3: the first 1024 samples must pass before any output is used."""
    if len(samples) < STARTUP_SAMPLES:
        raise HealthTestFailure(
            f"source {tests.source!r} gave {len(samples)} samples; start-up testing needs {STARTUP_SAMPLES}"
        )
    tests.update(samples[:STARTUP_SAMPLES])
