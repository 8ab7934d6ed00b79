"""The reproducible sampler: uniforms, the inverse-CDF step, agreement with the warped
softmax, and independence from batch size, batch composition and sharding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from entropy_lab.generation import sampler
from entropy_lab.generation.sampler import (
    Sampling,
    inverse_cdf,
    prng_bytes,
    seed_from,
    token_stats,
    uniforms,
    warp,
)
from entropy_lab.models import ResolvedModel, load
from tests.conftest import save_tiny_model


def test_uniforms_from_words():
    u = uniforms(b"\x00\x00\x00\x00" + b"\xff\xff\xff\xff" + b"\x00\x00\x00\x80")
    assert u.tolist() == [0.5 / 2**32, 1 - 0.5 / 2**32, 0.5 + 0.5 / 2**32]
    assert seed_from(b"\x2a\x00\x00\x00") == 42


def test_prng_bytes_are_keyed():
    assert prng_bytes("a/0", 64) == prng_bytes("a/0", 64)
    assert prng_bytes("a/0", 64) != prng_bytes("a/1", 64)
    assert prng_bytes("a/0", 64)[:16] == prng_bytes("a/0", 16)  # a prefix does not depend on n


def test_inverse_cdf_intervals():
    probs = torch.tensor([[0.2, 0.0, 0.5, 0.3]], dtype=torch.float64).repeat(6, 1)
    u = torch.tensor([0.1, 0.2, 0.69, 0.7, 0.9999, 1e-9], dtype=torch.float64)
    # token i owns [cdf[i-1], cdf[i]); the zero-probability token 1 owns nothing
    assert inverse_cdf(probs, u).tolist() == [0, 2, 2, 3, 3, 0]


def test_inverse_cdf_rounding_never_picks_a_zero_probability_token():
    probs = torch.tensor([[0.5, 0.5 - 1e-12, 0.0]], dtype=torch.float64)
    assert inverse_cdf(probs, torch.tensor([1 - 1e-13], dtype=torch.float64)).tolist() == [1]


def _manual_warp(logits: np.ndarray, t: float, k: int, p: float) -> np.ndarray:
    z = logits / t
    if k:
        z = np.where(z < np.sort(z)[-k], -np.inf, z)
    q = np.exp(z - z.max())
    q /= q.sum()
    if p < 1:
        order = np.argsort(q)  # ascending, as HF's top-p: drop the tail whose mass <= 1 - p
        tail = np.cumsum(q[order]) <= 1 - p
        q[order[tail]] = 0
        q /= q.sum()
    return q


@pytest.mark.parametrize(("t", "k", "p"), [(0.7, 50, 1.0), (1.0, 0, 0.9), (0.5, 5, 0.8)])
def test_warp_matches_definition(t, k, p):
    logits = torch.randn(3, 257, generator=torch.Generator().manual_seed(1))
    got = warp(logits, Sampling(t, k, p, 1)).numpy()
    for row, want in zip(got, logits.numpy().astype(np.float64), strict=True):
        np.testing.assert_allclose(row, _manual_warp(want, t, k, p), atol=1e-6)


def test_token_stats():
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.25]]))
    lp, ent = token_stats(logits, torch.tensor([1]))
    assert lp.item() == pytest.approx(np.log(0.25))
    assert ent.item() == pytest.approx(1.5 * np.log(2))


@pytest.fixture(scope="module")
def gpt2_tiny(tmp_path_factory):
    path = save_tiny_model("gpt2", tmp_path_factory.mktemp("s") / "m", seed=3, positions=128)
    return load(ResolvedModel("tiny", path, "path"))


def _first_tokens(model, tok, s: Sampling, n: int) -> np.ndarray:
    prompt = tok("In the beginning").input_ids
    u = uniforms(prng_bytes("chi-square", 4 * n)).reshape(n, 1)
    outs = sampler.sample_streams(model, tok, [prompt] * n, u, s)
    return np.array([o.token_ids[0] for o in outs]), prompt


def _fit_p(model, tokens: np.ndarray, prompt: list[int], s: Sampling) -> float:
    """Chi-square p of first-token counts against the warped softmax (0 if a token outside
    the support shows up)."""
    with torch.no_grad():
        logits = model(torch.tensor([prompt])).logits[0, -1]
    probs = warp(logits[None], s)[0].numpy()
    counts = np.bincount(tokens, minlength=len(probs))
    support = probs > 0
    if counts[~support].any():
        return 0.0
    return float(stats.chisquare(counts[support], probs[support] * len(tokens)).pvalue)


def test_first_token_frequencies_match_the_warped_softmax(gpt2_tiny, monkeypatch):
    model, tok = gpt2_tiny
    model.lm_head.weight.data *= 40  # a peaked, uneven distribution, so an error shows
    s = Sampling(temperature=0.7, top_k=8, top_p=1.0, max_new_tokens=1)
    tokens, prompt = _first_tokens(model, tok, s, 3000)
    assert _fit_p(model, tokens, prompt, s) > 1e-3

    # the same test fails an inverse CDF that is off by one
    right = sampler.inverse_cdf
    monkeypatch.setattr(sampler, "inverse_cdf", lambda p, u: (right(p, u) + 1) % p.shape[-1])
    shifted, _ = _first_tokens(model, tok, s, 3000)
    assert _fit_p(model, shifted, prompt, s) < 1e-6
    model.lm_head.weight.data /= 40


def test_seeded_generation_is_the_writeups_protocol(gpt2_tiny):
    model, tok = gpt2_tiny
    s = Sampling(0.7, 50, 1.0, 12)
    prompt = tok("And God said").input_ids
    a = sampler.sample_seeded(model, tok, prompt, 42, s)
    torch.manual_seed(42)
    want = model.generate(
        torch.tensor([prompt]),
        do_sample=True,
        temperature=0.7,
        top_k=50,
        max_new_tokens=12,
        pad_token_id=256,
    )[0, len(prompt) :].tolist()
    assert a.token_ids == want[: len(a.token_ids)]
    assert a == sampler.sample_seeded(model, tok, prompt, 42, s)
    assert len(a.logprobs) == len(a.entropies) == len(a.token_ids) + a.stopped  # EOS scored
