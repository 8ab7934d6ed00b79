"""Statistics against known answers: published tables, scipy and statsmodels on fixed data,
brute force, and simulations of the sizes the tests promise."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.weightstats import ttost_ind

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


def test_tost_is_the_larger_of_welch_and_student():
    rng = np.random.default_rng(0)
    x, y = rng.normal(0.1, 1, 80), rng.normal(0, 1.3, 60)
    m = 0.5
    welch = max(
        stats.ttest_ind(x + m, y, equal_var=False, alternative="greater").pvalue,
        stats.ttest_ind(x - m, y, equal_var=False, alternative="less").pvalue,
    )
    student = max(
        stats.ttest_ind(x + m, y, alternative="greater").pvalue,
        stats.ttest_ind(x - m, y, alternative="less").pvalue,
    )
    assert inf.tost_p(x, y, m) == pytest.approx(max(welch, student))
    assert welch != pytest.approx(student)


def test_tost_never_declares_equivalence_from_a_constant_arm():
    y = np.random.default_rng(1).normal(0, 1, 500)
    assert np.isnan(inf.tost_p(np.zeros(500), y, 0.5))
    assert np.isnan(inf.tost_p(np.zeros(5), np.zeros(5), 0.5))
    assert not inf.equivalence_reachable(np.zeros(500), y, 0.5, 0.05)


def _zero_inflated_on_margin(rng, runs, nx, ny, margin_sd):
    """The issue's simulation: a small arm of a rare binary event (often all zeros) and a large
    arm, true difference exactly on the margin (in the arms' pooled SD)."""
    px, py = 0.08, 0.3
    sd = np.sqrt(((nx - 1) * px * (1 - px) + (ny - 1) * py * (1 - py)) / (nx + ny - 2))
    x = (rng.random((runs, nx)) < px).astype(float)
    y = (rng.random((runs, ny)) < py).astype(float) + (px - py) - margin_sd * sd
    return x, y


def test_tost_keeps_its_size_with_a_tiny_zero_variance_arm():
    """10 vs 160 samples, true effect exactly on the 0.3-SD margin, 2000 runs: Welch's TOST
    declares equivalence about 28% of the time (most small arms are all zeros); ours at most
    alpha (here: never, since 10 samples cannot bound a difference to 0.3 SD)."""
    rng = np.random.default_rng(15)
    runs, alpha = 2000, 0.05
    x, y = _zero_inflated_on_margin(rng, runs, 10, 160, 0.3)
    declared = welch = 0
    for xi, yi in zip(x, y, strict=True):
        margin = 0.3 * inf.pooled_sd(xi, yi)
        p = inf.tost_p(xi, yi, margin)
        declared += np.isfinite(p) and p < alpha
        welch += ttost_ind(xi, yi, -margin, margin, usevar="unequal")[0] < alpha
    assert welch / runs > 0.2  # the failure this test guards against
    assert declared / runs <= alpha


@pytest.mark.parametrize("nx", [40, 160])
def test_tost_size_at_larger_small_arms(nx):
    """Where equivalence is reachable, the size is still at most about alpha (binomial 99.9%
    upper bound of 0.05 at 1000 runs is 0.074; Welch alone gives 0.10 at 40 vs 160)."""
    rng = np.random.default_rng(nx)
    x, y = _zero_inflated_on_margin(rng, 1000, nx, 160, 0.3)
    p = [inf.tost_p(xi, yi, 0.3 * inf.pooled_sd(xi, yi)) for xi, yi in zip(x, y, strict=True)]
    rate = np.mean(np.nan_to_num(p, nan=1.0) < 0.05)
    assert rate <= stats.binom.ppf(0.999, 1000, 0.05) / 1000


def test_equivalence_reachable_depends_on_n():
    rng = np.random.default_rng(2)
    small, large = rng.normal(0, 1, (2, 40)), rng.normal(0, 1, (2, 400))
    assert not inf.equivalence_reachable(small[0], small[1], 0.3, 0.05)  # SE 0.22 SD
    assert inf.equivalence_reachable(large[0], large[1], 0.3, 0.05)  # SE 0.07 SD


def test_bootstrap_ci_agrees_with_welch_interval():
    rng = np.random.default_rng(1)
    x, y = rng.normal(1, 1, 400), rng.normal(0.7, 1, 400)
    lo, hi = inf.bootstrap_ci(x, y, 4000, 0.05, np.random.default_rng(2))
    want = stats.ttest_ind(x, y, equal_var=False).confidence_interval(0.95)
    assert lo == pytest.approx(want.low, abs=0.02) and hi == pytest.approx(want.high, abs=0.02)
    # no interval from a constant arm: its resamples have no spread
    assert np.isnan(inf.bootstrap_ci(np.ones(5), rng.normal(0, 1, 9), 200, 0.05, rng)).all()


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
    assert fit.status == "ok" and fit.p < 0.05 and fit.warnings == ""
    # the prompt effect is absorbed: the SE is about sqrt(2/80), not inflated by the SD of 3
    assert fit.se == pytest.approx(np.sqrt(2 / 80), rel=0.25)


def test_mixed_model_at_the_boundary_is_ols():
    """No prompt effect: the prompt variance is estimated at zero, and the fit is OLS
    (statsmodels' default optimisers raise LinAlgError on this data)."""
    import statsmodels.api as sm

    rng = np.random.default_rng(1)
    prompts = np.repeat(np.arange(10), 16).astype(str)
    x, y = rng.normal(0, 1, (2, 160))
    fit = inf.mixed_effects(x, y, prompts, prompts)
    ols = sm.OLS(np.r_[x, y], sm.add_constant(np.r_[np.ones(160), np.zeros(160)])).fit()
    assert fit.status == "boundary" and "boundary" in fit.warnings
    assert fit.coef == pytest.approx(ols.params[1])
    assert fit.se == pytest.approx(ols.bse[1], rel=1e-3)
    assert np.isfinite(fit.p)


def test_mixed_model_statuses_on_ordinary_data():
    """The issue's simulation (skewed, binary, tiny and large prompt effects, 40 fits): every
    fit has a status, and none is a silent NaN or a failure."""
    rng = np.random.default_rng(0)
    prompts = np.repeat(np.arange(10), 16).astype(str)
    statuses = []
    for i in range(40):
        kind = i % 4
        if kind == 0:
            base = rng.uniform(0, 0.3, 10)[np.repeat(np.arange(10), 16)]
            v = np.where(rng.random((2, 160)) < 0.7, 0, rng.exponential(base + 0.01, (2, 160)))
        elif kind == 1:
            v = rng.normal(0, 0.05, 10)[np.repeat(np.arange(10), 16)] + rng.normal(0, 1, (2, 160))
        elif kind == 2:
            v = (rng.random((2, 160)) < 0.05).astype(float)
        else:
            v = 1000 + rng.normal(0, 50, 10)[np.repeat(np.arange(10), 16)]
            v = v + rng.normal(0, 5, (2, 160))
        fit = inf.mixed_effects(v[0], v[1], prompts, prompts)
        assert fit.status in inf.MIXED_STATUSES
        assert np.isfinite(fit.p) == (fit.status in ("ok", "boundary"))
        statuses.append(fit.status)
    assert set(statuses) <= {"ok", "boundary"} and {"ok", "boundary"} <= set(statuses)
    const = inf.mixed_effects(np.ones(4), np.ones(4), np.zeros(4), np.zeros(4))
    assert const.status == "failed" and np.isnan(const.p)


def test_binomial_interval_is_clopper_pearson():
    # known: 0 successes in 10 -> upper 1 - 0.025^(1/10)
    lo, hi = inf.binomial_interval(0, 10)
    assert lo == 0 and hi == pytest.approx(1 - 0.025 ** (1 / 10))


def test_verdicts():
    assert inf.verdict(0.01, 0.5, 0.05) == "difference"
    assert inf.verdict(0.01, 0.01, 0.05) == "trivial difference"
    assert inf.verdict(0.5, 0.01, 0.05) == "equivalent"
    assert inf.verdict(0.5, 0.5, 0.05) == "inconclusive"
    assert inf.verdict(np.nan, np.nan, 0.05) == "no variation"


def _declared(p: np.ndarray, method: str) -> np.ndarray:
    """BH and Holm by their textbook definitions (statsmodels' Holm runs gc.collect per call)."""
    m = len(p)
    order = np.argsort(p, kind="stable")
    out = np.zeros(m, bool)
    if method == "fdr_bh":
        passing = np.flatnonzero(p[order] <= 0.05 * np.arange(1, m + 1) / m)
        out[order[: passing.max() + 1 if len(passing) else 0]] = True
    else:
        passing = p[order] <= 0.05 / (m - np.arange(m))
        out[order[: m if passing.all() else int(np.argmin(passing))]] = True
    return out


@pytest.mark.parametrize("method", ["fdr_bh", "holm"])
def test_effective_alpha_is_the_threshold_the_correction_used(method):
    """Brute force: each test is declared with a raw p just below its effective alpha and not
    just above it, the family's other p-values unchanged."""
    rng = np.random.default_rng(3)
    for _ in range(60):
        m = rng.integers(1, 25)
        p = np.where(rng.random(m) < 0.4, rng.uniform(0, 0.004, m), rng.uniform(0, 1, m))
        if m % 5 == 0:  # the reference agrees with the correction the stage runs
            assert (_declared(p, method) == (inf.adjust(p, method) < 0.05)).all()
        thresholds = inf.effective_alpha(p, 0.05, method)
        for i, t in enumerate(thresholds):
            below, above = p.copy(), p.copy()
            below[i], above[i] = t * (1 - 1e-9), t * (1 + 1e-6)
            assert _declared(below, method)[i] and not _declared(above, method)[i]
    # nothing declared: BH's threshold for one more is alpha / m, Holm's alpha / m too
    p = np.array([0.5, 0.9, np.nan])
    assert inf.effective_alpha(p, 0.05, "fdr_bh")[:2].tolist() == [0.025, 0.025]
    assert np.isnan(inf.effective_alpha(p, 0.05, "holm")[2])
    # one declared (0.01 <= 0.05/3): the others would need 0.05/2
    assert inf.effective_alpha(np.array([0.01, 0.9, 0.9]), 0.05, "holm")[1] == 0.025


def test_clustered_rate_korn_graubard():
    # independent-looking splits: deff from the cluster-robust variance, then the df adjustment
    k, n = np.array([1, 0, 2, 1, 0, 1]), np.full(6, 20)
    r = inf.clustered_rate(k, n)
    rate = 5 / 120
    var_cluster = 6 / 5 * np.sum((k - rate * n) ** 2) / 120**2
    deff = max(1, var_cluster / (rate * (1 - rate) / 120))
    n_eff = 120 / deff * (stats.t.ppf(0.975, 119) / stats.t.ppf(0.975, 5)) ** 2
    assert (r.tests, r.rejections, r.rate) == (120, 5, pytest.approx(rate))
    assert r.design_effect == pytest.approx(deff) and r.effective_n == pytest.approx(n_eff)
    assert r.ci_low == pytest.approx(stats.beta.ppf(0.025, rate * n_eff, n_eff - rate * n_eff + 1))
    assert r.ci_high == pytest.approx(stats.beta.ppf(0.975, rate * n_eff + 1, n_eff - rate * n_eff))
    # splits that reject all or nothing: the tests are one trial per split, not 20
    assert inf.clustered_rate(np.array([20, 0, 0, 0]), np.full(4, 20)).design_effect == 20
    # no rejection at all: the worst case, every split one trial
    zero = inf.clustered_rate(np.zeros(6), np.full(6, 20))
    assert zero.ci_low == 0 and zero.effective_n < 6 and zero.ci_high > 0.4


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


def test_mde_where_statsmodels_falls_back_to_its_second_solver():
    """At small alpha statsmodels' solve_power returns a 1-element array (seen on the default
    profile's A/B run: 89 vs 87 samples at alpha 6.4e-4); the MDE is still one number."""
    from statsmodels.stats.power import TTestIndPower

    d = inf.mde(89, 87, 0.000641025641025641, 0.8)
    assert isinstance(d, float) and 0.6 < d < 0.7
    power = TTestIndPower().power(
        effect_size=d, nobs1=89, ratio=87 / 89, alpha=0.000641025641025641
    )
    assert power == pytest.approx(0.8, abs=1e-3)


@pytest.mark.parametrize(("n_x", "n_y"), [(181, 184), (187, 185)])
def test_mde_is_positive_where_the_solver_finds_the_negative_root(n_x, n_y):
    """The default profile's secondary table printed MDE d = -0.443 (distinct_1 at alpha
    7.8e-4): statsmodels' fallback solver returned the negative root."""
    from statsmodels.stats.power import TTestIndPower

    d = inf.mde(n_x, n_y, 0.00078125, 0.8)
    assert d > 0
    assert TTestIndPower().power(d, n_x, 0.00078125, ratio=n_y / n_x) == pytest.approx(
        0.8, abs=1e-3
    )


def test_bca_interval_falls_back_to_percentiles_where_bca_is_undefined(recwarn):
    """Four TVDs of 1 up to the last bit (seen on the default profile): scipy's BCa gives NaN
    and warns; the interval is the resamples' percentiles, finite, and nothing is printed."""
    from entropy_lab.stats.inference import bca_interval

    x = np.array([1.0, 1.0, 1.0, np.nextafter(1.0, 0.0)])
    scipy_ci = stats.bootstrap((x,), np.mean, n_resamples=500, rng=np.random.default_rng(0))
    assert np.isnan(scipy_ci.confidence_interval.low)
    recwarn.clear()
    lo, hi = bca_interval((x,), np.mean, 500, 0.05, np.random.default_rng(0))
    assert np.nextafter(1.0, 0.0) <= lo <= hi <= 1.0
    assert not recwarn.list
    y = np.random.default_rng(1).normal(size=40)  # where BCa is defined, it is scipy's BCa
    ref = stats.bootstrap((y,), np.mean, n_resamples=500, rng=np.random.default_rng(2))
    assert bca_interval((y,), np.mean, 500, 0.05, np.random.default_rng(2)) == tuple(
        ref.confidence_interval
    )
