"""SP 800-90B health tests: cutoffs from the formulas, fault injection, false-alarm rate."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from entropy_lab.entropy.health import (
    AdaptiveProportion,
    HealthTestFailure,
    HealthTests,
    RepetitionCount,
    apt_cutoff,
    rct_cutoff,
    startup_test,
)

# jitterentropy's published APT cutoffs (W = 512, H = 1/osr, osr = 1..15), computed by its
# authors as 2 + qbinom(1 - alpha, 511, 2^-H): alpha = 2^-30 (intermittent), 2^-60 (permanent).
JENT_2_30 = [325, 422, 459, 477, 488, 494, 499, 502, 505, 507, 508, 509, 510, 511, 512]
JENT_2_60 = [355, 447, 479, 494, 502, 507, 510, 512, 512, 512, 512, 512, 512, 512, 512]


def test_rct_cutoff_formula():
    assert rct_cutoff(2.0, 2.0**-20) == 11  # SP 800-90B 4.4.1's example: 1 + ceil(20 / 2)
    assert rct_cutoff(1.0, 2.0**-20) == 21
    assert rct_cutoff(0.5, 2.0**-40) == 81
    assert rct_cutoff(8.0, 2.0**-40) == 6


@pytest.mark.parametrize(("alpha", "table"), [(2.0**-30, JENT_2_30), (2.0**-60, JENT_2_60)])
def test_apt_corrected_form_matches_jitterentropy_tables(alpha, table):
    assert [apt_cutoff(1 / osr, alpha, 512, "jitterentropy") for osr in range(1, 16)] == table


@pytest.mark.parametrize("window", [512, 1024])
@pytest.mark.parametrize("h", [0.5, 1.0, 2.0, 4.0, 7.0])
@pytest.mark.parametrize("log2_alpha", [20, 30, 40])
def test_apt_cutoff_is_the_binomial_critical_value(window, h, log2_alpha):
    alpha, p = 2.0**-log2_alpha, 2.0**-h
    c = apt_cutoff(h, alpha, window)
    if c < window:  # 90B's model: the count B ~ Binomial(W, p); P(B >= C) <= alpha < P(B >= C - 1)
        assert stats.binom.sf(c - 1, window, p) <= alpha < stats.binom.sf(c - 2, window, p)
    corrected = apt_cutoff(h, alpha, window, "jitterentropy")
    assert corrected in (c, c + 1)  # one sample is given, not random: at most one higher


GOOD_H = 4.0  # uniform over 16 values: exactly 4 bits per sample


def good(rng, n):
    return rng.integers(0, 16, n)


def inject(rng, kind: str, n: int = 16384):
    """Good data, then a fault starting at a random point."""
    start = int(rng.integers(1024, 2048))
    x = good(rng, n)
    if kind == "stuck":
        x[start:] = x[start]
    elif kind == "biased":  # one value takes 40% of the mass
        x[start:] = np.where(rng.random(n - start) < 0.4, 7, x[start:])
    elif kind == "periodic":  # a short cycle
        x[start:] = np.arange(n - start) % 4
    return x


@pytest.mark.parametrize(
    ("kind", "test"),
    [("stuck", "repetition count test"), ("biased", ""), ("periodic", "adaptive proportion test")],
)
def test_every_injected_fault_is_caught(kind, test):
    rng = np.random.default_rng(123)
    for trial in range(50):
        tests = HealthTests("synthetic", GOOD_H, 2.0**-20)
        x = inject(rng, kind)
        with pytest.raises(HealthTestFailure, match=f"failed the {test}") as info:
            for chunk in np.array_split(x, 7):  # chunk boundaries must not hide a fault
                tests.update(chunk)
        assert "source 'synthetic'" in str(info.value) and "\n" not in str(info.value), trial


def test_false_alarm_rate_on_good_data_is_within_alpha():
    """At alpha = 2^-8, each test fires on good data at most at rate alpha (per window/run)."""
    rng = np.random.default_rng(5)
    alpha, trials = 2.0**-8, 4000
    upper = stats.binom.ppf(0.999, trials, alpha)  # a one-sided 99.9% bound on the count

    rct_c = rct_cutoff(
        GOOD_H, alpha
    )  # over exactly C samples: P(all equal) = 2^(-H (C-1)) <= alpha
    rct_fires = sum(
        RepetitionCount(rct_c).update(good(rng, rct_c)) is not None for _ in range(trials)
    )
    apt_c = apt_cutoff(GOOD_H, alpha, 512)
    apt_fires = sum(
        AdaptiveProportion(apt_c, 512).update(good(rng, 512)) is not None for _ in range(trials)
    )
    assert rct_fires <= upper and apt_fires <= upper
    assert rct_fires > 0  # the RCT is at its bound here (2^-8 exactly), so it must fire sometimes


def test_good_data_passes_at_operational_alpha():
    rng = np.random.default_rng(9)
    tests = HealthTests("good", GOOD_H, 2.0**-40)
    for _ in range(20):
        tests.update(good(rng, 50_000))
    assert tests.samples == 1_000_000


def test_startup_needs_1024_samples():
    with pytest.raises(HealthTestFailure, match="start-up testing needs 1024"):
        startup_test(HealthTests("short", 4.0, 2.0**-20), np.zeros(100, dtype=np.int64))
