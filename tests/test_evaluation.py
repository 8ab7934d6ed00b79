"""Evaluation: distances and tests with known answers, and the exact and sampled views of a
model agreeing within sampling error."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from entropy_lab.evaluation import distribution as dist
from entropy_lab.evaluation.common import is_ordinal
from entropy_lab.evaluation.evaluate import evaluate_records, record_stats, rescore
from entropy_lab.evaluation.params import EvaluateSection
from entropy_lab.tasks.families import instantiate
from entropy_lab.training.pretrain import byte_tokenizer


def test_distances():
    p, q = np.array([0.5, 0.5, 0.0]), np.array([0.25, 0.25, 0.5])
    assert dist.tvd(p, q) == pytest.approx(0.5)
    assert dist.kl(p, q) == pytest.approx(np.log(2))
    assert dist.kl(q, p) == np.inf
    assert dist.entropy(p) == pytest.approx(np.log(2))


def test_goodness_of_fit_matches_scipy():
    obs, probs = np.array([18, 30, 52]), np.array([0.2, 0.3, 0.5])
    assert dist.gof_p(obs, probs) == pytest.approx(stats.chisquare(obs, probs * 100).pvalue)
    g = stats.power_divergence(obs, probs * 100, lambda_="log-likelihood").pvalue
    assert dist.gof_p(obs, probs, "log-likelihood") == pytest.approx(g)
    assert dist.gof_p(np.array([5, 5, 1]), np.array([0.5, 0.5, 0.0])) == 0.0  # impossible answer


def test_ks_discrete():
    values, probs = np.array([3.0, 1.0, 2.0]), np.array([0.25, 0.5, 0.25])  # unsorted support
    d, _ = dist.ks_discrete(np.array([0, 10, 0]), values, probs, 99, np.random.default_rng(0))
    assert d == pytest.approx(0.5)  # all mass at 1: F_emp(1) = 1 vs F(1) = 0.5
    rng = np.random.default_rng(1)
    fair = rng.multinomial(400, probs)
    assert dist.ks_discrete(fair, values, probs, 999, rng)[1] > 0.01
    skew = rng.multinomial(400, [0.1, 0.3, 0.6])
    assert dist.ks_discrete(skew, values, probs, 999, rng)[1] < 0.01
    assert is_ordinal(["1", "2.5", "-3"]) and not is_ordinal(["heads", "tails"])


def constant_model(pi: np.ndarray):
    """A GPT-2 whose next-token distribution is `pi` at every position: the final layer norm
    outputs a constant vector, and the (untied) head maps it to log pi."""
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(
        vocab_size=257,
        n_embd=16,
        n_layer=1,
        n_head=2,
        n_positions=128,
        tie_word_embeddings=False,
        eos_token_id=256,
        bos_token_id=256,
        pad_token_id=256,
    )
    model = GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.zero_()
        model.transformer.ln_f.bias[0] = 1.0
        model.lm_head.weight.zero_()
        model.lm_head.weight[:, 0] = torch.log(torch.tensor(pi, dtype=torch.float32))
    return model


class Letters:
    """A stand-in family over single letters (the constant model's answers)."""

    name = "letters"

    def parse(self, text, inst):
        return text if text in ("a", "b", "c") else None


E = EvaluateSection(
    records_per_family={"validation": 1, "test_template": 1, "test_family": 1},
    min_records_ci=2,
    close_tvd=0.1,
    primary=["ce_kl", "ce_multisample"],
    untaught=[],
    samples=600,
    monte_carlo=999,
    batch_size=200,
    alpha=0.05,
    bootstrap=100,
    seed=0,
    temperatures=[1.0],
)


def letters_record(i: int = 0, probs=(0.5, 0.25, 0.25)) -> dict:
    return {
        "id": f"r{i}",
        "split": "validation",
        "family": "letters",
        "prompt": "Pick a letter.",
        "instance": "{}",
        "support": ["a", "b", "c"],
        "probs": list(probs),
    }


def test_exact_and_sampled_views_agree():
    pi = np.full(257, 0.05 / 253)
    pi[[ord("a"), ord("b"), ord("c"), 256]] = [0.2, 0.15, 0.1, 0.5]
    model, tok = constant_model(pi), byte_tokenizer()
    families = {"letters": Letters()}
    (row,) = evaluate_records(model, tok, [letters_record()], families, E, "t/base", 64, 64)
    # exact view: q = pi(x) pi(EOS) renormalised, mass = (0.2 + 0.15 + 0.1) * 0.5
    assert row["support_mass"] == pytest.approx(0.225, rel=1e-4)
    q = np.array([0.2, 0.15, 0.1]) / 0.45
    assert row["tvd_conditional"] == pytest.approx(dist.tvd([0.5, 0.25, 0.25], q), abs=1e-5)
    # full space: the 0.775 of invalid outputs counts
    full = dist.tvd([0.5, 0.25, 0.25, 0.0], np.r_[q * 0.225, 0.775])
    assert row["tvd"] == pytest.approx(full, abs=1e-5) and row["tvd"] > 0.7
    assert row["kl"] == pytest.approx(row["kl_conditional"] - np.log(0.225), rel=1e-4)
    # sampled view: about 600 * 0.225 valid answers, in proportions consistent with the exact view
    assert stats.binomtest(row["valid"], 600, 0.225).pvalue > 1e-3
    assert row["valid_rate"] == row["valid"] / 600 == row["parsed_rate"]
    assert row["agreement_p"] > 1e-3
    # every statistic follows from the stored distributions and answers (what `verify` relies on)
    (again,) = rescore(pd.DataFrame([{"variant": "base"} | row]), families, E, "t")
    for k in ("tvd", "kl", "tvd_conditional", "entropy_ratio", "agreement_p", "gof_p", "valid"):
        assert again[k] == pytest.approx(row[k], rel=1e-12, nan_ok=True), k
    # and a wrong exact view would be caught by the same test
    wrong = np.r_[np.array([0.1, 0.15, 0.2]) * 0.5, 0.775]
    valid_counts = np.round(np.r_[q * row["valid"], 600 - row["valid"]])
    assert dist.gof_p(valid_counts, wrong) < 1e-3


@pytest.mark.parametrize("calibrated", [True, False])
def test_gof_over_the_whole_output_space_fails_a_model_that_answers_invalidly(calibrated):
    """A constant model that answers validly about 40% of the time: its valid answers follow
    the target (calibrated) or not. The valid-only diagnostic passes a calibrated model at about
    1 - alpha and a biased one rarely; the full-space test, what a user sampling it gets, fails
    both on every record (an invalid answer is impossible under the target)."""
    pi = np.full(257, 0.05 / 253)
    weights = [0.3, 0.15, 0.15] if calibrated else [0.2, 0.2, 0.2]
    pi[[ord("a"), ord("b"), ord("c"), 256]] = [*weights, 0.35]
    model, tok = constant_model(pi / pi.sum()), byte_tokenizer()
    e = E.model_copy(update={"samples": 200, "batch_size": 3000})
    records = [letters_record(i) for i in range(100)]
    rows = evaluate_records(model, tok, records, {"letters": Letters()}, e, "t/gof", 64, 64)
    passes = sum(r["gof_pass_valid"] for r in rows)
    assert all(r["gof_test"] == "chi2" for r in rows)  # ~40 valid answers: expected counts >= 5
    if calibrated:
        assert stats.binomtest(passes, 100, 1 - e.alpha).pvalue > 1e-3, passes
    else:
        assert passes / 100 < 0.5, passes
    assert not any(r["gof_pass"] for r in rows) and all(r["gof_p"] == 0 for r in rows)


def simulated_pass_rate(validity: float, bias: float, runs: int, seed: int) -> tuple[float, float]:
    """(full-space, valid-only) pass rates of a sampler over six words: its valid answers carry
    `bias` extra mass on the first word, and it answers validly with probability `validity`."""
    from entropy_lab.evaluation.evaluate import record_stats
    from entropy_lab.tasks.families import FAMILIES

    words = ["apple", "pear", "plum", "fig", "lemon", "mango"]
    target = np.full(6, 1 / 6)
    q = target * (1 - bias)
    q[0] += bias
    family = FAMILIES["list_item"](None, tuple(words))
    rng = np.random.default_rng(seed)
    full = valid_only = 0
    for i in range(runs):
        n_valid = rng.binomial(200, validity)
        answers = [words[k] for k in rng.choice(6, n_valid, p=q)] + ["?"] * (200 - n_valid)
        record = {"id": f"r{i}", "temperature": 1.0, "instance": json.dumps({"items": words}),
                  "support": words, "target": target.tolist(), "model": [], "answers": answers}  # fmt: skip
        row = record_stats(record, family, E.model_copy(update={"monte_carlo": 199}), "sim")
        full += row["gof_pass"]
        valid_only += row["gof_pass_valid"]
    return full / runs, valid_only / runs


def test_the_full_space_pass_rate_never_rises_as_validity_falls():
    """A sampler with 30% extra mass on the mode passes more prompts the fewer valid answers it
    gives under the valid-only test; over the whole output space it cannot: the pass rate
    falls with validity at a fixed bias, and an exact sampler passes at about 1 - alpha."""
    levels = (1.0, 0.995, 0.98, 0.9, 0.4, 0.05)
    biased = [simulated_pass_rate(v, 0.3, 150, k) for k, v in enumerate(levels)]
    full = [b[0] for b in biased]
    assert all(a >= b for a, b in itertools.pairwise(full)), full
    assert biased[-1][1] > biased[0][1] + 0.3  # the valid-only diagnostic rewards answering less
    exact, _ = simulated_pass_rate(1.0, 0.0, 400, 99)
    assert 0.92 <= exact <= 0.98, exact


def test_monte_carlo_chi_square_agrees_with_the_asymptotic_test_and_keeps_its_level():
    rng = np.random.default_rng(0)
    obs, probs = np.array([18, 30, 52]), np.array([0.2, 0.3, 0.5])
    mc = dist.chi_square_mc_p(obs, probs, 19_999, rng)
    assert mc == pytest.approx(stats.chisquare(obs, probs * 100).pvalue, abs=0.01)
    assert dist.chi_square_mc_p(np.array([3, 1, 1]), np.array([0.5, 0.0, 0.5]), 99, rng) == 0.0
    # small expected counts (where the asymptotic test is off): p-values are uniform under H0
    probs = np.array([0.7, 0.2, 0.05, 0.05])
    ps = [dist.chi_square_mc_p(rng.multinomial(12, probs), probs, 199, rng) for _ in range(400)]
    assert stats.binomtest(sum(p < 0.05 for p in ps), 400, 0.05).pvalue > 1e-3


def test_gof_picks_the_test_by_answer_kind_and_expected_counts():
    rng = np.random.default_rng(3)
    probs = np.array([0.25, 0.5, 0.25])
    assert dist.gof(np.array([30, 50, 20]), probs, None, 99, rng)[0] == "chi2"
    assert dist.gof(np.array([3, 5, 2]), probs, None, 99, rng)[0] == "chi2_mc"
    assert dist.gof(np.array([3, 5, 2]), probs, np.array([1.0, 2.0, 3.0]), 99, rng)[0] == "ks"
    test, p = dist.gof(np.zeros(3), probs, None, 99, rng)
    assert test == "none" and np.isnan(p)  # no valid answers: no test, and not a pass
    # Bonferroni over positions: one bad position of three
    good = [np.array([50, 50]), np.array([48, 52])]
    bad = [np.array([95, 5])]
    half = [np.array([0.5, 0.5])] * 3
    assert dist.marginal_gof(good + bad, half, 99, rng) < 0.01
    assert dist.marginal_gof(good + good[:1], half, 99, rng) > 0.05


@pytest.mark.parametrize("name", ["password", "uuid", "lottery"])
def test_structured_families_are_scored_by_validity_and_per_position_marginals(name):
    from entropy_lab.config import load_params
    from tests.conftest import REPO

    fam = instantiate(load_params(REPO / "params.yaml").tasks)[name]
    rng = np.random.default_rng(11)
    inst = fam.instance(rng)
    record = {"id": "s0", "instance": json.dumps(inst), "support": [], "target": [], "model": []}
    record["temperature"] = 1.0
    record["support_mass"] = float("nan")
    good = fam.sample(inst, rng, 300)
    row = record_stats(record | {"answers": good}, fam, E, "t/x")
    assert row["valid_rate"] == 1.0 and row["gof_test"] == "marginals" and row["gof_pass"]
    assert np.isnan(row["tvd"])  # no exact view over a support this large
    # the same valid answers with the first position forced: rejected; garbage: invalid
    first = fam.positions(good[0], inst)[0]
    forced = [a for a in fam.sample(inst, rng, 5000) if fam.positions(a, inst)[0] == first][:300]
    row = record_stats(record | {"answers": [*forced, "nonsense", None]}, fam, E, "t/x")
    assert not row["gof_pass"] and row["valid"] == len(forced) and row["samples"] == len(forced) + 2


def test_deterministic_is_scored_by_accuracy():
    from entropy_lab.config import load_params
    from tests.conftest import REPO

    fam = instantiate(load_params(REPO / "params.yaml").tasks)["deterministic"]
    inst = {"value": 7}
    record = {
        "id": "d0", "temperature": 1.0, "instance": json.dumps(inst), "support": ["7"], "target": [1.0],
        "model": [], "support_mass": float("nan"), "answers": ["7"] * 9 + ["8"],
    }  # fmt: skip
    row = record_stats(record, fam, E, "t/d")
    assert row["accuracy"] == 0.9 and row["valid_rate"] == 0.9


def test_temperature_rescales_both_views_and_reruns_are_identical():
    """At temperature T the constant model's next-token distribution is pi^(1/T) renormalised,
    in the exact view and in sampling; every answer is keyed, so a re-run repeats it exactly."""
    pi = np.full(257, 0.05 / 253)
    pi[[ord("a"), ord("b"), ord("c"), 256]] = [0.2, 0.15, 0.1, 0.5]
    model, tok = constant_model(pi), byte_tokenizer()
    families = {"letters": Letters()}
    e = E.model_copy(update={"samples": 400})
    (row,) = evaluate_records(model, tok, [letters_record()], families, e, "t/T", 64, 64, 0.5)
    sharp = pi**2 / np.sum(pi**2)
    letters = sharp[[ord("a"), ord("b"), ord("c")]]
    assert row["temperature"] == 0.5
    assert row["support_mass"] == pytest.approx(letters.sum() * sharp[256], rel=1e-4)
    assert stats.binomtest(row["valid"], 400, letters.sum() * sharp[256]).pvalue > 1e-3
    (again,) = evaluate_records(model, tok, [letters_record()], families, e, "t/T", 64, 64, 0.5)
    assert again["answers"] == row["answers"] and again["gof_p"] == row["gof_p"]


def test_the_seeded_mode_scores_the_mapping_and_its_fit():
    """A perfect mapper's answers over uniform u follow the target; a model that ignores u
    fails both accuracy and fit. Statistics come from the stored answers alone."""
    from fractions import Fraction

    from entropy_lab.evaluation.seeded import seeded_stats
    from entropy_lab.tasks.base import Target
    from entropy_lab.tasks.seeded import inverse_cdf, u_text

    target = Target(
        ("1", "2", "3", "4"), (Fraction(1, 8), Fraction(3, 8), Fraction(3, 8), Fraction(1, 8))
    )
    us = [Fraction(k, 1000) for k in range(5, 1000, 10)]  # 100 evenly spread u
    expected = [inverse_cdf(target, u) for u in us]
    record = {
        "id": "s0", "support": list(target.support), "target": [0.125, 0.375, 0.375, 0.125],
        "seeded_u": [u_text(u, 3) for u in us], "expected": expected,
    }  # fmt: skip
    perfect = seeded_stats(record | {"answers": expected}, E, "m/seeded")
    assert perfect["accuracy"] == 1.0 and perfect["valid_rate"] == 1.0 and perfect["gof_pass"]
    constant = seeded_stats(record | {"answers": ["2"] * 99 + [None]}, E, "m/seeded")
    assert constant["accuracy"] == pytest.approx(0.38) and constant["valid"] == 99  # [1/8, 1/2)
    assert not constant["gof_pass"]
    # the mode baseline is what that constant answer (the target's most probable) scores
    assert perfect["mode_accuracy"] == constant["mode_accuracy"] == constant["accuracy"]


def test_greedy_answers_do_not_depend_on_the_batch():
    from entropy_lab.evaluation.seeded import greedy_answers

    torch.manual_seed(0)
    from transformers import AutoModelForCausalLM

    from tests.conftest import tiny_config

    model, tok = AutoModelForCausalLM.from_config(tiny_config("gpt2")).eval(), byte_tokenizer()
    prompts = [list(f"Roll {k}d6. Use u = 0.{k}21.\nAnswer: ".encode()) for k in range(1, 7)]
    one = [greedy_answers(model, tok, [p], 6, 1)[0] for p in prompts]
    assert greedy_answers(model, tok, prompts, 6, 4) == one


def test_mass_and_validity_are_binned_by_expected_answer_length():
    """Expected length under the target, in bytes; records without a support are left out."""
    from entropy_lab.evaluation.evaluate import answer_length, by_answer_length

    assert answer_length(["a", "bbbb"], [0.5, 0.5]) == 2.5
    assert answer_length(["é"], [1.0]) == 2  # UTF-8 bytes, not characters
    rows = pd.DataFrame(
        {
            "support": [["1", "2"], ["10", "20"], ["kiwi, fig", "fig, kiwi"], []],
            "target": [[0.5, 0.5], [0.5, 0.5], [0.5, 0.5], []],
            "support_mass": [0.8, 0.6, 0.1, float("nan")],
            "valid_rate": [0.75, 0.5, 0.0, 0.2],
        }
    )
    assert by_answer_length(rows) == {
        "1-2": {"records": 2, "support_mass": pytest.approx(0.7), "valid_rate": 0.625},
        "6-10": {"records": 1, "support_mass": pytest.approx(0.1), "valid_rate": 0.0},
    }


def test_paired_differences_see_what_overlapping_cis_hide():
    """Two variants on the same 30 prompts, whose difficulty varies widely: their own CIs
    overlap, but soft_trie is 0.05 closer on every prompt, and the paired CI says so; every
    variant is paired with each reference present, on the records both scored."""
    from entropy_lab.evaluation.common import mean_ci
    from entropy_lab.evaluation.evaluate import paired

    rng = np.random.default_rng(0)
    hard = rng.uniform(0.2, 0.9, 30)
    soft = hard - 0.05 + rng.normal(0, 0.005, 30)
    rows = [
        {
            "id": f"r{i}",
            "variant": v,
            "split": s,
            "temperature": t,
            "tvd": x,
            "valid_rate": 1 - x,
            "kl": 2 * x,
        }
        for v, tvd in (("base", np.ones(30)), ("ce_multisample", hard), ("soft_trie", soft))
        for i, x in enumerate(tvd)
        for s, t in (("validation", 1.0), ("validation", 0.7))
    ]
    rows[-2]["tvd"] = float("nan")  # a record without an exact view (soft_trie, last one)
    rows[0]["kl"] = float("inf")  # base never gives one support answer on the first record
    out = paired(pd.DataFrame(rows), E)
    assert list(out) == ["validation"]  # T = 1 only
    assert set(out["validation"]) == {
        "ce_multisample - base", "soft_trie - base", "soft_trie - ce_multisample"
    }  # fmt: skip
    d = out["validation"]["soft_trie - ce_multisample"]
    assert d["tvd"]["n"] == 29
    assert d["tvd"]["mean"] == pytest.approx(float(np.mean((soft - hard)[:29])))
    assert d["tvd"]["ci"][1] < 0
    assert d["valid_rate"]["n"] == 30 and d["valid_rate"]["ci"][0] > 0
    assert d["kl"]["n"] == 30 and d["kl"]["ci"][1] < 0  # KL beside TVD, on finite pairs
    assert out["validation"]["soft_trie - base"]["kl"]["n"] == 29  # the infinite pair is left out
    own = [mean_ci(x, E, ("own", k))["ci"] for k, x in (("hard", hard), ("soft", soft))]
    assert own[1][1] > own[0][0]  # the variants' own CIs overlap
