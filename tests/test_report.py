"""The report strand on hand-made numbers: rendering, figures, and the comparison `verify` uses.
(The real pipeline's report, verify and tamper checks are in the slow test_pipeline.)"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from entropy_lab.config import parse_params
from entropy_lab.report import figures
from entropy_lab.report.markdown import render
from entropy_lab.report.numbers import harvest_numbers, normalise, profile, teaching_rows
from entropy_lab.report.verify import diff


def block(tvd: float | None, records: int = 5) -> dict:
    return {
        "records": records,
        "exact_records": records if tvd is not None else 0,
        "tvd": tvd,
        "tvd_ci": None if tvd is None or records == 1 else [tvd - 0.1, tvd + 0.1],
        "kl": 1.5,
        "kl_ci": [1.2, 1.8],
        "kl_infinite_share": 0.0,
        "tvd_conditional": 0.2,
        "tvd_conditional_ci": [0.15, 0.25],
        "kl_conditional": 0.4,
        "kl_conditional_ci": [0.3, 0.5],
        "entropy_ratio": 0.9,
        "entropy_ratio_ci": [0.85, 0.95],
        "support_mass": 0.6,
        "support_mass_ci": [0.5, 0.7],
        "valid_rate": 0.55,
        "valid_rate_ci": [0.5, 0.6],
        "parsed_rate": 0.6,
        "gof_pass_rate": 0.0,
        "gof_pass_ci": [0.0, 0.5],
        "gof_pass_valid_rate": 0.4,
        "gof_pass_valid_ci": [0.1, 0.7],
        "gof_tested": records,
        "agreement_reject_rate": 0.0,
        "agreement_reject_ci": [0.0, 0.5],
        "sampled_records": records,
        "tvd_median": tvd,
        "tvd_median_ci": None if tvd is None or records == 1 else [tvd - 0.05, tvd + 0.05],
        "close_rate": None if tvd is None else 0.2,
        "close_ci": None if tvd is None else [0.01, 0.7],
        "tvd_sampled": None if tvd is None else tvd + 0.05,
        "tvd_sampled_ci": None if tvd is None or records == 1 else [tvd - 0.05, tvd + 0.15],
    }


def seeded_block(accuracy: float) -> dict:
    return {
        "records": 5,
        "accuracy": accuracy,
        "accuracy_ci": [accuracy - 0.05, accuracy + 0.05],
        "mode_accuracy": 0.3,
        "valid_rate": 0.9,
        "gof_pass_rate": 0.2,
        "gof_pass_ci": [0.01, 0.7],
        "gof_pass_valid_rate": 0.2,
        "gof_pass_valid_ci": [0.01, 0.7],
    }


def endpoint(d: float, reachable: bool = True) -> dict:
    return {"n_treatment": 160, "n_control": 160, "prompts": 10, "sd": 1.2, "sd_within": 1.0,
            "diff": d, "se": 0.1, "df": 300, "ci_low": d - 0.2, "ci_high": d + 0.2,
            "tost_low": d - 0.16, "tost_high": d + 0.16,
            "margin": 0.3, "p_tost": 0.01 if abs(d) < 0.1 else 0.3, "p_diff": 0.5,
            "design_effect": 0.7, "interaction_sd": 0.05, "d": d, "reachable": reachable,
            "varying": 150, "group_size": 1, "defined_share": 1.0}  # fmt: skip


def primary_result(verdict: str) -> dict:
    endpoints = {
        "n_tokens": endpoint(0.02),
        "echo": endpoint(0.05 if verdict == "equivalent" else 0.25),
    }
    return {
        "endpoints": endpoints,
        "verdict": verdict,
        "p_iut": 0.01 if verdict == "equivalent" else 0.3,
        "differ": [],
        "not_shown_equivalent": [] if verdict == "equivalent" else ["echo"],
        "p_diff_holm": {"n_tokens": 0.9, "echo": 0.9},
        "no_variation": [],
        "informative": 2,
        "prompts": 10,
        "replicates": 16,
        "power": 0.55,
        "power_simulated": 0.62,
        "plan": [
            {
                "prompts": 10,
                "replicates": 40,
                "samples_per_arm": 400,
                "power": 0.81,
                "power_simulated": 0.86,
            }
        ],
    }


def ab_test(d: float | None, verdict: str, ci: bool = True, p: float = 0.3) -> dict:
    return {
        "level": "sample",
        "n": [40, 40],
        "diff": None if d is None else d / 10,
        "d": d,
        "d_ci": [d - 0.3, d + 0.3] if d is not None and ci else [None, None],
        "p": None if d is None else p,
        "p_adj": None if d is None else 0.5,
        "p_tost_adj": 0.01,
        "alpha_eff": None if d is None else 0.0125,
        "mde_d": None if d is None else 0.63,
        "equivalence_reachable": d is not None,
        "lmm_status": "" if d is None else "boundary",
        "p_lmm": None if d is None else 0.4,
        "verdict": verdict,
    }


def calibration(k: int, n: int, status: str) -> dict:
    return {
        "splits": 2,
        "tests": n,
        "rejections": k,
        "rate": k / n,
        "ci_low": 0.01,
        "ci_high": 0.2,
        "design_effect": 1.5,
        "effective_n": n / 1.5,
        "per_split": {"m/64/aa1": k, "m/64/aa2": 0},
        "status": status,
        "differences_after_correction": 0,
        "p_values": sorted(float(x) for x in np.linspace(0.01, 0.99, n)),
    }


def energy(p: float, power: float, mauve: float | None) -> dict:
    return {
        "n": [160, 160],
        "energy": 0.01,
        "p": p,
        "p_adj": p,
        "alpha_eff": 0.025,
        "power": power,
        "mauve": mauve,
        "mauve_null_median": None if mauve is None else 0.98,
        "mauve_p": None if mauve is None else 0.35,
        "verdict": "difference" if p < 0.05 else "inconclusive",
    }


@pytest.fixture
def numbers(params_data) -> dict:
    sts = {
        "frequency": {"passed": True, "uniformity_p": 0.4},
        "runs": {"passed": False, "uniformity_p": 1e-6},
    }
    source = {
        "min_entropy": 3.2,
        "min_entropy_estimator": "t_tuple (samples)",
        "assessment": {
            "h_original": 3.2,
            "h_bitstring": 0.41,
            "original": {"most_common_value": 3.4, "t_tuple": 3.2, "lrs": 3.7},
            "bitstring": {"multi_mmc": 0.41, "lag": 0.6},
        },
        "raw_per_32_bytes": 100,
        "sts": sts,
        "bytes_conditioned": {"chi_square_p": 0.5, "serial_correlation": 0.001},
        "bytes_raw": {"shannon_bits_per_byte": 4.7},
    }
    fams = {"dice": block(0.5), "coin": block(0.2, records=1), "uuid": block(None)}
    lengths = {
        "1-2": {"records": 4, "support_mass": 0.02, "valid_rate": 0.01},
        "21-40": {"records": 2, "support_mass": 0.0, "valid_rate": 0.0},
        "41+": {"records": 1, "support_mass": None, "valid_rate": 0.0},
        "6-10": {"records": 3, "support_mass": 0.0, "valid_rate": 0.0},
    }
    family = {"validation": block(0.5) | {"families": fams, "answer_length": lengths}}
    fams = {"dice": block(0.25), "coin": block(0.1, records=1), "uuid": block(None)}
    lengths = {  # in JSON's (string) order: the report puts them shortest first
        "1-2": {"records": 4, "support_mass": 0.8, "valid_rate": 0.75},
        "21-40": {"records": 2, "support_mass": 0.05, "valid_rate": 0.04},
        "41+": {"records": 1, "support_mass": None, "valid_rate": 0.0},
        "6-10": {"records": 3, "support_mass": 0.5, "valid_rate": 0.5},
    }
    adapted = {"validation": block(0.3) | {"families": fams, "answer_length": lengths}}
    curve = [
        {
            "step": 0,
            "val_support_mass": 0.001,
            "train_support_mass": 0.002,
            "val_tvd": 1.0,
            "train_tvd": 0.99,
            "families": {"dice": 0.001},
        },
        {
            "step": 100,
            "val_support_mass": 0.6,
            "train_support_mass": 0.9,
            "val_tvd": 0.4,
            "train_tvd": 0.1,
            "families": {"dice": 0.6},
        },
    ]
    return normalise(
        {
            "profile": profile(parse_params(params_data)),
            "harvest": harvest_numbers({"jitter": source}),
            "ab": {
                "primary": {
                    "m/64/entropy_seed_vs_prng_seed": primary_result("equivalent"),
                    "m/64/entropy_stream_vs_prng_stream": primary_result("inconclusive"),
                },
                "deviations": {
                    "defined-for-every-text": {
                        "m/64/entropy_seed_vs_prng_seed": primary_result("inconclusive"),
                    }
                },
                "verdicts": {
                    "entropy_seed_vs_prng_seed": {
                        "difference": 0,
                        "trivial difference": 1,
                        "equivalent": 1,
                        "inconclusive": 1,
                        "no variation": 1,
                        "n = 1": 0,
                    },
                    "aa1_a_vs_aa1_b": {
                        "difference": 0,
                        "trivial difference": 0,
                        "equivalent": 0,
                        "inconclusive": 2,
                        "no variation": 0,
                        "n = 1": 0,
                    },
                },
                "families": {"main": {"p_perm_tests": 3, "p_perm_declared": 1}},
                "aa": {
                    "pairs": 1,
                    "per_metric": calibration(1, 20, "consistent with alpha"),
                    "distribution": calibration(0, 2, "consistent with alpha"),
                },
                "tests": {
                    "m/64/entropy_seed_vs_prng_seed": {
                        "repeat_rate": ab_test(0.1, "equivalent"),
                        "distinct_1": ab_test(0.5, "inconclusive", ci=False),
                        "echo": ab_test(0.2, "trivial difference"),
                        "early_stop": ab_test(None, "no variation"),
                    },
                },
                "distribution": {
                    "m/64/entropy_seed_vs_prng_seed": {
                        "embedding": energy(0.01, 0.9, 0.97),
                        "ngram": energy(0.4, 0.5, None),
                    },
                },
                "arms": {
                    "m/64": {
                        "prng_seed": {
                            "n": 160,
                            "empty_pct": 25.0,
                            "repetition_pct": 12.5,
                            "self_bleu4": 0.31,
                            "self_bleu4_ci": [0.28, 0.34],
                            "self_bleu4_groups": 16,
                            "zipf": 1.07,
                            "mean_tokens": 64.0,
                        },
                        "aa1_a": {
                            "n": 160,
                            "empty_pct": 20.0,
                            "repetition_pct": 10.0,
                            "self_bleu4": 0.3,
                            "self_bleu4_ci": None,
                            "self_bleu4_groups": 4,
                            "zipf": 1.1,
                            "mean_tokens": 64.0,
                        },
                    }
                },
            },
            "teaching": {
                "m": {
                    "variants": {"base": family, "ce_multisample": family, "ce_kl": adapted},
                    "primary": {
                        "variant": "ce_kl",
                        "reference": "ce_multisample",
                        "splits": {
                            "validation": {
                                "mean": -0.2,
                                "ci": [-0.3, -0.1],
                                "n": 5,
                                "p": 0.01,
                                "p_holm": 0.01,
                                "verdict": "lower",
                            }
                        },
                    },
                    "transfer": {
                        "dice": {
                            "ce_kl - base": {"mean": -0.1, "ci": None, "n": 2},
                            "ce_kl - ce_multisample": {"mean": 0.2, "ci": [0.1, 0.3], "n": 10},
                        },
                        "coin": {
                            "ce_kl - ce_multisample": {"mean": -0.2, "ci": [-0.3, -0.1], "n": 10}
                        },
                    },
                    "short": {"validation": {"uuid": 1}, "test_family": {}},
                    "paired": {
                        "validation": {
                            "ce_kl - base": {
                                "tvd": {"mean": -0.7, "ci": [-0.8, -0.6], "n": 5},
                                "kl": {"mean": -3.0, "ci": [-4.0, -2.0], "n": 5},
                                "valid_rate": {"mean": 0.55, "ci": [0.5, 0.6], "n": 5},
                            },
                            "ce_kl - ce_multisample": {
                                "tvd": {"mean": -0.2, "ci": [-0.3, -0.1], "n": 5},
                                "kl": {"mean": -0.5, "ci": [-0.9, 0.1], "n": 4},
                                "valid_rate": {"mean": 0.05, "ci": [-0.1, 0.2], "n": 5},
                            },
                        }
                    },
                    "temperature": {
                        "base": {t: block(1.0) | {"valid_rate": 0.0} for t in ("0.7", "1")},
                        "ce_kl": {"0.7": block(0.2), "1": block(0.3)},
                    },
                    "seeded": {
                        v: {
                            "validation": seeded_block(acc)
                            | {"families": {"dice": seeded_block(acc)}}
                        }
                        for v, acc in (("base", 0.01), ("seeded", 0.62))
                    },
                }
            },
            "training": {"m": {"ce_multisample": curve, "ce_kl": curve}},
            "sizes": {"m": 859008},
        }
    )


@pytest.fixture
def prov() -> dict:
    entry = {
        "stage": "s",
        "manifest": "x/manifest.json",
        "digest": "d" * 64,
        "params_sha256": "p" * 64,
        "inputs": {"tasks": "a" * 64},
        "seeds": {},
        "outs_md5": {"x": "b" * 32},
    }
    weights = {"weights": {"kjv-tiny": {"model.safetensors": "c" * 64}}}
    training = {f"training/m/{v}": entry for v in ("ce_multisample", "ce_kl")}
    return {
        "profile": entry | weights,
        "harvest": entry,
        "ab": entry,
        "teaching/m": entry,
        **training,
    }


def test_report_renders_every_section_from_the_numbers(numbers, prov):
    md = render(numbers, prov)
    assert md == render(copy.deepcopy(numbers), prov)
    reordered = copy.deepcopy(numbers)  # metrics.json stores keys sorted: the same report
    reordered["training"]["m"] = dict(reversed(reordered["training"]["m"].items()))
    assert render(reordered, prov) == md
    for heading in ("## Findings", "## Profile", "## 1.", "## 2.", "### The primary claim",
                    "### Secondary comparisons", "## 3.", "### m"):  # fmt: skip
        assert heading in md
    assert md.count("*Source:* stage `s` · manifest digest `dddddddddddd`") == 6
    assert "kjv-tiny model.safetensors `cccccccccccc`" in md
    assert "| jitter | 3.2 | t_tuple (samples) | 3.2 | 3.28 | 100 | 1/2 |" in md  # 8 × 0.41
    assert "| validation / dice | 0.5 [0.4, 0.6] | 0.5 [0.4, 0.6] | 0.25 [0.15, 0.35] |" in md
    # fewer prompts than evaluate.min_records_ci: the point estimate and its n, no CI
    assert (
        "| validation / coin | 0.2 (n = 1, no CI) | 0.2 (n = 1, no CI) | 0.1 (n = 1, no CI) |" in md
    )
    assert "| validation / uuid | valid 55%, pass 0% |" in md
    # exact and sampled TVD, each labelled; the graded criterion; validity; GOF full space first
    assert (
        "| ce_kl | validation | 5 (5) | 0.3 [0.2, 0.4] | 0.3 [0.25, 0.35] | 20% [1, 70] "
        "| 1.5 [1.2, 1.8] | 0% | 0.35 [0.25, 0.45] | 55% [50, 60] | 0% [0, 50] | 40% [10, 70] |"
    ) in md
    assert "GOF pass, valid answers only (diagnostic)" in md
    assert "like the GOF pass rate it saturates" not in md  # ce_kl has 20% within 0.1
    # a family short of the quota is named; the per-family transfer that pooling hides is said
    assert "no more distinct prompts in that split (no parameters: one prompt per template): " \
        "validation: uuid 1 (of " in md  # fmt: skip
    assert ("Per held-out family (2 with an exact TVD; exploratory): dice 0.2 [0.1, 0.3] "
            "(higher); coin -0.2 [-0.3, -0.1] (lower): the families go opposite ways") in md  # fmt: skip
    assert "median 7% of distributions at N = 1000" in md
    # the primary teaching comparison, Holm over splits; every other pair exploratory
    assert "| validation | -0.2 [-0.3, -0.1] | 0.01 | 0.01 | lower |" in md
    assert "Exploratory, not adjusted for multiplicity" in md
    assert (
        "| validation | ce_kl - ce_multisample | -0.2 [-0.3, -0.1] | lower "
        "| -0.5 [-0.9, 0.1] | no difference at 95% | 0.05 [-0.1, 0.2] | no difference at 95% |"
    ) in md
    assert "| ce_kl / validation | 0.6 [0.5, 0.7] | 0.2 [0.15, 0.25] |" in md  # diagnostics
    assert "| entropy_seed vs prng_seed | 40 | 0.63 | 0 | 1 | 1 | 1 | 1 | 0 | 3 of 4 |" in md
    assert "| per-metric | 1 of 20 | 0.05 [0.01, 0.2] | 1.5 | consistent with alpha |" in md
    assert "fits: 0 ok, 3 boundary" in md
    assert "| repeat_rate | E |" in md and "| early_stop | – |" in md and "| echo | T |" in md
    # MAUVE beside its null at the same n; Self-BLEU4 with a CI over groups; empty texts
    assert (
        "| entropy_seed vs prng_seed | m/64 | 0.01 / 0.9 | 0.4 / 0.5 | 0.97 (null 0.98, p 0.35) |"
        in md
    )
    assert (
        "| m/64 | prng_seed | 160 | 25 | 12.5 | 0.31 [0.28, 0.34] (16 groups) | 1.07 | 64 |" in md
    )
    assert "aa1_a |" not in md  # A/A arms are in the calibration, not the per-arm table
    assert "kjv-tiny is a small byte-level model" in md  # the default profile says what it is
    # the primary claim as declared (commit, date), each endpoint that varies counted
    assert "The primary claim was declared in commit 666a592 (2026-12-07" in md
    assert (
        "pool seeds vs PRNG seeds: equivalent within ±0.3 within-prompt SD on all 2 "
        "endpoints at length 64 (largest TOST p 0.01)."
    ) in md
    assert (
        "pool per-token streams vs PRNG streams: not shown equivalent at length 64 on 1 of the 2 "
        "endpoints that vary (echo: d = 0.25 [0.05, 0.45]), and none differs after Holm's correction."
    ) in md
    assert "Scope: kjv-tiny on these 10 prompts" in md and "margin (raw scale)" in md
    assert "had power at least 0.55 (Bonferroni bound), 0.62 simulated" in md
    assert "needs 40 replicates" in md
    assert "| pool seeds vs PRNG seeds | m/64 | 10 | 40 | 400 | 0.81 | 0.86 |" in md  # the plan
    # the deviation beside it, labelled with its commit and reason
    assert "### Deviation `defined-for-every-text`: chosen after the data" in md
    assert "Commit 5c02df9 replaced the declared endpoints" in md
    # the temperature sweep with CIs, and no "closest" where the CIs overlap
    assert "| ce_kl | 0.2 [0.1, 0.3] · 55% [50, 60] · 0% [0, 50] |" in md
    assert "no temperature is closest beyond sampling error (lowest TVD at T = 0.7" in md
    assert "| seeded | validation | 0.62 [0.57, 0.67] | 0.3 | 90% | 20% [1, 70] | 5 |" in md
    assert "seeded on validation: 0.62 vs 0.3, above the mode baseline: it uses u." in md
    assert "This profile evaluates one model (m)" in md
    assert "| ce_multisample | support mass | validation | 0.001 | 0.6 |" in md  # the SFT curve
    assert "| ce_multisample | support mass | train | 0.002 | 0.9 |" in md
    assert "| ce_multisample | TVD exact | validation | 1 | 0.4 |" in md  # steps are chosen by it
    assert "| ce_multisample | TVD exact | train | 0.99 | 0.1 |" in md
    assert "| dice | 0.6 | 0.6 |" in md  # per family at the last step
    assert "| 1-2 | 4 | 0.02 · 1% | 0.02 · 1% | 0.8 · 75% |" in md  # against answer length
    assert md.index("| 1-2 | 4 |") < md.index("| 6-10 | 3 |") < md.index("| 21-40 | 2 |")
    numbers["teaching"]["m"]["variants"]["ce_kl"]["validation"]["families"]["coin"]["tvd"] = 0.123
    assert "0.123 (n = 1, no CI)" in render(numbers, prov)
    # a run that changed the declared fields says so: post hoc, not "declared before"
    numbers["profile"]["ab"]["primary"]["declared"]["as_declared"] = False
    md = render(numbers, prov)
    assert "primary claim was declared in commit" not in md and "post hoc here" in md


def test_the_report_leads_with_its_findings(numbers, prov):
    """The first 40 lines hold a finding per strand, each with a command that recomputes it,
    and name the views `dvc plots` draws."""
    head = "\n".join(render(numbers, prov).splitlines()[:40])
    for finding in ("**Harvest.**", "**Seeding study:", "**Seeding study, deviation",
                    "**Seeding study, secondary", "**Teaching randomness (m).**",
                    "**Entropy-driven mode (m).**"):  # fmt: skip
        assert finding in head, finding
    assert head.count("Reproduce: `") >= 5
    assert "`dvc repro -f -s ab-analyze`" in head and "`dvc repro -f -s evaluate@m`" in head
    assert "`dvc plots show`" in head and "runs/<stage>.json" in head
    # the declared variant on every split, sampled and exact each labelled
    assert (
        "ce_kl, sampled at T = 1 (200 answers per prompt): validation: valid 55% [50, 60] sampled"
        in head
    )
    assert "TVD sampled 0.35 [0.25, 0.45], TVD exact 0.3 [0.2, 0.4]" in head


def test_data_dependent_sentences_follow_the_data():
    """Each sentence that depends on the data is printed only where the data supports it."""
    from entropy_lab.report import findings as f

    calm = {"pairs": 20, "per_metric": calibration(3, 600, "consistent with alpha")}
    none = {"entropy_seed_vs_prng_seed": {"difference": 0, "inconclusive": 30}}
    some = {"entropy_seed_vs_prng_seed": {"difference": 2, "inconclusive": 28}}
    said = " ".join(f.aa_sentences(calm, none))
    assert "supports reading" not in said and "no difference verdict for the calibration" in said
    assert "supports reading the 2 difference verdicts" in " ".join(f.aa_sentences(calm, some))
    wild = {"pairs": 20, "per_metric": calibration(90, 600, "anti-conservative")}
    assert "cannot be taken at face value" in " ".join(f.aa_sentences(wild, some))

    def t(tvd, lo, hi):
        return {"tvd": tvd, "tvd_ci": [lo, hi]}

    ratio = {"entropy_ratio": 1.02, "entropy_ratio_ci": [0.95, 1.1], "exact_records": 5}
    overlap = f.temperature_sentence(
        "v", {"0.7": t(0.2, 0.1, 0.3), "1": t(0.25, 0.15, 0.35)}, ratio
    )
    assert "closest to the target" not in overlap and "not calibrated" not in overlap
    assert "T = 1 is not distinguishable" in overlap and "as random as the target" in overlap
    apart = f.temperature_sentence("v", {"0.7": t(0.2, 0.1, 0.3), "1": t(0.6, 0.5, 0.7)}, ratio)
    assert "closest to the target at T = 0.7" in apart and "not calibrated" in apart
    hotter = {"entropy_ratio": 1.3, "entropy_ratio_ci": [1.2, 1.4], "exact_records": 5}
    assert "more random than the target" in f.temperature_sentence(
        "v", {"1": t(0.2, 0.1, 0.3)}, hotter
    )
    # a perfect variant (TVD 0) is the closest, not the last
    summary = {"a": {"validation": {"tvd": 0.0}}, "b": {"validation": {"tvd": 0.4}},
               "c": {"validation": {"tvd": None}}}  # fmt: skip
    assert f.best_variant(summary) == "a"


FAMILIES = (  # (family, support) in split order: too many answers for the panels, and none
    ("coin", ["H", "T"]),
    ("integer_range", [str(i) for i in range(18)]),
    ("uuid", []),
    ("dice", list("123456")),
)


def eval_records(variants: list[str], sampled: bool = True) -> pd.DataFrame:
    """Evaluation records: two validation prompts of every family per variant, at T = 1 and
    (sampled) again at T = 0.7; unsampled (an untaught model): no counts, `samples == 0`."""
    rows = []
    for v in variants:
        for i, (family, support) in enumerate(FAMILIES * 2):
            uniform = [1 / len(support)] * len(support) if support else []
            for temperature in (1.0, 0.7) if sampled else (1.0,):
                rows.append({
                    "id": f"validation/{i:06d}", "temperature": temperature, "family": family,
                    "variant": v, "split": "validation", "support": support, "target": uniform,
                    "model": [q / 2 for q in uniform], "support_mass": 0.5,
                    "counts": [int(100 * q) for q in uniform] if sampled else [],
                    "samples": 200 if sampled else 0,
                })  # fmt: skip
    return pd.DataFrame(rows)


def with_untaught(numbers: dict) -> dict:
    """The numbers with a second model, `u`, evaluated untaught: base alone, the exact view at
    T = 1, no samples (no validity or GOF), no seeded prompts, no SFT curves."""
    n = copy.deepcopy(numbers)
    base = copy.deepcopy(n["teaching"]["m"]["variants"]["base"])
    for b in [base["validation"], *base["validation"]["families"].values()]:
        b |= {"valid_rate": None, "valid_rate_ci": None, "gof_pass_rate": None, "gof_pass_ci": None}
    n["teaching"]["u"] = {"variants": {"base": base}, "temperature": {"base": {"1": base["validation"]}},
                          "seeded": {}, "paired": {}, "primary": None, "transfer": {}}  # fmt: skip
    n["profile"]["teaching"]["untaught"] = ["u"]
    n["sizes"]["u"] = 10**8
    return n


def test_figures_are_byte_identical_across_runs(numbers, tmp_path):
    n = with_untaught(numbers)
    records = {"m": eval_records(["base", "ce_multisample", "ce_kl"]),
               "u": eval_records(["base"], sampled=False)}  # fmt: skip
    for run in ("a", "b"):
        figures.save_all(n, records, tmp_path / run)
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "b").iterdir())
    assert len(files) == 2 * 13  # PNG and SVG of every figure
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_save_all_writes_exactly_the_figures_the_report_links(numbers, prov, tmp_path):
    import re

    n = with_untaught(numbers)
    records = {"m": eval_records(["base", "ce_multisample", "ce_kl"]),
               "u": eval_records(["base"], sampled=False)}  # fmt: skip
    figures.save_all(n, records, tmp_path)
    md = render(n, prov | {"teaching/u": prov["teaching/m"]})
    linked = set(re.findall(r"\]\(figures/([^)]+)\)", md))
    assert linked == {p.name for p in tmp_path.iterdir()}
    # the untaught model: no sampled frequencies, no temperature figure (T = 1 alone)
    assert {"teaching_tvd_u.png", "teaching_probs_u.png", "teaching_size.png"} <= linked
    assert not {"teaching_samples_u.png", "teaching_temperature_u.png"} & linked
    assert {"ab_forest.png", "ab_forest_exploratory.png", "teaching_samples_m.png"} <= linked


def test_the_sampled_panels_are_each_familys_first_prompt_with_few_answers():
    records = figures.at_temperature_one(eval_records(["base", "ce_kl"]))
    # integer_range's first prompt has 18 answers, uuid's no enumerable support
    assert figures.sample_panel_records(records) == ["validation/000000", "validation/000003"]
    many = pd.concat([records.assign(family=records.family + str(j), id=records.id + str(j))
                      for j in range(4)])  # fmt: skip
    assert len(figures.sample_panel_records(many)) == figures.SAMPLE_PANELS


def test_the_forest_is_the_primary_claims_on_one_scale(numbers):
    claims = numbers["ab"]["primary"]
    inconclusive = claims["m/64/entropy_stream_vs_prng_stream"]
    assert figures.endpoint_status(inconclusive, "echo") == "not shown equivalent"
    assert figures.endpoint_status(inconclusive, "n_tokens") == "equivalent (TOST)"
    flat = inconclusive | {"no_variation": ["echo"], "not_shown_equivalent": []}
    assert figures.endpoint_status(flat, "echo") == "no variation: no test"
    fig = figures.primary_forest(claims, numbers["profile"]["ab"]["primary"])
    panels = [ax for ax in fig.axes if ax.get_xlabel()]
    assert len(panels) == 2 and panels[0].get_xlim() == panels[1].get_xlim()
    assert "equivalent" in panels[0].get_title() and "inconclusive" in panels[1].get_title()


def test_the_aa_summary_says_how_far_from_uniform():
    s = figures.aa_summary([1.0] * 10 + [0.5] * 10)
    assert s == {"n": 20, "mean": 0.75, "ones": 10, "ones_share": 0.5, "conservative": True}
    assert not figures.aa_summary(list(np.linspace(0.01, 0.99, 20)))["conservative"]
    assert figures.aa_summary([])["mean"] is None


def test_families_without_an_exact_tvd_are_named(numbers):
    assert figures.no_exact_tvd(numbers["teaching"]["m"]["variants"]) == ["uuid"]


def test_diff_lists_every_disagreeing_leaf():
    reported = {"a": {"x": 1.0, "y": [1, 2], "v": "equivalent"}, "b": 3, "flag": True}
    assert diff(reported, copy.deepcopy(reported)) == []
    assert diff(reported, {**reported, "a": {**reported["a"], "x": 1.0 + 1e-9}}) == []
    changed = {"a": {"x": 1.01, "y": [1, 2, 3], "v": "difference"}, "c": 4, "flag": 1}
    assert diff(reported, changed) == [
        "a.v: reported 'equivalent', recomputed 'difference'",
        "a.x: reported 1.0, recomputed 1.01",
        "a.y: reported 2 values, recomputed 3",
        "b: reported, but not recomputed",
        "c: recomputed, but missing from the report",
        "flag: reported True, recomputed 1",
    ]


def test_teaching_rows_are_one_per_family(numbers):
    rows = teaching_rows(numbers["teaching"])
    assert len(rows) == 9
    assert rows[0] == {
        "label": "m/validation/dice base",
        "model": "m",
        "variant": "base",
        "split": "validation",
        "family": "dice",
        "tvd": 0.5,
        "tvd_low": 0.4,
        "tvd_high": 0.6,
        "valid_rate": 0.55,
        "gof_pass_rate": 0.0,
    }


def test_the_report_checks_every_pool_ledger_together(tmp_path, monkeypatch):
    from entropy_lab.entropy.pool import Range, write_ledger
    from entropy_lab.errors import UserError
    from entropy_lab.report.numbers import check_ledgers, ledgers

    monkeypatch.chdir(tmp_path)
    write_ledger(Path("data/ab/m/64/ledger.json"), [Range("ab/m/64/entropy_seed", 0, 0, 0, 4)])
    write_ledger(Path("data/tasks/ledger.json"), [Range("tasks/seeded/train", 0, 0, 100, 132)])
    assert check_ledgers(ledgers(tmp_path)) == 2
    write_ledger(Path("data/tasks/ledger.json"), [Range("tasks/seeded/train", 0, 0, 2, 34)])
    with pytest.raises(UserError, match="overlaps"):
        check_ledgers(ledgers(tmp_path))


def test_the_headline_is_a_handful_of_numbers_per_strand(numbers):
    from entropy_lab.report.numbers import headline

    h = headline(numbers)
    leaves = []

    def walk(x):
        if isinstance(x, dict):
            for v in x.values():
                walk(v)
        else:
            leaves.append(x)

    walk(h)
    assert len(leaves) <= 70
    assert h["harvest"] == {"jitter": 3.2}
    assert h["teaching"]["m"]["ce_kl"]["validation"] == {
        "tvd": 0.3,
        "close_rate": 0.2,
        "valid_rate": 0.55,
        "gof_pass_rate": 0.0,
    }
    assert h["teaching"]["m"]["seeded"] == {"validation": {"accuracy": 0.62}}
    assert "entropy_seed_vs_prng_seed" in h["ab"] and "aa_false_positive_rate" in h["ab"]


def test_transfer_is_said_in_words_from_the_confidence_intervals():
    from entropy_lab.report.findings import transfer_verdict

    def b(tvd, lo, hi):
        return {"tvd": tvd, "tvd_ci": [lo, hi]}

    summary = {
        "base": {"validation": b(1, 1, 1), "test_template": b(1, 1, 1), "test_family": b(1, 1, 1)},
        "ce_kl": {
            "validation": b(0.3, 0.2, 0.4),
            "test_template": b(0.35, 0.25, 0.45),
            "test_family": b(0.99, 0.97, 1.0),
        },
    }
    assert transfer_verdict("ce_kl", summary) == (
        "ce_kl: seen 0.3, test_template 0.35 (within sampling error of seen, better than base), "
        "test_family 0.99 (worse than seen, not better than base)"
    )


def test_the_profile_says_which_model_the_seeding_study_ran_on(numbers, prov):
    """kjv-small-teaching's report said of kjv-small that the seeding study ran on it."""
    md = render(numbers, prov)
    assert "kjv-tiny is a small byte-level model" in md
    assert "On it, the seeding study tests" in md and "The seeding study's findings" not in md
    numbers["profile"]["models"]["smollm2-135m-instruct"] = "imported: the GGUF in a wheel"
    numbers["profile"]["ab"]["models"] = ["smollm2-135m-instruct"]
    md = render(numbers, prov)
    assert "On it, the seeding study tests" not in md
    assert "The seeding study's findings are about this model on these prompts only." in md


def test_a_saturated_graded_share_is_said_and_the_median_named():
    from entropy_lab.report import findings

    summary = {
        "base": {"validation": {"close_rate": 0.0}},
        "ce_kl": {"validation": {"close_rate": 0.0}},
    }
    assert "like the GOF pass rate it saturates" in findings.saturated(summary, 0.1)
    summary["ce_kl"]["validation"]["close_rate"] = 0.05
    assert findings.saturated(summary, 0.1) == ""


def test_the_scope_sentence_ignores_endpoints_with_no_variation():
    """The default report named repeat_rate (no variation, no test) as the endpoint whose
    prompt x arm SD was largest."""
    from entropy_lab.report import findings

    def endpoint(interaction):
        return {"sd_within": 1.0, "interaction_sd": interaction}

    primary = {"m/64/a_vs_b": {"prompts": 10, "no_variation": ["repeat_rate"], "endpoints": {
        "repeat_rate": endpoint(0.9), "echo": endpoint(0.1)}}}  # fmt: skip
    said = findings.scope_sentence(primary, {"margin_sd": 0.3}, ["m"])
    assert (
        "reaches 0.1 within-prompt SD (echo), within the margin; still, these prompts only" in said
    )
    primary["m/64/a_vs_b"]["endpoints"]["echo"] = endpoint(0.4)
    assert "(echo), above the margin, so nothing follows" in findings.scope_sentence(
        primary, {"margin_sd": 0.3}, ["m"]
    )
