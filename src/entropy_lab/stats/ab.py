"""The `ab-analyze` stage: every metric, every comparison, every model and length.

For each (model, length, [treatment, control], metric): the difference in means with a BCa
bootstrap CI, Cohen's d, a permutation test stratified by prompt, a mixed model with prompt
as random intercept, a TOST equivalence test with a margin in pooled SDs, and the minimal
detectable effect. p-values are corrected across the family of tests (the A/A control is its
own family), and each test gets a verdict: difference, equivalent, inconclusive.

The A/A control calibrates the whole analysis: its uncorrected false-positive rate should be
alpha, checked on the real A/A arm and by re-splitting the pooled PRNG arms many times.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from entropy_lab.errors import UserError
from entropy_lab.generation.metrics import GROUP_METRICS, METRICS_DIR, SAMPLE_METRICS
from entropy_lab.generation.params import AA_COMPARISON, AnalysisSection
from entropy_lab.stats import inference as inf

log = logging.getLogger(__name__)

REPORT_DIR = Path("reports/ab")
AA_SIM_PERMUTATIONS = 500  # per simulated A/A test: p to 0.002, enough to count p < alpha


def compare(
    x: np.ndarray, y: np.ndarray, sx: np.ndarray, sy: np.ndarray, a: AnalysisSection, key: tuple
) -> dict:
    """Every statistic of one two-arm comparison of one metric (before correction)."""
    sd = inf.pooled_sd(x, y) if len(x) > 1 and len(y) > 1 else 0.0
    out = {
        "n_treatment": len(x),
        "n_control": len(y),
        "mean_treatment": float(x.mean()),
        "mean_control": float(y.mean()),
        "diff": float(x.mean() - y.mean()),
        "sd": sd,
    }
    nan = float("nan")
    if sd == 0:
        return (
            out
            | dict.fromkeys(
                (
                    "d",
                    "ci_low",
                    "ci_high",
                    "p_perm",
                    "lmm_coef",
                    "lmm_se",
                    "p_lmm",
                    "margin",
                    "p_tost",
                    "mde_d",
                ),
                nan,
            )
            | {"lmm_converged": False}
        )
    lo, hi = inf.bootstrap_ci(x, y, a.bootstrap, a.alpha, inf.keyed_rng(a.seed, "bootstrap", *key))
    fit = inf.mixed_effects(x, y, sx, sy)
    margin = a.equivalence_margin_sd * sd
    return out | {
        "d": out["diff"] / sd,
        "ci_low": lo,
        "ci_high": hi,
        "p_perm": inf.stratified_permutation_p(
            x, y, sx, sy, a.permutations, inf.keyed_rng(a.seed, "permutation", *key)
        ),
        "lmm_coef": fit.coef,
        "lmm_se": fit.se,
        "p_lmm": fit.p,
        "lmm_converged": fit.converged,
        "margin": margin,
        "p_tost": inf.tost_p(x, y, margin),
        "mde_d": inf.mde(len(x), len(y), a.alpha, a.power),
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


def analyze(samples: pd.DataFrame, groups: pd.DataFrame, a: AnalysisSection) -> pd.DataFrame:
    """One row per (model, length, comparison, metric) with corrected p-values and a verdict."""
    rows = []
    for (model, length), s in samples.groupby(["model", "length"], sort=True):
        g = groups[(groups.model == model) & (groups.length == length)]
        for treatment, control in a.comparisons:
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
                            "metric": metric,
                            "level": level,
                        }
                        | compare(x, y, sx, sy, a, key)
                    )
    out = pd.DataFrame(rows)
    out["family"] = np.where(
        (out.treatment == AA_COMPARISON[0]) & (out.control == AA_COMPARISON[1]), "aa", "main"
    )
    out["p_perm_adj"] = np.nan
    out["p_tost_adj"] = np.nan
    for _, idx in out.groupby("family").groups.items():
        out.loc[idx, "p_perm_adj"] = inf.adjust(out.loc[idx, "p_perm"].to_numpy(), a.correction)
        out.loc[idx, "p_tost_adj"] = inf.adjust(out.loc[idx, "p_tost"].to_numpy(), a.correction)
    out["verdict"] = [
        inf.verdict(p, q, a.alpha) for p, q in zip(out.p_perm_adj, out.p_tost_adj, strict=True)
    ]
    return out


def aa_simulation(samples: pd.DataFrame, a: AnalysisSection) -> dict:
    """Re-split the two pooled PRNG arms at random within each prompt, many times, and count
    how often the stratified permutation test rejects at alpha: the analysis' real FPR."""
    arms = samples[samples.condition.isin(AA_COMPARISON)]
    rejections = tests = 0
    for (model, length), s in arms.groupby(["model", "length"], sort=True):
        n_a = int((s.condition == AA_COMPARISON[0]).sum())
        rng = inf.keyed_rng(a.seed, "aa-simulation", model, length)
        for _ in range(a.aa_simulations):
            label = np.zeros(len(s), bool)
            for _, idx in s.groupby("prompt_id").indices.items():
                half = len(idx) * n_a // len(s)
                label[rng.choice(idx, size=half, replace=False)] = True
            for metric in SAMPLE_METRICS:
                v = s[metric].to_numpy(float)
                ok = np.isfinite(v)
                x, y = v[label & ok], v[~label & ok]
                if len(x) < 2 or len(y) < 2 or np.ptp(np.r_[x, y]) == 0:
                    continue
                p = inf.stratified_permutation_p(
                    x,
                    y,
                    s.prompt_id.to_numpy()[label & ok],
                    s.prompt_id.to_numpy()[~label & ok],
                    AA_SIM_PERMUTATIONS,
                    rng,
                )
                rejections += p < a.alpha
                tests += 1
    lo, hi = inf.binomial_interval(rejections, tests) if tests else (float("nan"),) * 2
    return {
        "tests": tests,
        "rejections": int(rejections),
        "rate": rejections / tests if tests else float("nan"),
        "ci_low": lo,
        "ci_high": hi,
        "alpha_in_ci": bool(lo <= a.alpha <= hi),
    }


def aa_observed(tests: pd.DataFrame, a: AnalysisSection) -> dict:
    """The real A/A arm: uncorrected rejections among its tests, and corrected ones (should be 0)."""
    aa = tests[(tests.family == "aa") & np.isfinite(tests.p_perm)]
    k, n = int((aa.p_perm < a.alpha).sum()), len(aa)
    lo, hi = inf.binomial_interval(k, n) if n else (float("nan"),) * 2
    return {
        "tests": n,
        "rejections": k,
        "rate": k / n if n else float("nan"),
        "ci_low": lo,
        "ci_high": hi,
        "alpha_in_ci": bool(lo <= a.alpha <= hi),
        "differences_after_correction": int((aa.verdict == "difference").sum()),
    }


def load_metrics(params, root: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Path]]:
    ab = params.ab
    samples, groups, inputs = [], [], {}
    for model in ab.models:
        for length in ab.lengths:
            d = root / METRICS_DIR / model / str(length)
            if not (d / "samples.parquet").is_file():
                raise UserError(f"no metrics at {d}; run ab-metrics@{model}-{length} first")
            samples.append(pd.read_parquet(d / "samples.parquet"))
            groups.append(pd.read_parquet(d / "groups.parquet"))
            inputs[f"metrics/{model}/{length}"] = d
    return pd.concat(samples, ignore_index=True), pd.concat(groups, ignore_index=True), inputs


def summary(tests: pd.DataFrame, aa_obs: dict, aa_sim: dict) -> dict:
    """`reports/ab/metrics.json`: what `dvc metrics show/diff` compares between experiments."""
    out: dict = {"aa_observed": aa_obs, "aa_simulation": aa_sim, "verdicts": {}, "tests": {}}
    for (t, c), df in tests.groupby(["treatment", "control"], sort=False):
        out["verdicts"][f"{t}_vs_{c}"] = {
            v: int((df.verdict == v).sum())
            for v in ("difference", "equivalent", "inconclusive", "no variation")
        }
    for r in tests.itertuples():
        name = f"{r.model}/{r.length}/{r.treatment}_vs_{r.control}"
        out["tests"].setdefault(name, {})[r.metric] = {
            "n": [int(r.n_treatment), int(r.n_control)],
            "diff": r.diff,
            "d": r.d,
            "d_ci": [r.ci_low / r.sd, r.ci_high / r.sd] if r.sd > 0 else [None, None],
            "p_adj": r.p_perm_adj,
            "p_tost_adj": r.p_tost_adj,
            "mde_d": r.mde_d,
            "verdict": r.verdict,
        }
    return out


def results(params, root: Path = Path(".")) -> tuple[pd.DataFrame, dict, dict[str, Path]]:
    """The tests table and the metrics summary, from the stored metric tables."""
    a: AnalysisSection = params.ab.analysis
    samples, groups, inputs = load_metrics(params, root)
    tests = analyze(samples, groups, a)
    aa_obs, aa_sim = aa_observed(tests, a), aa_simulation(samples, a)
    if not aa_sim["alpha_in_ci"]:
        log.warning(
            "A/A false-positive rate %.3f: alpha %.3f is outside its interval",
            aa_sim["rate"],
            a.alpha,
        )
    return tests, summary(tests, aa_obs, aa_sim), inputs


def run_stage(params, root: Path = Path(".")) -> None:
    """Stage `ab-analyze`: reports/ab/{tests.csv, effects.csv, metrics.json, manifest.json}."""
    from entropy_lab.provenance import MANIFEST, atomic_file, build_manifest, json_safe, write_json
    from entropy_lab.schema import flatten

    a: AnalysisSection = params.ab.analysis
    tests, metrics, inputs = results(params, root)
    effects = tests[np.isfinite(tests.d)].assign(
        label=lambda t: (
            t.model
            + "/"
            + t.length.astype(str)
            + " "
            + t.treatment
            + " vs "
            + t.control
            + ": "
            + t.metric
        ),
        d_low=lambda t: t.ci_low / t.sd,
        d_high=lambda t: t.ci_high / t.sd,
    )[
        [
            "label",
            "model",
            "length",
            "treatment",
            "control",
            "metric",
            "d",
            "d_low",
            "d_high",
            "verdict",
        ]
    ]
    read = flatten(a, "ab.analysis") | {
        "ab.models": params.ab.models,
        "ab.lengths": params.ab.lengths,
    }
    out = root / REPORT_DIR
    with atomic_file(out / "tests.csv") as tmp:
        tests.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_file(out / "effects.csv") as tmp:
        effects.to_csv(tmp, index=False, float_format="%.6g")
    write_json(out / "metrics.json", json_safe(metrics))
    manifest = build_manifest("ab-analyze", read, inputs, out, seeds={"analysis": a.seed})
    write_json(out / MANIFEST, manifest)
