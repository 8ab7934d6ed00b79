"""Statistics against known answers: published tables, scipy and statsmodels on fixed data,
and a simulation of the A/A false-positive rate."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from entropy_lab.stats import inference as inf


def test_pooled_sd_matches_definition():
    x, y = np.array([1.0, 2, 3, 4]), np.array([2.0, 4, 6])
    want = np.sqrt((3 * np.var(x, ddof=1) + 2 * np.var(y, ddof=1)) / 5)
    assert inf.pooled_sd(x, y) == pytest.approx(want)


def test_mde_matches_cohens_table():
    # Cohen (1988), Table 2.4.1: d = 0.5, two-sided alpha 0.05, power 0.80 needs n = 64 per group
    assert inf.mde(64, 64, 0.05, 0.8) == pytest.approx(0.50, abs=0.005)
    assert inf.mde(26, 26, 0.05, 0.8) == pytest.approx(0.80, abs=0.01)  # d = 0.8: n = 26


def test_holm_and_bh_on_a_known_example():
    p = np.array([0.01, 0.04, 0.03, 0.005, np.nan])
    np.testing.assert_allclose(inf.adjust(p, "holm"), [0.03, 0.06, 0.06, 0.02, np.nan])
    np.testing.assert_allclose(inf.adjust(p, "fdr_bh"), [0.02, 0.04, 0.04, 0.02, np.nan])


def test_tost_is_two_one_sided_welch_tests():
    rng = np.random.default_rng(0)
    x, y = rng.normal(0.1, 1, 80), rng.normal(0, 1.3, 60)
    m = 0.5
    lower = stats.ttest_ind(x + m, y, equal_var=False, alternative="greater").pvalue
    upper = stats.ttest_ind(x - m, y, equal_var=False, alternative="less").pvalue
    assert inf.tost_p(x, y, m) == pytest.approx(max(lower, upper))


def test_bootstrap_ci_agrees_with_welch_interval():
    rng = np.random.default_rng(1)
    x, y = rng.normal(1, 1, 400), rng.normal(0.7, 1, 400)
    lo, hi = inf.bootstrap_ci(x, y, 4000, 0.05, np.random.default_rng(2))
    want = stats.ttest_ind(x, y, equal_var=False).confidence_interval(0.95)
    assert lo == pytest.approx(want.low, abs=0.02) and hi == pytest.approx(want.high, abs=0.02)
    assert inf.bootstrap_ci(np.ones(5), np.ones(4), 200, 0.05, rng) == (0.0, 0.0)


def test_permutation_one_stratum_matches_scipy():
    rng = np.random.default_rng(3)
    x, y = rng.normal(0.4, 1, 15), rng.normal(0, 1, 12)
    ours = inf.stratified_permutation_p(x, y, np.zeros(15), np.zeros(12), 40_000, rng)
    ref = stats.permutation_test(
        (x, y), lambda a, b: a.mean() - b.mean(), n_resamples=40_000, rng=4
    ).pvalue
    assert ours == pytest.approx(ref, abs=0.01)


def test_permutation_respects_strata():
    # arms with different prompt mixes, a large prompt effect and no condition effect: the raw
    # mean difference is 5, but within each prompt every value is the same, so every
    # within-prompt relabelling gives the same statistic and p = 1; pooled relabelling gives
    # the exact p = 34/70 (splits of four tens and four zeros with |T| >= 5)
    x = np.array([0.0, 10.0, 10.0, 10.0])
    y = np.array([0.0, 0.0, 0.0, 10.0])
    sx, sy = np.array(["a", "b", "b", "b"]), np.array(["a", "a", "a", "b"])
    assert inf.stratified_permutation_p(x, y, sx, sy, 2000, np.random.default_rng(0)) == 1.0
    pooled = stats.permutation_test((x, y), lambda a, b: a.mean() - b.mean(), rng=0).pvalue
    assert pooled == pytest.approx(34 / 70)


def test_mixed_model_balanced_effect_is_the_mean_difference():
    rng = np.random.default_rng(5)
    prompts = np.repeat(np.arange(8), 10)
    base = rng.normal(0, 3, 8)[prompts]
    x = base + 0.5 + rng.normal(0, 1, 80)
    y = base + rng.normal(0, 1, 80)
    fit = inf.mixed_effects(x, y, prompts.astype(str), prompts.astype(str))
    assert fit.coef == pytest.approx(x.mean() - y.mean(), abs=1e-6)
    assert fit.converged and fit.p < 0.05
    # the prompt effect is absorbed: the SE is about sqrt(2/80), not inflated by the SD of 3
    assert fit.se == pytest.approx(np.sqrt(2 / 80), rel=0.25)


def test_binomial_interval_is_clopper_pearson():
    # known: 0 successes in 10 -> upper 1 - 0.025^(1/10)
    lo, hi = inf.binomial_interval(0, 10)
    assert lo == 0 and hi == pytest.approx(1 - 0.025 ** (1 / 10))


def test_verdicts():
    assert inf.verdict(0.01, 0.5, 0.05) == "difference"
    assert inf.verdict(0.5, 0.01, 0.05) == "equivalent"
    assert inf.verdict(0.5, 0.5, 0.05) == "inconclusive"


def test_aa_false_positive_rate_is_alpha():
    """400 simulated A/A experiments (5 prompts with different means, 16 per arm and prompt):
    the stratified permutation test rejects at a rate within a 99% binomial interval of 0.05."""
    rng = np.random.default_rng(7)
    strata = np.repeat(np.arange(5), 16)
    sims, rejections = 400, 0
    for _ in range(sims):
        shift = rng.normal(0, 2, 5)[strata]
        x, y = (
            shift + rng.exponential(1, 80),
            shift + rng.exponential(1, 80),
        )  # skewed, like metrics
        rejections += inf.stratified_permutation_p(x, y, strata, strata, 400, rng) < 0.05
    lo, hi = stats.binom.interval(0.99, sims, 0.05)
    assert lo <= rejections <= hi
