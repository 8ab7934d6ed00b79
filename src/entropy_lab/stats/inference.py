"""Two-arm inference for one metric: pure functions over arrays, no model anywhere.

Library calls where a well-kept one exists (scipy's BCa bootstrap and beta quantiles,
statsmodels' TOST, mixed model, power and multiple-testing code). Written here: the permutation
test stratified by prompt, which scipy's `permutation_test` does not offer (labels are shuffled
within each prompt, so a prompt's difficulty never masquerades as a condition effect); the
Korn-Graubard interval for a rate of correlated tests; and the stratified energy-distance
test between two sets of texts (stats/distribution.py).
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats


def keyed_rng(*key) -> np.random.Generator:
    """A generator keyed by a draw's identity, so results do not depend on the order of tests."""
    digest = hashlib.sha256("/".join(map(str, key)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def pooled_sd(x: np.ndarray, y: np.ndarray) -> float:
    nx, ny = len(x), len(y)
    var = ((nx - 1) * np.var(x, ddof=1) + (ny - 1) * np.var(y, ddof=1)) / (nx + ny - 2)
    return float(np.sqrt(var))


def bootstrap_ci(
    x: np.ndarray, y: np.ndarray, n_resamples: int, alpha: float, rng: np.random.Generator
) -> tuple[float, float]:
    """BCa bootstrap CI of mean(x) - mean(y), arms resampled independently.

    NaN when either arm is constant: resampling it gives no spread, so the interval would
    treat that arm's mean as known (the failure Welch's TOST has, see `tost_p`).
    """
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan"), float("nan")

    def mean_diff(a, b, axis):
        return a.mean(axis=axis) - b.mean(axis=axis)

    return bca_interval((x, y), mean_diff, n_resamples, alpha, rng)


def bca_interval(
    data: tuple[np.ndarray, ...], statistic, n_resamples: int, alpha: float, rng
) -> tuple[float, float]:
    """scipy's BCa bootstrap interval; where BCa is undefined (a degenerate jackknife, as on
    nearly constant data) the percentile interval of the same resamples, so a CI is never NaN
    and scipy's warning about it, handled here, is not printed."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        res = stats.bootstrap(
            data,
            statistic,
            n_resamples=n_resamples,
            confidence_level=1 - alpha,
            method="BCa",
            rng=rng,
        )
    lo, hi = res.confidence_interval
    if not (np.isfinite(lo) and np.isfinite(hi)):
        lo, hi = np.quantile(res.bootstrap_distribution, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def stratified_permutation_p(
    x: np.ndarray,
    y: np.ndarray,
    strata_x: np.ndarray,
    strata_y: np.ndarray,
    n_permutations: int,
    rng: np.random.Generator,
) -> float:
    """Two-sided p-value of mean(x) - mean(y), labels permuted within each stratum.

    p = (1 + #{|T*| >= |T|}) / (1 + B), so it is never 0 (Phipson & Smyth 2010).
    """
    values = np.concatenate([x, y])
    strata = np.concatenate([strata_x, strata_y])
    treated = np.concatenate([np.ones(len(x), bool), np.zeros(len(y), bool)])
    order = np.argsort(strata, kind="stable")
    values, strata, treated = values[order], strata[order], treated[order]
    blocks = []
    for s in np.unique(strata):
        labels = treated[strata == s]
        blocks.append(rng.permuted(np.tile(labels, (n_permutations, 1)), axis=1))
    perms = np.concatenate(blocks, axis=1)  # (B, N), same stratum order as `values`
    nx, ny = len(x), len(y)
    total = values.sum()
    t_perm = perms @ values / nx - (total - perms @ values) / ny
    t_obs = x.mean() - y.mean()
    extreme = np.abs(t_perm) >= abs(t_obs) - 1e-12 * max(1.0, abs(t_obs))
    return float((1 + extreme.sum()) / (1 + n_permutations))


def tost_p(x: np.ndarray, y: np.ndarray, margin: float) -> float:
    """TOST p-value: small p shows |mean(x) - mean(y)| < margin (statsmodels `ttost_ind`).

    The larger of the Welch and the pooled-variance (Student) p-values: Welch alone treats a
    small arm whose sample variance is too low (all zeros in 10 samples) as nearly exact and
    declares equivalence far above alpha; pooled alone does the same when the small arm is the
    more variable one. Taking both keeps the size in either case (tests/test_stats_inference.py).
    NaN when either arm has no variance: the SD-scaled margin then says nothing about it.
    """
    from statsmodels.stats.weightstats import ttost_ind

    if margin <= 0 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return max(
        float(ttost_ind(x, y, -margin, margin, usevar=usevar)[0])
        for usevar in ("unequal", "pooled")
    )


def equivalence_reachable(x: np.ndarray, y: np.ndarray, margin: float, alpha: float) -> bool:
    """Whether TOST could show equivalence at this n and spread: the p-value a zero observed
    difference would get (same arms, x shifted onto y's mean) is below alpha."""
    p = tost_p(x - x.mean() + y.mean(), y, margin)
    return bool(np.isfinite(p) and p < alpha)


MIXED_STATUSES = ("ok", "boundary", "singular", "failed")


@dataclass(frozen=True)
class MixedFit:
    coef: float
    se: float
    p: float
    status: str  # ok | boundary (prompt variance estimated at 0) | singular | failed
    warnings: str = ""  # what statsmodels said, when the status is not ok


BOUNDARY = 1e-6  # prompt variance, in units of the response's variance, below which it is 0


def mixed_effects(
    x: np.ndarray, y: np.ndarray, strata_x: np.ndarray, strata_y: np.ndarray
) -> MixedFit:
    """value ~ treated + (1 | prompt), REML (statsmodels MixedLM): the condition effect with
    prompt as a random intercept, and the status of the fit.

    The response is standardised first and the optimiser is derivative-free (Nelder-Mead, then
    Powell): statsmodels' default gradient optimisers raise LinAlgError or stop unconverged on
    ordinary data whenever the prompt variance is near zero. Statuses: `boundary` when the
    prompt variance is estimated at zero (the fit is then OLS, its p-value still valid),
    `singular` when the fixed effect's standard error is not finite, `failed` when the fit
    raised or did not converge (p is NaN for both). statsmodels' warnings are recorded only
    here, where the status carries them.
    """
    import pandas as pd
    import statsmodels.formula.api as smf

    values = np.concatenate([x, y])
    scale = values.std()
    if scale == 0:
        return MixedFit(0.0, 0.0, float("nan"), "failed", "no variation")
    df = pd.DataFrame(
        {
            "value": (values - values.mean()) / scale,
            "treated": np.r_[np.ones(len(x)), np.zeros(len(y))],
            "prompt": np.concatenate([strata_x, strata_y]),
        }
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = smf.mixedlm("value ~ treated", df, groups=df["prompt"]).fit(
                reml=True, method=["nm", "powell"]
            )
        except (np.linalg.LinAlgError, ValueError) as exc:
            fit, error = None, f"{type(exc).__name__}: {exc}"
    said = "; ".join(dict.fromkeys(str(w.message).splitlines()[0] for w in caught))
    nan = float("nan")
    if fit is None:
        return MixedFit(nan, nan, nan, "failed", "; ".join(filter(None, [error, said])))
    coef, se, p = (float(v["treated"]) for v in (fit.params, fit.bse, fit.pvalues))
    coef, se = coef * scale, se * scale
    if not fit.converged:
        return MixedFit(coef, se, nan, "failed", said or "not converged")
    if not (np.isfinite(se) and se > 0 and np.isfinite(p)):
        return MixedFit(coef, nan, nan, "singular", said)
    status = "boundary" if float(fit.cov_re.iloc[0, 0]) < BOUNDARY else "ok"
    return MixedFit(coef, se, p, status, said if status != "ok" else "")


def mde(n_x: int, n_y: int, alpha: float, power: float) -> float:
    """Minimal detectable standardized effect (Cohen's d) of a two-sided two-sample t-test."""
    from statsmodels.stats.power import TTestIndPower

    d = TTestIndPower().solve_power(nobs1=n_x, ratio=n_y / n_x, alpha=alpha, power=power)
    # a 1-element array when statsmodels falls back to its 2nd solver, which may find the
    # negative root of the two-sided power function: the MDE is its absolute value
    return abs(float(np.ravel(d)[0]))


def adjust(pvalues: np.ndarray, method: str) -> np.ndarray:
    """Family-wise (Holm) or false-discovery-rate (BH) adjusted p-values; NaNs stay NaN."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method=method)[1]
    return out


def effective_alpha(pvalues: np.ndarray, alpha: float, method: str) -> np.ndarray:
    """Per test, the raw p-value at or below which the correction declares it, the family's
    other p-values held as observed: the alpha its verdict actually used (NaN for NaN p).

    BH (step-up) declares test i at p_i = alpha k/m for the largest k such that at least k - 1
    other tests have p <= alpha k/m. Holm (step-down) declares it at alpha / (m - L), where L is
    how many of the other tests, in order, pass their own Holm thresholds alpha / (m - s + 1).
    For a test not declared these are alpha (R + 1)/m or more for BH and alpha / (m - R) for
    Holm, R the number declared.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = len(ok)
    if m == 0:
        return out
    q = p[ok]
    if method == "fdr_bh":
        cut = alpha * np.arange(1, m + 1) / m  # alpha k / m for k = 1..m
        below = q[:, None] <= cut[None, :]  # test i counts at level k
        others = below.sum(axis=0)[None, :] - below  # tests j != i with p_j <= alpha k / m
        feasible = others >= np.arange(m)[None, :]  # at least k - 1 of them
        out[ok] = cut[m - 1 - np.argmax(feasible[:, ::-1], axis=1)]
    elif method == "holm":
        order = np.argsort(q, kind="stable")
        for rank, i in enumerate(order):
            rest = np.delete(q[order], rank)  # the others, sorted
            passing = rest <= alpha / (m - np.arange(len(rest)))
            prefix = len(rest) if passing.all() else int(np.argmin(passing))
            out[ok[i]] = alpha / (m - prefix)
    else:
        raise ValueError(method)
    return out


def binomial_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson interval for a rate of k in n."""
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
    return float(ci.low), float(ci.high)


@dataclass(frozen=True)
class ClusteredRate:
    tests: int
    rejections: int
    rate: float
    ci_low: float
    ci_high: float
    design_effect: float
    effective_n: float


def clustered_rate(k: np.ndarray, n: np.ndarray, confidence: float = 0.95) -> ClusteredRate:
    """A rate of k_g of n_g tests in each of G independent clusters (A/A splits), with the
    Korn-Graubard (1998) interval: Clopper-Pearson at the effective sample size n / deff,
    df-adjusted by (t_{n-1} / t_{G-1})^2, where deff is the cluster-robust variance of the rate
    over its binomial variance, between 1 and the mean split size. Tests within a split share
    samples and are correlated, so they are not n independent trials.

    With no rejection at all (or no acceptance) the correlation cannot be estimated and the
    worst case is assumed: every test of a split agrees, n_eff = G.
    """
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    g, total, hits = len(k), n.sum(), k.sum()
    if g == 0 or total == 0:
        nan = float("nan")
        return ClusteredRate(0, 0, nan, nan, nan, nan, nan)
    rate = hits / total
    if 0 < hits < total and g > 1:
        var_cluster = g / (g - 1) * np.sum((k - rate * n) ** 2) / total**2
        # between 1 (independent tests) and the mean split size (a split is one trial)
        deff = min(max(1.0, var_cluster / (rate * (1 - rate) / total)), total / g)
    else:
        deff = total / g
    n_eff = total / deff
    if g > 1 and total > 1:
        q = (1 + confidence) / 2
        n_eff = min(total, n_eff * (stats.t.ppf(q, total - 1) / stats.t.ppf(q, g - 1)) ** 2)
    k_eff, a = rate * n_eff, 1 - confidence
    lo = float(stats.beta.ppf(a / 2, k_eff, n_eff - k_eff + 1)) if k_eff > 0 else 0.0
    hi = float(stats.beta.ppf(1 - a / 2, k_eff + 1, n_eff - k_eff)) if k_eff < n_eff else 1.0
    return ClusteredRate(int(total), int(hits), float(rate), lo, hi, float(deff), float(n_eff))


VERDICTS = ("difference", "trivial difference", "equivalent", "inconclusive", "no variation")


def verdict(p_diff_adj: float, p_equiv_adj: float, alpha: float) -> str:
    """What one metric's comparison shows after correction. *Trivial difference*: different,
    and the difference is within the equivalence margin."""
    different = np.isfinite(p_diff_adj) and p_diff_adj < alpha
    equivalent = np.isfinite(p_equiv_adj) and p_equiv_adj < alpha
    if different:
        return "trivial difference" if equivalent else "difference"
    if equivalent:
        return "equivalent"
    if not np.isfinite(p_diff_adj):
        return "no variation"
    return "inconclusive"
