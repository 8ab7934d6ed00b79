"""The seeding study's primary analysis against known answers and by simulation: the within-
prompt estimate and its interval, the intersection-union claim's size at the margin and its
power at the planned number of replicates."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from entropy_lab.stats import primary

SD_PROMPT, SD_WITHIN = 2.0, 1.0  # prompt effects larger than the noise within a prompt


def simulate(rng, prompts: int, replicates: int, diff: float, interaction: float = 0.0):
    """One endpoint: both arms see the same prompts, `replicates` values per prompt and arm."""
    effect = rng.normal(0, SD_PROMPT, prompts)
    inter = rng.normal(0, interaction, prompts)
    s = np.repeat(np.arange(prompts), replicates)
    x = effect[s] + inter[s] + diff + rng.normal(0, SD_WITHIN, s.size)
    y = effect[s] + rng.normal(0, SD_WITHIN, s.size)
    return x, y, s, s


def test_within_prompt_estimate_matches_a_regression_with_prompt_effects():
    """On unbalanced arms (a metric missing for some texts) the estimate is the arm coefficient
    of a regression with prompt as a fixed effect (statsmodels), and so is its SE up to the
    residual variance's pooling; with large prompt effects it is far more precise than a
    two-sample comparison ignoring the prompts."""
    import pandas as pd
    import statsmodels.formula.api as smf

    rng = np.random.default_rng(0)
    x, y, sx, sy = simulate(rng, 8, 6, 0.4)
    keep = rng.random(x.size) > 0.3  # drop about a third of the treatment arm's values
    x, sx = x[keep], sx[keep]
    e = primary.within_prompt(x, y, sx, sy, 0.3, 0.05)
    df = pd.DataFrame({"v": np.r_[x, y], "arm": np.r_[np.ones_like(x), np.zeros_like(y)],
                       "prompt": np.r_[sx, sy]})  # fmt: skip
    fit = smf.ols("v ~ arm + C(prompt)", df).fit()
    assert e.diff == pytest.approx(fit.params["arm"], rel=1e-10)
    assert e.se == pytest.approx(fit.bse["arm"], rel=0.1)
    assert e.design_effect < 0.8  # large prompt effects: within-prompt is more precise


def test_within_prompt_interval_covers_at_its_level():
    rng = np.random.default_rng(1)
    hits = [primary.within_prompt(*simulate(rng, 10, 8, 0.25), 0.3, 0.05) for _ in range(800)]
    coverage = np.mean([e.ci_low <= 0.25 <= e.ci_high for e in hits])
    assert 0.93 <= coverage <= 0.97, coverage


def iut_equivalent(rng, prompts, replicates, diffs, margin_sd=0.3, alpha=0.05) -> bool:
    endpoints = {
        f"e{i}": primary.within_prompt(*simulate(rng, prompts, replicates, d), margin_sd, alpha)
        for i, d in enumerate(diffs)
    }
    return primary.primary_verdict(endpoints, alpha, 10)["verdict"] == "equivalent"


def test_the_primary_claim_keeps_its_size_at_the_margin():
    """One of four endpoints truly differs by the margin (0.3 within-prompt SDs), the rest not:
    the intersection-union test declares equivalence at most alpha of the time, although no
    endpoint's TOST is adjusted for the other three."""
    rng = np.random.default_rng(2)
    at_margin = 0.3 * SD_WITHIN
    runs = 1500
    rate = np.mean([iut_equivalent(rng, 10, 40, [at_margin, 0, 0, 0]) for _ in range(runs)])
    assert rate <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / runs), rate


def pilot(se_scale: float = 1.0) -> primary.Endpoint:
    """An endpoint as a 10-prompt x 10-replicate pilot of unit within-prompt SD would give it
    (`se_scale` > 1: an endpoint with missing values)."""
    se = SD_WITHIN * np.sqrt(2 / 100) * se_scale
    return primary.Endpoint(
        n_treatment=100, n_control=100, prompts=10, sd=0.0, sd_within=SD_WITHIN, diff=0.0,
        se=se, df=180.0, ci_low=0.0, ci_high=0.0, tost_low=0.0, tost_high=0.0,
        margin=0.3 * SD_WITHIN, p_tost=0.0, p_diff=0.0, design_effect=0.0, interaction_sd=0.0,
        varying=200,
    )  # fmt: skip


def test_the_planned_replicates_give_the_planned_power():
    """The plan from a pilot's SEs: at no true difference, the claim over four endpoints is
    shown at least 80% of the time with the replicates it asks for, and not with a quarter of
    them; an endpoint with missing values (a larger SE) asks for more."""
    rng = np.random.default_rng(3)
    (row,) = primary.plan([pilot()] * 4, 0.05, 0.8, 10, 10, [10])
    runs = 600
    power = np.mean([iut_equivalent(rng, 10, row["replicates"], [0] * 4) for _ in range(runs)])
    assert power >= 0.8 - 2 * np.sqrt(0.8 * 0.2 / runs), (row, power)
    few = np.mean([iut_equivalent(rng, 10, row["replicates"] // 4, [0] * 4) for _ in range(200)])
    assert few < 0.6, few
    (sparse,) = primary.plan([pilot()] * 3 + [pilot(np.sqrt(2))], 0.05, 0.8, 10, 10, [10])
    assert sparse["replicates"] > row["replicates"] * 1.3  # half the values on one endpoint


def test_the_welch_se_keeps_the_size_when_a_noisier_arm_is_unbalanced():
    """Per prompt 15 treatment texts and 120 control texts, alternating with 120 and 15, and
    the treatment arm six times noisier: a pooled variance gets the SE wrong (size 0.24 at the
    margin in an audit); each cell's own variance keeps the TOST's size at alpha."""
    rng = np.random.default_rng(5)
    sizes = [(15, 120) if p % 2 else (120, 15) for p in range(10)]
    hits = []
    for _ in range(1500):
        sx = np.concatenate([[p] * a for p, (a, _) in enumerate(sizes)])
        sy = np.concatenate([[p] * b for p, (_, b) in enumerate(sizes)])
        x, y = rng.normal(0, 3.0, sx.size), rng.normal(0, 0.5, sy.size)
        e = primary.within_prompt(x, y, sx, sy, 0.3, 0.05)
        x = x + e.margin  # the true difference at the margin (the margin's unit is estimated)
        hits.append(primary.within_prompt(x, y, sx, sy, 0.3, 0.05).p_tost < 0.05)
    assert np.mean(hits) <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / 1500), np.mean(hits)


def test_the_interaction_estimate_sees_prompts_that_differ_and_not_noise():
    rng = np.random.default_rng(4)
    quiet = [
        primary.within_prompt(*simulate(rng, 20, 16, 0.0), 0.3, 0.05).interaction_sd
        for _ in range(50)
    ]
    loud = [primary.within_prompt(*simulate(rng, 20, 16, 0.0, interaction=0.5), 0.3, 0.05).interaction_sd
            for _ in range(50)]  # fmt: skip
    assert np.median(quiet) < 0.1 and abs(np.median(loud) - 0.5) < 0.15


def test_holm_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    p = np.array([0.01, 0.04, 0.03, 0.2, float("nan")])
    ours = primary.holm(p)
    ref = multipletests(p[:4], method="holm")[1]
    assert np.allclose(ours[:4], ref) and np.isnan(ours[4])


def test_tost_power_normal_approximation():
    # margin 3 SEs at alpha 0.05: 2 Phi(3 - 1.645) - 1
    assert primary.tost_power(3.0, 0.05) == pytest.approx(
        2 * stats.norm.cdf(3 - 1.6449) - 1, abs=1e-3
    )
    assert primary.tost_power(1.0, 0.05) == 0.0


def test_an_endpoint_with_no_variation_is_counted_out_not_equivalent():
    """A constant endpoint (or one whose values vary in a single text) has no test: it is named
    "no variation", it never makes the claim "equivalent", and the claim counts the endpoints
    that carried information."""
    rng = np.random.default_rng(6)
    x, y, sx, sy = simulate(rng, 10, 200, 0.0)
    flat = primary.within_prompt(np.zeros_like(x), np.zeros_like(y), sx, sy, 0.3, 0.05)
    assert flat.se == 0 and np.isnan(flat.p_tost) and not flat.informative(10)
    one = np.zeros_like(x)
    one[0] = 1.0  # a single odd text: a t interval on it is no interval
    lone = primary.within_prompt(one, np.zeros_like(y), sx, sy, 0.3, 0.05)
    assert lone.varying == 1 and not lone.informative(10)
    real = primary.within_prompt(x, y, sx, sy, 0.3, 0.05)
    v = primary.primary_verdict({"real": real, "flat": flat, "lone": lone}, 0.05, 10)
    assert v["no_variation"] == ["flat", "lone"] and v["informative"] == 1
    assert v["verdict"] == "equivalent" and list(v["p_diff_holm"]) == ["real"]
    only_flat = primary.primary_verdict({"flat": flat}, 0.05, 10)
    assert only_flat["verdict"] == "inconclusive" and only_flat["informative"] == 0


K = 4  # texts per group of a group endpoint


def design(rng, replicates: int, diff: float = 0.0):
    """Two per-text endpoints and one group endpoint (the mean of K consecutive replicates,
    complete groups only, as ab-metrics forms them) on 10 prompts."""
    out = {}
    for name in ("a", "b"):
        out[name] = simulate(rng, 10, replicates, diff)
    x, y, s, _ = simulate(rng, 10, replicates, diff)
    groups = replicates // K
    keep = (np.arange(s.size) % replicates) < groups * K
    gx = x[keep].reshape(-1, K).mean(axis=1)
    gy = y[keep].reshape(-1, K).mean(axis=1)
    gs = s[keep].reshape(-1, K)[:, 0]
    out["g"] = (gx, gy, gs, gs)
    return {n: primary.within_prompt(*v, 0.3, 0.05, K if n == "g" else 1) for n, v in out.items()}


def test_the_plan_counts_complete_groups_and_reaches_its_power_in_simulation():
    """From a 32-replicate pilot, the plan's replicates give the stated power in simulation
    (within Monte Carlo error): the Bonferroni bound at least, and the simulated power of the
    claim (independent endpoints here) about exactly. A group endpoint counts floor(r / K)
    groups: 77 replicates are 19 groups of 4, not 19.25."""
    rng = np.random.default_rng(7)
    pilot_run = list(design(rng, 32).values())
    (row,) = primary.plan(pilot_run, 0.05, 0.8, 10, 32, [10])
    r = row["replicates"]
    g = pilot_run[2]
    assert primary.scale(g, 77, 10, 32, 10) == pytest.approx(19 / 8)
    scales = [primary.scale(e, r, 10, 32, 10) for e in pilot_run]
    bound = primary.iut_power(pilot_run, 0.05, scales)
    assert bound == pytest.approx(row["power"]) and bound >= 0.8
    expected = primary.simulated_power(pilot_run, np.eye(3), 0.05, rng, scales, sims=50_000)
    runs = 500
    shown = np.mean([primary.primary_verdict(design(rng, r), 0.05, 10)["verdict"] == "equivalent"
                     for _ in range(runs)])  # fmt: skip
    mc = np.sqrt(0.2 * 0.8 / runs)
    assert shown >= 0.8 - 2 * mc, (r, shown)
    assert abs(shown - expected) < 3 * mc + 0.03, (r, shown, expected)  # + the pilot's SE error


def test_the_simulated_power_rises_with_correlation_and_matches_independence_exactly():
    e = pilot()
    rng = np.random.default_rng(8)
    independent = primary.simulated_power([e, e], np.eye(2), 0.05, rng, sims=100_000)
    assert independent == pytest.approx(primary.tost_power(e.margin_se, 0.05) ** 2, abs=0.01)
    together = primary.simulated_power([e, e], np.array([[1, 0.9], [0.9, 1]]), 0.05, rng)
    assert together > independent + 0.05


def test_a_confirmatory_plan_reaches_both_powers_at_its_n():
    e = pilot()  # SE = sqrt(2/100) SD at 10 x 10
    r = primary.confirmatory_replicates(e, 0.2, 0.05, 0.9, 10)
    unit = lambda rr: 0.2 / (np.sqrt(2 / (10 * rr)))  # noqa: E731  the effect in SEs
    assert (
        primary.difference_power(unit(r), 0.05) >= 0.9 and primary.tost_power(unit(r), 0.05) >= 0.9
    )
    assert (
        min(primary.difference_power(unit(r - 1), 0.05), primary.tost_power(unit(r - 1), 0.05))
        < 0.9
    )
    # two-sample normal theory: n = 2 (z_.95 + z_.95)^2 / 0.2^2 = 541.2 per arm for the TOST
    assert 10 * r == pytest.approx(541.2, abs=10)
