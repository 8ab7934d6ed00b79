"""Distances and goodness-of-fit between a target distribution and a model's: pure functions.

Two views of a model's answer distribution for one prompt: the exact one (teacher forcing
over the support, `training.scoring`) and the empirical one (N sampled answers). Sampled
answers that are not a support element followed by end-of-sequence fall in one `invalid`
cell, whose exact probability is 1 - (mass on the support); so the two views can be
compared cell by cell, and should agree within sampling error. Distances over the full
output space (`full_space`) count that invalid cell: what a user sampling the model gets.
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def full_space(p: np.ndarray, q: np.ndarray, mass: float) -> tuple[np.ndarray, np.ndarray]:
    """Target and model over the full output space: the support, then one `invalid` cell.
    `q` is the model's distribution renormalised over the support, `mass` what it puts there."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    return np.r_[p, 0.0], np.r_[q * mass, max(0.0, 1.0 - mass)]


def tvd(p: np.ndarray, q: np.ndarray) -> float:
    return float(0.5 * np.abs(np.asarray(p) - np.asarray(q)).sum())


def kl(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p || q) in nats; terms with p = 0 omitted, inf where q = 0 < p."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    keep = p > 0
    with np.errstate(divide="ignore"):
        return float(np.sum(p[keep] * (np.log(p[keep]) - np.log(q[keep]))))


def entropy(p: np.ndarray) -> float:
    p = np.asarray(p, float)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def counts(answers: list[str | None], support: list[str]) -> tuple[np.ndarray, int]:
    """(count per support element, count of invalid answers)."""
    index = {a: i for i, a in enumerate(support)}
    c = np.zeros(len(support), dtype=np.int64)
    invalid = 0
    for a in answers:
        if a in index:
            c[index[a]] += 1
        else:
            invalid += 1
    return c, invalid


def gof_p(observed: np.ndarray, probs: np.ndarray, test: str = "pearson") -> float:
    """Goodness of fit of counts to probabilities: Pearson chi-square or the G-test
    (`test="log-likelihood"`). An observation in a zero-probability cell gives p = 0."""
    cells = positive_cells(observed, probs)
    if isinstance(cells, float):
        return cells
    observed, p = cells
    expected = p * observed.sum()
    return float(stats.power_divergence(observed, expected, lambda_=test).pvalue)


def positive_cells(
    observed: np.ndarray, probs: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | float:
    """(counts, normalised probabilities) over the cells the target can produce; or the p-value
    when there is nothing to test: 0 for an observation in a zero-probability cell, 1 when
    fewer than two cells remain."""
    observed, probs = np.asarray(observed, float), np.asarray(probs, float)
    if observed[probs <= 0].sum() > 0:
        return 0.0
    keep = probs > 0
    if keep.sum() < 2:
        return 1.0
    return observed[keep], probs[keep] / probs[keep].sum()


def ks_discrete(
    observed: np.ndarray,
    values: np.ndarray,
    probs: np.ndarray,
    n_sim: int,
    rng: np.random.Generator,
) -> tuple[float, float]:
    """KS distance between the empirical and target CDFs of an ordinal answer, with a Monte
    Carlo p-value from samples of the same size drawn from the target (scipy's KS p-values
    assume a continuous CDF, which is conservative for discrete answers)."""
    order = np.argsort(values)
    probs = np.asarray(probs, float)[order] / np.sum(probs)
    observed = np.asarray(observed, float)[order]
    n = int(observed.sum())
    if n == 0:
        return float("nan"), float("nan")
    cdf = np.cumsum(probs)
    d = float(np.abs(np.cumsum(observed) / n - cdf).max())
    sims = rng.multinomial(n, probs, size=n_sim)
    d_sim = np.abs(np.cumsum(sims, axis=1) / n - cdf).max(axis=1)
    return d, float((1 + np.sum(d_sim >= d - 1e-12)) / (1 + n_sim))


def chi_square_mc_p(
    observed: np.ndarray, probs: np.ndarray, n_sim: int, rng: np.random.Generator
) -> float:
    """Pearson chi-square with a Monte Carlo p-value: the statistic of `n_sim` samples of the
    same size drawn from `probs`, p = (1 + #{T* >= T}) / (1 + n_sim). Exact in level for any
    expected counts (where the chi-square approximation is not). An observation in a
    zero-probability cell gives p = 0."""
    cells = positive_cells(observed, probs)
    if isinstance(cells, float):
        return cells
    observed, p = cells
    n = int(observed.sum())
    expected = n * p
    t = np.sum((observed - expected) ** 2 / expected)
    sims = rng.multinomial(n, p, size=n_sim)
    t_sim = np.sum((sims - expected) ** 2 / expected, axis=1)
    return float((1 + np.sum(t_sim >= t - 1e-9 * max(1.0, t))) / (1 + n_sim))


def full_space_p(valid_p: float, invalid: int) -> float:
    """The goodness-of-fit p-value over the whole output space, from the test of the valid
    answers: an invalid answer falls in a cell the target gives probability 0, so one of them
    rejects (p = 0) and a model cannot pass by answering validly less often; with none, the
    two tests are the same test. No answer at all to test is a failure too."""
    if invalid > 0 or not np.isfinite(valid_p):
        return 0.0
    return float(valid_p)


MIN_EXPECTED = 5  # the usual rule for the chi-square approximation


def gof(
    observed: np.ndarray,
    probs: np.ndarray,
    values: np.ndarray | None,
    n_sim: int,
    rng: np.random.Generator,
) -> tuple[str, float]:
    """(test, p) of observed counts against a target: KS with a Monte Carlo p for ordinal answers
    (`values` given); else Pearson chi-square, asymptotic where every expected count is at least
    5 and Monte Carlo otherwise. NaN when there is nothing to test."""
    observed, probs = np.asarray(observed, float), np.asarray(probs, float)
    n = observed.sum()
    if n == 0:
        return "none", float("nan")
    if values is not None:
        return "ks", ks_discrete(observed, values, probs, n_sim, rng)[1]
    expected = probs[probs > 0] / probs.sum() * n
    if expected.min() >= MIN_EXPECTED:
        return "chi2", gof_p(observed, probs)
    return "chi2_mc", chi_square_mc_p(observed, probs, n_sim, rng)


def marginal_gof(
    counts: list[np.ndarray], probs: list[np.ndarray], n_sim: int, rng: np.random.Generator
) -> float:
    """One p-value for per-position counts against per-position marginals: each position's
    chi-square (`gof`), Bonferroni over positions (valid for any dependence between them)."""
    ps = [gof(c, p, None, n_sim, rng)[1] for c, p in zip(counts, probs, strict=True)]
    ps = [p for p in ps if np.isfinite(p)]
    return min(1.0, len(ps) * min(ps)) if ps else float("nan")
