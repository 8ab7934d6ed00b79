"""Two-arm inference for one metric: pure functions over arrays, no model anywhere.

Library calls where a well-kept one exists (scipy's BCa bootstrap, statsmodels' TOST, mixed
model, power and multiple-testing code). The one piece written here is the permutation test
stratified by prompt, which scipy's `permutation_test` does not offer: labels are shuffled
within each prompt, so a prompt's difficulty never masquerades as a condition effect.
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
    """BCa bootstrap CI of mean(x) - mean(y), arms resampled independently."""
    diff = float(x.mean() - y.mean())
    if np.ptp(x) == 0 and np.ptp(y) == 0:
        return diff, diff  # nothing varies: the interval is the point

    def mean_diff(a, b, axis):
        return a.mean(axis=axis) - b.mean(axis=axis)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        res = stats.bootstrap(
            (x, y),
            mean_diff,
            n_resamples=n_resamples,
            confidence_level=1 - alpha,
            method="BCa",
            rng=rng,
        )
    lo, hi = res.confidence_interval
    if not (np.isfinite(lo) and np.isfinite(hi)):  # BCa undefined (e.g. one arm constant)
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
    """Welch TOST: small p shows |mean(x) - mean(y)| < margin (statsmodels `ttost_ind`)."""
    from statsmodels.stats.weightstats import ttost_ind

    if margin <= 0 or (np.ptp(x) == 0 and np.ptp(y) == 0):
        return float("nan")
    return float(ttost_ind(x, y, -margin, margin, usevar="unequal")[0])


@dataclass(frozen=True)
class MixedFit:
    coef: float
    se: float
    p: float
    converged: bool


def mixed_effects(
    x: np.ndarray, y: np.ndarray, strata_x: np.ndarray, strata_y: np.ndarray
) -> MixedFit:
    """value ~ treated + (1 | prompt), REML (statsmodels MixedLM): the condition effect with
    prompt as a random intercept."""
    import pandas as pd
    import statsmodels.formula.api as smf
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    df = pd.DataFrame(
        {
            "value": np.concatenate([x, y]),
            "treated": np.r_[np.ones(len(x)), np.zeros(len(y))],
            "prompt": np.concatenate([strata_x, strata_y]),
        }
    )
    if df["value"].std() == 0:
        return MixedFit(0.0, 0.0, float("nan"), False)
    with warnings.catch_warnings():
        # a prompt variance estimated at zero is a valid (boundary) fit, not a failure
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            fit = smf.mixedlm("value ~ treated", df, groups=df["prompt"]).fit(reml=True)
        except (np.linalg.LinAlgError, ValueError):
            return MixedFit(float("nan"), float("nan"), float("nan"), False)
    converged = bool(fit.converged)
    return MixedFit(
        float(fit.params["treated"]),
        float(fit.bse["treated"]),
        float(fit.pvalues["treated"]),
        converged,
    )


def mde(n_x: int, n_y: int, alpha: float, power: float) -> float:
    """Minimal detectable standardized effect (Cohen's d) of a two-sided two-sample t-test."""
    from statsmodels.stats.power import TTestIndPower

    return float(TTestIndPower().solve_power(nobs1=n_x, ratio=n_y / n_x, alpha=alpha, power=power))


def adjust(pvalues: np.ndarray, method: str) -> np.ndarray:
    """Family-wise (Holm) or false-discovery-rate (BH) adjusted p-values; NaNs stay NaN."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method=method)[1]
    return out


def binomial_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson interval for a rate of k in n."""
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
    return float(ci.low), float(ci.high)


def verdict(p_diff_adj: float, p_equiv_adj: float, alpha: float) -> str:
    """What one metric's comparison shows after correction."""
    if np.isfinite(p_diff_adj) and p_diff_adj < alpha:
        return "difference"
    if np.isfinite(p_equiv_adj) and p_equiv_adj < alpha:
        return "equivalent"
    if not np.isfinite(p_diff_adj):
        return "no variation"
    return "inconclusive"
