"""The seeding study's primary analysis: is pool seeding equivalent to PRNG seeding?

Declared in params (`ab.analysis.primary`, with the commit that declared it): a few endpoints, the two primary
comparisons (pool vs PRNG seeds, pool vs PRNG per-token streams) and an equivalence margin in
within-prompt SDs. For each comparison, model and length:

- each endpoint's difference is estimated within prompt (every arm sees the same prompts: the
  prompt is a stratum, and its effect cancels), as the precision-weighted mean over prompts of
  the arms' mean difference, with a t interval from the pooled within-prompt variance;
- each endpoint gets a TOST at alpha against the margin, in within-prompt SDs (how much two
  texts of one prompt differ; estimated with hundreds of degrees of freedom, so the margin is
  nearly fixed: a margin in SDs that include the prompts' spread, estimated from ten prompts,
  would move with it and inflate the test's size), and a two-sided test;
- the primary claim, "equivalent on every endpoint", is an intersection-union test: it holds
  when every endpoint's TOST rejects at alpha, with no multiplicity adjustment (Berger & Hsu
  1996, Statistical Science 11(4)); its p-value is the largest TOST p-value. A claim that
  some endpoint differs is the union of the two-sided tests, Holm-adjusted over the endpoints.

The power plan, in the margin's unit (within-prompt SDs), says how many replicates per prompt
and arm give the wanted power for the claim; the prompt-by-arm interaction each endpoint
reports is what a claim about other prompts than the declared ones would add.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from entropy_lab.stats.inference import pooled_sd


@dataclass(frozen=True)
class Endpoint:
    """One endpoint of one comparison, within prompt."""

    n_treatment: int
    n_control: int
    prompts: int
    sd: float  # pooled SD of the two arms, ignoring prompts (the secondary analysis' unit)
    sd_within: float  # pooled within-prompt SD: the margin's unit
    diff: float  # precision-weighted mean over prompts of the difference (treatment - control)
    se: float  # from each prompt's and arm's own variance (Welch)
    df: float  # Satterthwaite
    ci_low: float  # 95%, for a difference
    ci_high: float
    tost_low: float  # 90% (1 - 2 alpha): inside the margin <=> TOST rejects
    tost_high: float
    margin: float  # in the endpoint's units
    p_tost: float
    p_diff: float
    design_effect: float  # Var(within-prompt estimate) / Var(two-sample estimate ignoring prompts)
    interaction_sd: float  # prompt-by-arm interaction (DerSimonian-Laird, >= 0): a diagnostic
    varying: int  # texts (or groups) whose value is not their prompt and arm's most common one
    group_size: int = 1  # texts per value: K for a group endpoint (only complete groups count)

    @property
    def d(self) -> float:
        """The difference in within-prompt SDs (the margin's unit)."""
        return self.diff / self.sd_within if self.sd_within > 0 else float("nan")

    @property
    def margin_se(self) -> float:
        """The margin in units of the estimate's SE: what the TOST's power turns on."""
        return self.margin / self.se if self.se > 0 else float("inf")

    def informative(self, min_varying: int) -> bool:
        """Whether the endpoint carries information: at least `min_varying` values differ from
        their cell's most common one. A constant endpoint's TOST would pass for free, and a
        t interval on one or two odd values is no interval at all."""
        return self.se > 0 and self.varying >= min_varying

    def as_dict(self) -> dict:
        return asdict(self) | {"d": self.d}


def within_prompt(
    x: np.ndarray,
    y: np.ndarray,
    sx: np.ndarray,
    sy: np.ndarray,
    margin_sd: float,
    alpha: float,
    group_size: int = 1,
) -> Endpoint:
    """Treatment values `x` with prompts `sx`, control `y` with `sy`: the within-prompt estimate
    and its tests, over the prompts both arms have.

    Each prompt's difference in means is weighted by its precision, n_t n_c / (n_t + n_c), as
    a regression with prompt as a fixed effect weights it (equal weights where the arms are
    balanced). The prompts are the declared ones, so they are fixed strata; the SE takes each
    prompt's and arm's own variance (Welch: right when an arm is noisier and the arms are
    unbalanced), with Satterthwaite degrees of freedom; a cell with one value borrows the
    pooled within-prompt variance. The prompt-by-arm interaction (DerSimonian-Laird) is
    reported, not used: it is what generalising to other prompts would add."""
    x, y, sx, sy = map(np.asarray, (x, y, sx, sy))
    prompts = sorted(set(sx.tolist()) & set(sy.tolist()))
    cells = [(x[sx == p], y[sy == p]) for p in prompts]
    ss = sum(((a - a.mean()) ** 2).sum() + ((b - b.mean()) ** 2).sum() for a, b in cells)
    dof = sum(len(a) + len(b) - 2 for a, b in cells)
    var_within = ss / dof if dof > 0 else float("nan")
    diffs = np.array([a.mean() - b.mean() for a, b in cells])
    w = np.array([len(a) * len(b) / (len(a) + len(b)) for a, b in cells])
    diff = float(np.dot(w, diffs) / w.sum())
    parts = [  # each prompt's and arm's term of the estimate's variance
        (wi / w.sum()) ** 2 * np.array([_var(a, var_within) / len(a), _var(b, var_within) / len(b)])
        for wi, (a, b) in zip(w, cells, strict=True)
    ]
    variance = float(sum(p.sum() for p in parts))
    se = math.sqrt(variance)
    df = _satterthwaite(parts, cells, variance)
    margin = margin_sd * math.sqrt(var_within)
    t = stats.t(df) if df > 0 else None
    if t is None:
        p_tost = p_diff = lo = hi = tlo = thi = float("nan")
    elif se == 0:  # no variation within any prompt: no test (`informative` says so)
        p_tost = p_diff = float("nan")
        lo = hi = tlo = thi = diff
    else:
        p_tost = float(max(t.sf((diff + margin) / se), t.cdf((diff - margin) / se)))
        p_diff = float(2 * t.sf(abs(diff) / se))
        lo, hi = diff - t.ppf(1 - alpha / 2) * se, diff + t.ppf(1 - alpha / 2) * se
        tlo, thi = diff - t.ppf(1 - alpha) * se, diff + t.ppf(1 - alpha) * se
    naive = (x.var(ddof=1) / len(x) + y.var(ddof=1) / len(y)) if min(len(x), len(y)) > 1 else 0.0
    return Endpoint(
        n_treatment=len(x), n_control=len(y), prompts=len(prompts), sd=pooled_sd(x, y),
        sd_within=float(math.sqrt(var_within)), diff=diff, se=float(se), df=float(df),
        ci_low=float(lo), ci_high=float(hi), tost_low=float(tlo), tost_high=float(thi),
        margin=float(margin), p_tost=p_tost, p_diff=p_diff,
        design_effect=float(se**2 / naive) if naive > 0 else float("nan"),
        interaction_sd=interaction_sd(diffs, w, var_within),
        varying=sum(off_mode(a) + off_mode(b) for a, b in cells), group_size=group_size,
    )  # fmt: skip


def off_mode(values: np.ndarray) -> int:
    """How many values differ from the most common one."""
    if len(values) == 0:
        return 0
    _, counts = np.unique(values, return_counts=True)
    return int(len(values) - counts.max())


def _var(values: np.ndarray, pooled: float) -> float:
    return float(values.var(ddof=1)) if len(values) > 1 else pooled


def _satterthwaite(parts: list[np.ndarray], cells: list, variance: float) -> float:
    """Welch-Satterthwaite degrees of freedom of a sum of independent variance terms, each
    estimated on n - 1 degrees of freedom (a one-value cell borrows the pooled variance, whose
    degrees of freedom are many, and adds nothing here)."""
    denom = 0.0
    for part, (a, b) in zip(parts, cells, strict=True):
        for term, n in zip(part, (len(a), len(b)), strict=True):
            if n > 1:
                denom += term**2 / (n - 1)
    return variance**2 / denom if denom > 0 else float(sum(len(a) + len(b) - 2 for a, b in cells))


def interaction_sd(diffs: np.ndarray, weights: np.ndarray, var_within: float) -> float:
    """The SD of the prompts' true differences around the common one (DerSimonian-Laird
    moment estimate, 0 where the spread is what within-prompt noise explains)."""
    if len(diffs) < 2 or not var_within > 0:
        return 0.0
    W = weights / var_within
    mean = np.dot(W, diffs) / W.sum()
    q = float(np.dot(W, (diffs - mean) ** 2))
    scale = W.sum() - (W**2).sum() / W.sum()
    return float(math.sqrt(max(0.0, (q - (len(diffs) - 1)) / scale)))


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN kept)."""
    p = np.asarray(p, float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    order = ok[np.argsort(p[ok])]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p[i]))
        out[i] = running
    return out


def primary_verdict(endpoints: dict[str, Endpoint], alpha: float, min_varying: int) -> dict:
    """The primary claim for one comparison: equivalent on every endpoint that carries
    information (intersection-union, each TOST at alpha), or which endpoints differ (Holm over
    those endpoints), or inconclusive. An endpoint with no variation (fewer than `min_varying`
    values off their cell's mode) has no test: it is named, and counted out of the claim."""
    names = [n for n, e in endpoints.items() if e.informative(min_varying)]
    flat = [n for n in endpoints if n not in names]
    p_tost = np.array([endpoints[n].p_tost for n in names])
    p_diff = holm(np.array([endpoints[n].p_diff for n in names]))
    p_iut = float(np.max(p_tost)) if names and np.isfinite(p_tost).all() else float("nan")
    differ = [n for n, p in zip(names, p_diff, strict=True) if p < alpha]
    if np.isfinite(p_iut) and p_iut < alpha:
        verdict = "equivalent"
    elif differ:
        verdict = "difference"
    else:
        verdict = "inconclusive"
    return {
        "verdict": verdict,
        "p_iut": p_iut,
        "differ": differ,
        "not_shown_equivalent": [n for n, p in zip(names, p_tost, strict=True) if not p < alpha],
        "no_variation": flat,
        "informative": len(names),
        "p_diff_holm": dict(zip(names, map(float, p_diff), strict=True)),
    }


def tost_power(margin_se: float, alpha: float) -> float:
    """Power of TOST at a true difference of 0, with the margin in units of the estimate's SE
    (normal approximation)."""
    return max(0.0, 2 * stats.norm.cdf(margin_se - stats.norm.ppf(1 - alpha)) - 1)


def scale(
    e: Endpoint, replicates: int, prompts: int, base_replicates: int, base_prompts: int
) -> float:
    """How many times this run's values an endpoint has at another design. A group endpoint
    counts complete groups only: floor(r / K) per prompt and arm."""
    k = e.group_size
    return (prompts * (replicates // k)) / (base_prompts * (base_replicates // k))


def iut_power(endpoints: list[Endpoint], alpha: float, scales: list[float] | None = None) -> float:
    """A lower bound on the power of the intersection-union claim at no true difference
    (Bonferroni: 1 - the sum of each endpoint's miss probability), whatever their correlation,
    from each endpoint's own SE (so its missing values count) with `scales[i]` times its
    values."""
    scales = scales or [1.0] * len(endpoints)
    miss = sum(1 - tost_power(e.margin_se * math.sqrt(s), alpha)
               for e, s in zip(endpoints, scales, strict=True))  # fmt: skip
    return max(0.0, 1 - miss)


def simulated_power(
    endpoints: list[Endpoint],
    corr: np.ndarray,
    alpha: float,
    rng: np.random.Generator,
    scales: list[float] | None = None,
    sims: int = 20_000,
) -> float:
    """The claim's power at no true difference, simulated: the endpoints' estimates drawn
    jointly normal with correlation `corr` (within-prompt residual correlations), each TOST
    at its own margin in SEs; the claim holds when every TOST rejects. Beside the Bonferroni
    bound, which holds whatever the correlation, this is what the design is expected to give."""
    if not endpoints:
        return float("nan")
    scales = scales or [1.0] * len(endpoints)
    z = rng.multivariate_normal(np.zeros(len(endpoints)), corr, size=sims, method="cholesky")
    bound = np.array([e.margin_se * math.sqrt(s) for e, s in zip(endpoints, scales, strict=True)])
    crit = stats.norm.ppf(1 - alpha)
    return float(np.mean(np.all(np.abs(z) < bound - crit, axis=1)))


def plan(
    endpoints: list[Endpoint],
    alpha: float,
    power: float,
    prompts: int,
    replicates: int,
    prompt_counts: list[int],
    max_replicates: int = 100_000,
) -> list[dict]:
    """For each number of prompts, the fewest replicates per prompt and arm whose power for the
    primary claim (`iut_power`, a lower bound) reaches `power`, scaling each endpoint's SE from
    this run's `prompts` x `replicates` design (so an endpoint with missing values needs its
    share more, and a group endpoint counts complete groups of K only). The prompts are fixed
    strata, so only the number of values matters; the interaction SD each endpoint reports says
    how much more a claim about other prompts would need."""

    def at(k: int, r: int) -> float:
        return iut_power(endpoints, alpha, [scale(e, r, k, replicates, prompts) for e in endpoints])

    out = []
    floor = max((e.group_size for e in endpoints), default=1)
    for k in prompt_counts:
        lo, hi = floor, max_replicates
        while lo < hi:
            mid = (lo + hi) // 2
            if at(k, mid) >= power:
                hi = mid
            else:
                lo = mid + 1
        ok = at(k, lo) >= power
        out.append({"prompts": k, "replicates": lo if ok else None,
                    "samples_per_arm": k * lo if ok else None, "power": at(k, lo) if ok else None})  # fmt: skip
    return out


def difference_power(effect_se: float, alpha: float) -> float:
    """Power of a two-sided test at alpha against a true effect of `effect_se` SEs (normal)."""
    z = stats.norm.ppf(1 - alpha / 2)
    return float(stats.norm.cdf(effect_se - z) + stats.norm.cdf(-effect_se - z))


def confirmatory_replicates(
    e: Endpoint, effect_d: float, alpha: float, power: float, replicates: int, cap: int = 10_000
) -> int | None:
    """The fewest replicates per prompt and arm at which a confirmatory test of one endpoint
    has `power` both to detect a true difference of `effect_d` within-prompt SDs (two-sided)
    and to show equivalence within +-effect_d when there is none (TOST), from the endpoint's
    SE in a run of `replicates` (its missing values counted, as they will be again)."""
    unit = effect_d * e.sd_within / e.se  # the effect in SEs at this run's design
    for r in range(max(2, e.group_size), cap + 1):
        at = unit * math.sqrt((r // e.group_size) / (replicates // e.group_size))
        if min(difference_power(at, alpha), tost_power(at, alpha)) >= power:
            return r
    return None


def confirmatory_verdict(e: Endpoint, alpha: float) -> str:
    """confirmed (a difference in the declared direction, treatment above control), refuted
    (equivalent within the declared effect, or a difference the other way), or inconclusive."""
    if e.p_diff < alpha:
        return "confirmed" if e.diff > 0 else "refuted (a difference the other way)"
    if e.p_tost < alpha:
        return "refuted (equivalent)"
    return "inconclusive"
