"""The A/B analysis on synthetic metric tables: verdicts, CIs only where they mean something,
the A/A calibration and what it can detect, and the arm statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from entropy_lab.config import parse_params
from entropy_lab.generation.params import GROUP_METRICS, SAMPLE_METRICS
from entropy_lab.stats import ab, text
from entropy_lab.stats import inference as inf

PROMPTS = 10
PER_PROMPT = 16


def _prompt_clustered_split(rng, imbalance: bool, cell_sd: float = 0.0, metrics: int = 8):
    """One A/A split: two arms, prompt effects (SD 2) shared by both, `metrics` correlated
    metrics. `imbalance`: arm A has 16 samples of prompts 0-4 and 4 of prompts 5-9, arm B the
    reverse. `cell_sd`: a random effect per (arm, prompt), i.e. the arms really differ."""
    counts_a = np.where(np.arange(PROMPTS) < 5, 16, 4) if imbalance else np.full(PROMPTS, 16)
    counts_b = counts_a[::-1] if imbalance else counts_a
    prompt_effect = rng.normal(0, 2, PROMPTS)
    arms = []
    for counts in (counts_a, counts_b):
        strata = np.repeat(np.arange(PROMPTS), counts)
        cell = rng.normal(0, cell_sd, PROMPTS)[strata]
        shared = rng.normal(0, 1, len(strata))
        values = [
            prompt_effect[strata] + cell + 0.6 * shared + 0.8 * rng.normal(0, 1, len(strata))
            for _ in range(metrics)
        ]
        arms.append((np.array(values), strata))
    return arms


def _aa_pvalues(test, splits: int, seed: int, **kw):
    rng = np.random.default_rng(seed)
    p, split = [], []
    for k in range(splits):
        (xa, sa), (xb, sb) = _prompt_clustered_split(rng, **kw)
        for m in range(len(xa)):
            p.append(test(xa[m], xb[m], sa, sb, rng))
            split.append(k)
    return np.array(p), np.array(split)


def unstratified_t(x, y, sx, sy, rng):
    return stats.ttest_ind(x, y).pvalue


def stratified_permutation(x, y, sx, sy, rng):
    return inf.stratified_permutation_p(x, y, sx, sy, 400, rng)


def test_aa_check_flags_an_unstratified_t_test_on_prompt_clustered_data():
    """Arms that lost different samples per prompt (as NaN metrics do) with strong prompt
    effects: the t-test that ignores prompts mistakes the mix for an effect in every split,
    and the A/A check says so; the stratified permutation test on the same data passes."""
    p, split = _aa_pvalues(unstratified_t, 6, 0, imbalance=True)
    flagged = ab.calibrate(p, split, 0.05)
    assert flagged["status"] == "anti-conservative" and flagged["ci_low"] > 0.05
    p, split = _aa_pvalues(stratified_permutation, 6, 0, imbalance=True)
    assert ab.calibrate(p, split, 0.05)["status"] == "consistent with alpha"


def resplit_rejections(x, y, sx, sy, rng, simulations=100):
    """The old check, kept as a test of the code only: pool the two arms, re-split them at
    random within each prompt and count the permutation test's rejections. This is the
    permutation test's own null, so it is at most alpha whatever the arms are."""
    values, strata = np.r_[x, y], np.r_[sx, sy]
    rejections = 0
    for _ in range(simulations):
        label = np.zeros(len(values), bool)
        for s in np.unique(strata):
            idx = np.flatnonzero(strata == s)
            label[rng.choice(idx, size=(sx == s).sum(), replace=False)] = True
        p = inf.stratified_permutation_p(
            values[label], values[~label], strata[label], strata[~label], 200, rng
        )
        rejections += p < 0.05
    return rejections


def test_resplit_simulation_holds_alpha_and_cannot_see_real_aa_differences():
    """Arms that really differ (an effect per arm and prompt, as a batch effect would make):
    the re-split simulation still reports about alpha, while real A/A pairs flag it."""
    rng = np.random.default_rng(1)
    (xa, sa), (xb, sb) = _prompt_clustered_split(rng, imbalance=False, cell_sd=1.0, metrics=1)
    k = resplit_rejections(xa[0], xb[0], sa, sb, rng)
    lo, hi = inf.binomial_interval(int(k), 100, 0.99)
    assert lo <= 0.05 <= hi
    p, split = _aa_pvalues(stratified_permutation, 6, 2, imbalance=False, cell_sd=1.0)
    assert ab.calibrate(p, split, 0.05)["status"] == "anti-conservative"


def test_calibrate_counts_per_split():
    p = np.array([0.01, 0.5, 0.02, 0.9, 0.6, 0.7])
    split = np.array(["a", "a", "b", "b", "c", "c"])
    out = ab.calibrate(p, split, 0.05)
    assert out["per_split"] == {"a": 1, "b": 1, "c": 0}
    assert (out["tests"], out["rejections"], out["splits"]) == (6, 2, 3)
    assert ab.calibrate(np.array([]), np.array([]), 0.05)["status"] == "no tests"


def _tables(params, rng):
    """Per-sample and per-group metric tables for every arm of `params`, one length."""
    g = params.ab.generate
    samples, groups = [], []
    for arm in g.arms():
        for p in params.ab.prompts:
            for r in range(g.replicates_of(arm)):
                row = {
                    "sample_id": f"m/8/{arm}/{p.id}/{r}",
                    "model": "m",
                    "length": 8,
                    "condition": arm,
                    "prompt_id": p.id,
                    "replicate": r,
                }
                row |= {m: float(rng.normal()) for m in SAMPLE_METRICS}
                row["accuracy"] = float(rng.random() < 0.5) if p.answer else np.nan
                row["repeat_rate"] = 0.0 if arm == "fixed42" else float(rng.random() < 0.3)
                row["repetition"] = float(rng.random() < 0.2)
                row["n_tokens"] = 8.0
                row["self_bleu4"] = float(rng.random())
                tokens = rng.integers(0, 20, 8)
                row["token_ids"] = tokens.tolist()
                row["text"] = " ".join(f"w{t}" for t in tokens)
                row["embedding"] = rng.normal(size=6).astype(np.float32)
                samples.append(row)
            for k in range(g.replicates_of(arm) // params.ab.metrics.best_of_k):
                groups.append(
                    {"model": "m", "length": 8, "condition": arm, "prompt_id": p.id, "group": k}
                    | {m: float(rng.normal()) for m in GROUP_METRICS}
                )
    samples, groups = pd.DataFrame(samples), pd.DataFrame(groups)
    shift = samples.condition == "entropy_stream"
    samples.loc[shift, "distinct_1"] += 3.0  # a planted difference
    return samples, groups


@pytest.fixture(scope="module")
def analysed():
    import yaml

    from tests.conftest import REPO

    data = yaml.safe_load((REPO / "params.yaml").read_text())
    ab_ = data["ab"]
    ab_["prompts"] = ab_["prompts"][:2] + [p for p in ab_["prompts"] if p.get("answer")][:1]
    ab_["lengths"] = [8]
    ab_["generate"].update(replicates=8, aa_pairs=2)
    ab_["metrics"]["best_of_k"] = 4
    ab_["analysis"].update(bootstrap=200, permutations=2000)
    params = parse_params(data)
    samples, groups = _tables(params, np.random.default_rng(0))
    tests, families = ab.analyze(samples, groups, params)
    dist, _ = ab.distribution_tests(samples, params)
    return params, samples, tests, families, dist


def test_analysis_verdicts_and_statuses(analysed):
    _, _, tests, families, _ = analysed
    assert set(tests.verdict) <= {*inf.VERDICTS, "n = 1"}
    planted = tests[(tests.treatment == "entropy_stream") & (tests.metric == "distinct_1")]
    assert planted.verdict.item() == "difference"
    tested = tests[np.isfinite(tests.p_perm)]
    assert set(tested.lmm_status) <= set(inf.MIXED_STATUSES) and tested.lmm_status.ne("").all()
    assert (tested.alpha_eff <= 0.05).all() and np.isfinite(tested.mde_d).all()
    assert set(families) == {"aa", "main"}
    aa = tests[tests.family == "aa"]
    assert set(aa.treatment) == {"aa1_a", "aa2_a"} and set(aa.control) == {"aa1_b", "aa2_b"}


def test_no_ci_and_no_equivalence_from_a_constant_arm_or_one_record(analysed):
    _, _, tests, _, _ = analysed
    constant = tests[(tests.treatment == "fixed42") & (tests.metric == "repeat_rate")]
    assert (
        constant.constant_arm.item() and np.isnan(constant[["ci_low", "ci_high"]].to_numpy()).all()
    )
    assert np.isnan(constant.p_tost.item()) and constant.verdict.item() != "equivalent"
    # one checkable prompt, fixed42 has one sample of it
    one = tests[(tests.treatment == "fixed42") & (tests.metric == "accuracy")]
    assert one.verdict.item() == "n = 1" and np.isnan(one.ci_low.item())


def test_no_bootstrap_ci_from_an_arm_of_fewer_than_the_declared_minimum(analysed):
    """fixed42 has one text per prompt (3 here, 6-10 in the default profile): a BCa interval
    from so few covers 46-83% of the time, so none is printed; the test itself still runs."""
    params, _, tests, _, _ = analysed
    assert params.ab.analysis.min_records_ci == 10
    few = tests[(tests.treatment == "fixed42") & (tests.metric == "distinct_1")].iloc[0]
    assert few.n_treatment < 10 and np.isnan(few.ci_low) and np.isnan(few.ci_high)
    assert few.note == "n < 10: no CI" and np.isfinite(few.p_perm)
    many = tests[(tests.treatment == "prng_stream") & (tests.metric == "distinct_1")].iloc[0]
    assert many.n_treatment >= 10 and np.isfinite([many.ci_low, many.ci_high]).all()


def test_distribution_tests_and_arm_statistics(analysed):
    _, samples, _, _, dist = analysed
    assert set(dist.metric) == {"energy_embedding", "energy_ngram"}
    assert set(dist.family) == {"main-distribution", "aa-distribution"}
    assert dist.p_perm.between(0, 1).all() and dist.power.between(0, 1).all()
    assert dist.mauve.isna().all()  # fewer than 78 texts per comparison: no MAUVE
    arms = ab.arm_statistics(samples, 0, min_groups=4)
    assert len(arms) == samples.condition.nunique()
    fixed = arms[arms.arm == "fixed42"].iloc[0]
    mask = samples.condition == "fixed42"
    assert fixed.repetition_pct == pytest.approx(100 * samples[mask].repetition.mean())
    assert fixed.zipf == pytest.approx(text.zipf_coefficient(samples[mask].token_ids))
    assert fixed.empty_pct == pytest.approx(100 * (samples[mask].n_tokens == 0).mean())
    # Self-BLEU4: a mean over groups (one text per prompt); fixed42 is a single group, no CI
    assert fixed.self_bleu4_groups == 1 and pd.isna(fixed.self_bleu4_low)
    seeds = arms[arms.arm == "prng_seed"].iloc[0]
    by_group = samples[samples.condition == "prng_seed"].groupby("replicate").self_bleu4.mean()
    assert seeds.self_bleu4_groups == 8 and seeds.self_bleu4 == pytest.approx(by_group.mean())
    assert (
        pd.isna(seeds.self_bleu4_low)
        or seeds.self_bleu4_low <= seeds.self_bleu4 <= seeds.self_bleu4_high
    )


def test_zipf_coefficient_of_an_exact_power_law():
    # token t appears round(1000 / t^1.3) times: the fitted exponent is 1.3 (to rounding)
    tokens = [t for t in range(1, 40) for _ in range(round(1000 / t**1.3))]
    assert text.zipf_coefficient([tokens]) == pytest.approx(1.3, abs=0.01)
    assert np.isnan(text.zipf_coefficient([[1, 2, 3]]))  # every count equal: no slope
