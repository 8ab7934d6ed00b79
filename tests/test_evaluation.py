"""Evaluation: distances and tests with known answers, and the exact and sampled views of a
model agreeing within sampling error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from entropy_lab.evaluation import distribution as dist
from entropy_lab.evaluation.evaluate import evaluate_records, is_ordinal, rescore
from entropy_lab.evaluation.params import EvaluateSection
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


class AnyText:
    """A stand-in family whose parser accepts the three letters."""

    def parse(self, text, inst):
        return text if text in ("a", "b", "c") else None


def test_exact_and_sampled_views_agree():
    pi = np.full(257, 0.05 / 253)
    pi[[ord("a"), ord("b"), ord("c"), 256]] = [0.2, 0.15, 0.1, 0.5]
    model, tok = constant_model(pi), byte_tokenizer()
    record = {
        "id": "r0",
        "split": "validation",
        "family": "letters",
        "prompt": "Pick a letter.",
        "instance": "{}",
        "support": ["a", "b", "c"],
        "probs": [0.5, 0.25, 0.25],
    }
    e = EvaluateSection(records=1, samples=600, batch_size=200, alpha=0.05, bootstrap=100, seed=0)
    (row,) = evaluate_records(model, tok, [record], {"letters": AnyText()}, e, "t/base", 64, 64)
    # exact view: q = pi(x) pi(EOS) renormalised, mass = (0.2 + 0.15 + 0.1) * 0.5
    assert row["support_mass"] == pytest.approx(0.225, rel=1e-4)
    q = np.array([0.2, 0.15, 0.1]) / 0.45
    assert row["tvd"] == pytest.approx(dist.tvd([0.5, 0.25, 0.25], q), abs=1e-5)
    # sampled view: about 600 * 0.225 valid answers, in proportions consistent with the exact view
    assert stats.binomtest(row["valid"], 600, 0.225).pvalue > 1e-3
    assert row["agreement_p"] > 1e-3
    assert row["format_valid"] == row["valid"] / 600
    # every statistic follows from the stored distributions and counts (what `verify` relies on)
    (again,) = rescore(pd.DataFrame([{"variant": "base"} | row]), e, "t")
    for k in (
        "tvd",
        "kl",
        "entropy_ratio",
        "agreement_p",
        "chi2_p",
        "g_p",
        "format_valid",
        "valid",
    ):
        assert again[k] == pytest.approx(row[k], rel=1e-12, nan_ok=True), k
    # and a wrong exact view would be caught by the same test
    wrong = np.r_[np.array([0.1, 0.15, 0.2]) * 0.5, 0.775]
    valid_counts = np.round(np.r_[q * row["valid"], 600 - row["valid"]])
    assert dist.gof_p(valid_counts, wrong) < 1e-3
