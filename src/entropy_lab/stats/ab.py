"""The seeding study's analysis (the `ab-analyze` stage's science): every metric, every
comparison, every model and length.

For each (model, length, [treatment, control], metric): the difference in means with a BCa
bootstrap CI, Cohen's d, a permutation test stratified by prompt, a mixed model with prompt
as random intercept (with the status of its fit), a TOST equivalence test with a margin in
pooled SDs, and the minimal detectable effect at the alpha the verdict used. p-values are
corrected across their family (main per-metric tests, A/A per-metric tests, and the same two
for the distribution tests), and each test gets a verdict: difference, trivial difference
(different, but within the margin), equivalent, inconclusive, no variation, or n = 1.

Per comparison, the texts themselves are compared too: a stratified energy-distance test on
sentence embeddings and on word n-gram profiles (stats/distribution.py), with its power
against a planted shift of one margin, and MAUVE as a descriptive divergence. Per arm, the
numbers Holtzman et al. 2020 report: repetition %, Self-BLEU4, Zipf coefficient.

The A/A pairs calibrate the analysis: arms that differ only in their PRNG keys, one
independent split per pair, model and length. Their false-positive rate, with an interval
that treats the tests of a split as correlated, says whether a "difference" elsewhere can be
taken at face value.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy import stats

from entropy_lab.generation.params import (
    DISTRIBUTION_FEATURES,
    GROUP_METRICS,
    SAMPLE_METRICS,
    AnalysisSection,
    aa_arms,
)
from entropy_lab.stats import distribution as dist
from entropy_lab.stats import inference as inf
from entropy_lab.stats import primary
from entropy_lab.stats.text import arm_statistics

log = logging.getLogger(__name__)

NAN = float("nan")
DECLARED = ("difference", "trivial difference")


def compare(
    x: np.ndarray,
    y: np.ndarray,
    sx: np.ndarray,
    sy: np.ndarray,
    analysis: AnalysisSection,
    key: tuple,
) -> dict:
    """Every statistic of one two-arm comparison of one metric (before correction).

    CIs only where they mean something: none when an arm has one record (n = 1), fewer than
    `min_records_ci` (a bootstrap's coverage falls short: 83% at 5) or no variation
    (resampling a constant arm treats its mean as known).
    """
    out = {
        "n_treatment": len(x),
        "n_control": len(y),
        "mean_treatment": float(x.mean()),
        "mean_control": float(y.mean()),
        "diff": float(x.mean() - y.mean()),
    }
    empty = dict.fromkeys(
        (
            "sd",
            "d",
            "ci_low",
            "ci_high",
            "p_perm",
            "lmm_coef",
            "lmm_se",
            "p_lmm",
            "margin",
            "p_tost",
            "p_tost_at_zero",
        ),
        NAN,
    ) | {"constant_arm": False, "lmm_status": "", "lmm_warnings": ""}
    if min(len(x), len(y)) < 2:
        return out | empty | {"note": "n = 1"}
    sd = inf.pooled_sd(x, y)
    constant = bool(np.ptp(x) == 0 or np.ptp(y) == 0)
    if sd == 0:
        return out | empty | {"sd": 0.0, "constant_arm": True, "note": "no variation"}
    margin = analysis.equivalence_margin_sd * sd
    few = min(len(x), len(y)) < analysis.min_records_ci
    if constant or few:
        lo = hi = NAN
    else:
        lo, hi = inf.bootstrap_ci(
            x,
            y,
            analysis.bootstrap,
            analysis.alpha,
            inf.keyed_rng(analysis.seed, "bootstrap", *key),
        )
    fit = inf.mixed_effects(x, y, sx, sy)
    return out | {
        "sd": sd,
        "d": out["diff"] / sd,
        "ci_low": lo,
        "ci_high": hi,
        "constant_arm": constant,
        "p_perm": inf.stratified_permutation_p(
            x, y, sx, sy, analysis.permutations, inf.keyed_rng(analysis.seed, "permutation", *key)
        ),
        "lmm_coef": fit.coef,
        "lmm_se": fit.se,
        "p_lmm": fit.p,
        "lmm_status": fit.status,
        "lmm_warnings": fit.warnings,
        "margin": margin,
        "p_tost": inf.tost_p(x, y, margin),
        "p_tost_at_zero": inf.tost_p(x - x.mean() + y.mean(), y, margin),
        "note": "one arm constant"
        if constant
        else f"n < {analysis.min_records_ci}: no CI"
        if few
        else "",
    }


def _arms(df: pd.DataFrame, metric: str, treatment: str, control: str):
    d = df[np.isfinite(df[metric])]
    t, c = d[d.condition == treatment], d[d.condition == control]
    # only prompts both arms have (accuracy exists only for checkable prompts)
    common = np.intersect1d(t.prompt_id.unique(), c.prompt_id.unique())
    t, c = t[t.prompt_id.isin(common)], c[c.prompt_id.isin(common)]
    return (
        t[metric].to_numpy(float),
        c[metric].to_numpy(float),
        t.prompt_id.to_numpy(),
        c.prompt_id.to_numpy(),
    )


def comparisons(params) -> list[tuple[str, str, str]]:
    """(treatment, control, family) for every comparison: the main ones, then the A/A pairs."""
    main = [(t, c, "main") for t, c in params.ab.analysis.comparisons]
    return main + [(t, c, "aa") for t, c in aa_arms(params.ab.generate.aa_pairs)]


def _correct(out: pd.DataFrame, analysis: AnalysisSection, tost: bool) -> dict[str, dict]:
    """Adjusted p-values and each test's effective alpha, per family, in place; returns each
    family's size and how many tests it declared."""
    families = {}
    columns = [("p_perm", "p_perm_adj", "alpha_eff")]
    if tost:
        columns.append(("p_tost", "p_tost_adj", "alpha_eff_tost"))
    for family, idx in out.groupby("family", sort=True).groups.items():
        families[family] = {}
        for raw, adjusted, threshold in columns:
            p = out.loc[idx, raw].to_numpy(dtype=float)
            adj = inf.adjust(p, analysis.correction)
            out.loc[idx, adjusted] = adj
            out.loc[idx, threshold] = inf.effective_alpha(p, analysis.alpha, analysis.correction)
            families[family] |= {
                f"{raw}_tests": int(np.isfinite(adj).sum()),
                f"{raw}_declared": int((adj < analysis.alpha).sum()),
            }
    return families


def analyze(
    samples: pd.DataFrame, groups: pd.DataFrame, params
) -> tuple[pd.DataFrame, dict[str, dict]]:
    """One row per (model, length, comparison, metric) with corrected p-values and a verdict,
    and each family's size and effective alpha."""
    analysis: AnalysisSection = params.ab.analysis
    rows = []
    for (model, length), s in samples.groupby(["model", "length"], sort=True):
        g = groups[(groups.model == model) & (groups.length == length)]
        for treatment, control, family in comparisons(params):
            for level, df, metrics in (("sample", s, SAMPLE_METRICS), ("group", g, GROUP_METRICS)):
                for metric in metrics:
                    x, y, sx, sy = _arms(df, metric, treatment, control)
                    if len(x) == 0 or len(y) == 0:
                        continue  # e.g. fixed42 has no groups of K
                    key = (model, length, treatment, control, metric)
                    rows.append(
                        {
                            "model": model,
                            "length": int(length),
                            "treatment": treatment,
                            "control": control,
                            "family": family,
                            "metric": metric,
                            "level": level,
                        }
                        | compare(x, y, sx, sy, analysis, key)
                    )
    out = pd.DataFrame(rows)
    families = _correct(out, analysis, tost=True)
    out["mde_d"] = [
        inf.mde(int(nt), int(nc), ae, analysis.power) if np.isfinite(d) and np.isfinite(ae) else NAN
        for nt, nc, d, ae in zip(out.n_treatment, out.n_control, out.d, out.alpha_eff, strict=True)
    ]
    out["equivalence_reachable"] = np.isfinite(out.p_tost_at_zero) & (
        out.p_tost_at_zero < out.alpha_eff_tost
    )
    out["verdict"] = [
        note if note in ("n = 1", "no variation") else inf.verdict(p, q, analysis.alpha)
        for p, q, note in zip(out.p_perm_adj, out.p_tost_adj, out.note, strict=True)
    ]
    return out, families


def distribution_tests(samples: pd.DataFrame, params) -> tuple[pd.DataFrame, dict[str, dict]]:
    """The energy-distance test per (model, length, comparison, feature set), with its power
    against a planted shift of one equivalence margin, and MAUVE on the embeddings."""
    analysis: AnalysisSection = params.ab.analysis
    rows, energy = [], []
    for (model, length), s in samples.groupby(["model", "length"], sort=True):
        for treatment, control, family in comparisons(params):
            t, c = s[s.condition == treatment], s[s.condition == control]
            common = np.intersect1d(t.prompt_id.unique(), c.prompt_id.unique())
            both = pd.concat([t, c])
            both = both[both.prompt_id.isin(common)]
            treated = (both.condition == treatment).to_numpy()
            strata = both.prompt_id.to_numpy()
            embeddings = np.stack(both.embedding.to_numpy()).astype(np.float64)
            for feature in DISTRIBUTION_FEATURES:
                x = embeddings if feature == "embedding" else dist.ngram_profiles(both.text)
                key = (model, length, treatment, control, feature)
                test = dist.energy_test(
                    x,
                    treated,
                    strata,
                    analysis.permutations,
                    inf.keyed_rng(analysis.seed, "energy", *key),
                    analysis.equivalence_margin_sd,
                )
                mauve = {"mauve": NAN, "mauve_null_median": NAN, "mauve_p": NAN}
                if feature == "embedding" and family == "main":
                    rng = inf.keyed_rng(analysis.seed, "mauve", *key)
                    mauve = mauve_with_null(x, treated, strata, analysis.mauve_permutations, rng)
                energy.append(test)
                rows.append(
                    {
                        "model": model,
                        "length": int(length),
                        "treatment": treatment,
                        "control": control,
                        "family": f"{family}-distribution",
                        "metric": f"energy_{feature}",
                        "level": "distribution",
                        "n_treatment": int(treated.sum()),
                        "n_control": int((~treated).sum()),
                        "statistic": test.statistic,
                        "p_perm": test.p,
                        **mauve,
                    }
                )
    out = pd.DataFrame(rows)
    families = _correct(out, analysis, tost=False)
    out["power"] = [test.power(ae) for test, ae in zip(energy, out.alpha_eff, strict=True)]
    out["verdict"] = np.where(out.p_perm_adj < analysis.alpha, "difference", "inconclusive")
    return out, families


def mauve_with_null(
    x: np.ndarray, treated: np.ndarray, strata: np.ndarray, permutations: int, rng
) -> dict[str, float]:
    """MAUVE between the arms' embeddings (centred within prompt: clusters must not be prompts)
    and its null at the same n: MAUVE of `permutations` within-prompt relabellings of the same
    texts. The p-value is the share of null scores at or below the observed one (MAUVE falls
    as the arms differ)."""
    centred = dist.centre_within(x, strata)

    def score(labels: np.ndarray) -> float:
        seed = int(rng.integers(2**31 - 16))
        return dist.mauve_score(centred[labels], centred[~labels], seed)

    observed = score(treated)
    null = []
    for _ in range(permutations):
        shuffled = treated.copy()
        for s in np.unique(strata):
            idx = np.flatnonzero(strata == s)
            shuffled[idx] = rng.permutation(treated[idx])
        null.append(score(shuffled))
    null_arr = np.array(null)
    if not np.isfinite(observed) or not np.isfinite(null_arr).all():
        return {"mauve": observed, "mauve_null_median": NAN, "mauve_p": NAN}
    return {
        "mauve": observed,
        "mauve_null_median": float(np.median(null_arr)),
        "mauve_p": float((1 + (null_arr <= observed).sum()) / (permutations + 1)),
    }


def calibrate(p: np.ndarray, split: np.ndarray, alpha: float) -> dict:
    """False-positive rate of A/A tests (p-values, and the split each comes from) at alpha.

    Splits are independent; tests within one are not (they share its samples), so the
    interval is Korn-Graubard's, clustered by split. `anti-conservative`: the whole interval
    is above alpha, so the analysis declares differences where there are none.
    """
    p, split = np.asarray(p, dtype=float), np.asarray(split)
    names = sorted(set(split.tolist()))
    k = np.array([int((p[split == s] < alpha).sum()) for s in names])
    n = np.array([int((split == s).sum()) for s in names])
    r = inf.clustered_rate(k, n)
    status = (
        "no tests"
        if r.tests == 0
        else "anti-conservative"
        if r.ci_low > alpha
        else "conservative"
        if r.ci_high < alpha
        else "consistent with alpha"
    )
    return {
        "splits": len(names),
        "tests": r.tests,
        "rejections": r.rejections,
        "rate": r.rate,
        "ci_low": r.ci_low,
        "ci_high": r.ci_high,
        "design_effect": r.design_effect,
        "effective_n": r.effective_n,
        "per_split": {s: int(v) for s, v in zip(names, k, strict=True)},
        "status": status,
    }


def aa_calibration(
    tests: pd.DataFrame, dist_tests: pd.DataFrame, analysis: AnalysisSection
) -> dict:
    """The A/A pairs' false-positive rate at alpha, before correction: per split (one pair,
    model and length), pooled with a Korn-Graubard interval clustered by split; separately for
    the per-metric and the distribution tests. Beside it, the A/A tests still declared a
    difference after correction within their family: every A/A hypothesis is true, so either
    correction (BH or Holm) declares one at all with probability at most alpha."""
    out = {"pairs": 0}
    for name, df in (("per_metric", tests), ("distribution", dist_tests)):
        aa = df[(df.family.str.startswith("aa")) & np.isfinite(df.p_perm)]
        split = aa.model + "/" + aa.length.astype(str) + "/" + aa.treatment.str.removesuffix("_a")
        out[name] = calibrate(aa.p_perm.to_numpy(), split.to_numpy(), analysis.alpha) | {
            "differences_after_correction": int((aa.verdict.isin(DECLARED)).sum()),
            "p_values": sorted(map(float, aa.p_perm)),  # against uniform: ab_aa_pvalues
        }
        out["pairs"] = max(out["pairs"], int(aa.treatment.nunique()))
    return out


def _value(x):
    return None if isinstance(x, float) and not np.isfinite(x) else x


def summary(
    tests: pd.DataFrame, dist_tests: pd.DataFrame, arms: pd.DataFrame, families: dict, aa: dict
) -> dict:
    """`reports/ab/metrics.json`: what `dvc metrics show/diff` compares between experiments."""
    out: dict = {
        "aa": aa,
        "families": families,
        "verdicts": {},
        "tests": {},
        "distribution": {},
        "arms": {},
    }
    for (t, c), df in tests.groupby(["treatment", "control"], sort=False):
        out["verdicts"][f"{t}_vs_{c}"] = {
            v: int((df.verdict == v).sum()) for v in (*inf.VERDICTS, "n = 1")
        }
    for r in tests[tests.family == "main"].itertuples():  # A/A tests: tests.csv and `aa`
        name = f"{r.model}/{r.length}/{r.treatment}_vs_{r.control}"
        out["tests"].setdefault(name, {})[r.metric] = {
            "level": r.level,
            "n": [int(r.n_treatment), int(r.n_control)],
            "diff": r.diff,
            "d": _value(r.d),
            "d_ci": [_value(r.ci_low / r.sd), _value(r.ci_high / r.sd)]
            if r.sd > 0
            else [None, None],
            "p": _value(r.p_perm),
            "p_adj": _value(r.p_perm_adj),
            "p_tost_adj": _value(r.p_tost_adj),
            "alpha_eff": _value(r.alpha_eff),
            "mde_d": _value(r.mde_d),
            "equivalence_reachable": bool(r.equivalence_reachable),
            "lmm_status": r.lmm_status,
            "p_lmm": _value(r.p_lmm),
            "verdict": r.verdict,
        }
    for r in dist_tests[dist_tests.family == "main-distribution"].itertuples():
        name = f"{r.model}/{r.length}/{r.treatment}_vs_{r.control}"
        out["distribution"].setdefault(name, {})[r.metric.removeprefix("energy_")] = {
            "n": [int(r.n_treatment), int(r.n_control)],
            "energy": r.statistic,
            "p": r.p_perm,
            "p_adj": r.p_perm_adj,
            "alpha_eff": r.alpha_eff,
            "power": r.power,
            "mauve": _value(r.mauve),
            "mauve_null_median": _value(r.mauve_null_median),
            "mauve_p": _value(r.mauve_p),
            "verdict": r.verdict,
        }
    for r in arms.itertuples():
        out["arms"].setdefault(f"{r.model}/{r.length}", {})[r.arm] = {
            "n": int(r.n),
            "empty_pct": r.empty_pct,
            "repetition_pct": r.repetition_pct,
            "self_bleu4": _value(r.self_bleu4),
            "self_bleu4_ci": [r.self_bleu4_low, r.self_bleu4_high]
            if pd.notna(r.self_bleu4_low)
            else None,
            "self_bleu4_groups": int(r.self_bleu4_groups),
            "zipf": _value(r.zipf),
            "mean_tokens": r.mean_tokens,
        }
    return out


def primary_analysis(
    samples: pd.DataFrame, groups: pd.DataFrame, params, endpoints: list[str]
) -> dict:
    """A primary-style claim per model, length and primary comparison (stats.primary), on
    `endpoints`: each within prompt with its TOST, the intersection-union verdict over those
    that carry information, what this run could show (equivalence reachable at a zero observed
    difference; the claim's power, as a lower bound and simulated) and the plan for the wanted
    power."""
    spec = params.ab.analysis.primary
    alpha, replicates = params.ab.analysis.alpha, params.ab.generate.replicates
    k = params.ab.metrics.best_of_k
    out: dict = {}
    for (model, length), s in samples.groupby(["model", "length"], sort=True):
        g = groups[(groups.model == model) & (groups.length == length)]
        for treatment, control in spec.comparisons:
            found = {
                m: primary.within_prompt(
                    *_arms(g if m in GROUP_METRICS else s, m, treatment, control),
                    spec.margin_sd, alpha, k if m in GROUP_METRICS else 1,
                )
                for m in endpoints
            }  # fmt: skip
            verdict = primary.primary_verdict(found, alpha, spec.min_varying)
            used = [found[m] for m in endpoints if m not in verdict["no_variation"]]
            corr = residual_correlation(s, g, [m for m in endpoints if m not in
                                               verdict["no_variation"]], (treatment, control), k)  # fmt: skip
            prompts = max(e.prompts for e in found.values())

            def simulated(scales, *tag, used=used, corr=corr, key=(model, length, treatment)):
                rng = inf.keyed_rng(params.ab.analysis.seed, "power", *key, *endpoints, *tag)
                return primary.simulated_power(used, corr, alpha, rng, scales) if used else None

            plan = primary.plan(used, alpha, spec.power, prompts, replicates,
                                [prompts, 2 * prompts, 4 * prompts])  # fmt: skip
            for row in plan:
                if row["replicates"]:
                    scales = [primary.scale(e, row["replicates"], row["prompts"], replicates,
                                            prompts) for e in used]  # fmt: skip
                    row["power_simulated"] = simulated(scales, row["prompts"])
                else:
                    row["power_simulated"] = None
            described = {
                m: e.as_dict() | {"reachable": reachable(e, alpha),
                                  "defined_share": defined_share(s, m, treatment, control)}
                for m, e in found.items()
            }  # fmt: skip
            out[f"{model}/{length}/{treatment}_vs_{control}"] = verdict | {
                "endpoints": described,
                "prompts": prompts,
                "replicates": replicates,
                "power": primary.iut_power(used, alpha) if used else None,
                "power_simulated": simulated(None),
                "plan": plan,
            }
    return out


def defined_share(s: pd.DataFrame, metric: str, treatment: str, control: str) -> float | None:
    """The share of the two arms' texts on which a per-text endpoint is defined (None for a
    group endpoint)."""
    if metric not in s:
        return None
    arms = s[s.condition.isin([treatment, control])]
    return float(np.isfinite(arms[metric].to_numpy(float)).mean()) if len(arms) else None


def residual_correlation(
    s: pd.DataFrame, g: pd.DataFrame, endpoints: list[str], arms: tuple[str, str], k: int
) -> np.ndarray:
    """The endpoints' within-prompt correlation: each value minus its prompt and arm's mean,
    correlated over the texts (or groups) both are defined on; a per-text endpoint against a
    group endpoint through its mean over the group's K texts. What the estimates' correlation
    is, for the simulated power (0 where too few values pair up)."""
    s = s[s.condition.isin(arms)].assign(group=lambda d: d.replicate // k)
    g = g[g.condition.isin(arms)]
    cells = ["condition", "prompt_id"]
    frame = {}
    for m in endpoints:
        d = g if m in GROUP_METRICS else s
        resid = d[m] - d.groupby(cells)[m].transform("mean")
        keys = cells + ["group"] + ([] if m in GROUP_METRICS else ["replicate"])
        frame[m] = pd.Series(resid.to_numpy(), index=pd.MultiIndex.from_frame(d[keys]))
    out = np.eye(len(endpoints))
    for i, a in enumerate(endpoints):
        for j in range(i):
            b = endpoints[j]
            x, y = frame[a], frame[b]
            if (a in GROUP_METRICS) != (b in GROUP_METRICS):  # a text's value to its group's
                x, y = (x, y) if a in GROUP_METRICS else (y, x)
                y = y.groupby(level=[0, 1, 2]).mean()
            both = pd.concat([x, y], axis=1, join="inner").dropna()
            r = both.corr().iloc[0, 1] if len(both) > 2 else 0.0
            out[i, j] = out[j, i] = r if np.isfinite(r) else 0.0
    return nearest_correlation(out)


def nearest_correlation(c: np.ndarray) -> np.ndarray:
    """`c` made positive semi-definite (pairwise estimates need not be): negative eigenvalues
    clipped, the diagonal rescaled to 1."""
    w, v = np.linalg.eigh(c)
    fixed = (v * np.clip(w, 1e-9, None)) @ v.T
    d = np.sqrt(np.diag(fixed))
    return fixed / np.outer(d, d)


def reachable(e: primary.Endpoint, alpha: float) -> bool:
    """Whether a zero observed difference would pass this endpoint's TOST at its n and spread
    (a property of the design, not power: that is `primary.iut_power`)."""
    return bool(e.df > 0 and e.margin > stats.t.ppf(1 - alpha, e.df) * e.se)


def results(
    samples: pd.DataFrame, groups: pd.DataFrame, params
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The tests table, the arms table and the metrics summary, from the metric tables."""
    analysis: AnalysisSection = params.ab.analysis
    tests, families = analyze(samples, groups, params)
    dist_tests, dist_families = distribution_tests(samples, params)
    arms = arm_statistics(samples, analysis.seed, analysis.min_records_ci)
    aa = aa_calibration(tests, dist_tests, analysis)
    if aa["per_metric"]["status"] == "anti-conservative":
        log.warning(
            "A/A false-positive rate %.3f [%.3f, %.3f] is above alpha %.3f",
            aa["per_metric"]["rate"],
            aa["per_metric"]["ci_low"],
            aa["per_metric"]["ci_high"],
            analysis.alpha,
        )
    both = pd.concat([tests, dist_tests], ignore_index=True)
    out = summary(tests, dist_tests, arms, families | dist_families, aa)
    spec = params.ab.analysis
    claims = {"primary": primary_analysis(samples, groups, params, spec.primary.endpoints)}
    claims["deviations"] = {
        d.name: primary_analysis(samples, groups, params, d.endpoints) for d in spec.deviations
    }
    if spec.confirmatory and spec.confirmatory.applies(params.ab):
        claims["confirmatory"] = confirmatory(samples, groups, params)
    return both, arms, claims | out


def confirmatory(samples: pd.DataFrame, groups: pd.DataFrame, params) -> dict:
    """The declared confirmatory test, per model, on its run (`Confirmatory.applies`)."""
    c = params.ab.analysis.confirmatory
    group = c.endpoint in GROUP_METRICS
    out = {}
    for model, s in samples[samples.length == c.length].groupby("model", sort=True):
        data = groups[(groups.model == model) & (groups.length == c.length)] if group else s
        e = primary.within_prompt(*_arms(data, c.endpoint, *c.comparison), c.effect_d, c.alpha,
                                  params.ab.metrics.best_of_k if group else 1)  # fmt: skip
        out[f"{model}/{c.length}/{c.comparison[0]}_vs_{c.comparison[1]}"] = {
            "endpoint": c.endpoint,
            "verdict": primary.confirmatory_verdict(e, c.alpha),
            "estimate": e.as_dict(),
            "defined_share": defined_share(s, c.endpoint, *c.comparison),
            "power_difference": primary.difference_power(c.effect_d * e.sd_within / e.se, c.alpha)
            if e.se > 0 else None,
            "power_equivalence": primary.tost_power(e.margin_se, c.alpha),
        }  # fmt: skip
    return out


def effects(tests: pd.DataFrame) -> pd.DataFrame:
    """The `dvc plots` view: each per-metric test's standardised difference and its CI."""
    return tests[np.isfinite(tests.d)].assign(
        label=lambda t: (
            t.model + "/" + t.length.astype(str) + " " + t.treatment + " vs " + t.control
            + ": " + t.metric
        ),
        d_low=lambda t: t.ci_low / t.sd,
        d_high=lambda t: t.ci_high / t.sd,
    )[["label", "model", "length", "treatment", "control", "metric", "d", "d_low", "d_high",
       "verdict"]]  # fmt: skip
