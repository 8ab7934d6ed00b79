"""SP 800-90B estimators on sources of known min-entropy, tuple counts against brute force,
and all ten estimators against NIST's reference code."""

from __future__ import annotations

import math
import time
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entropy_lab.entropy import estimators as E
from entropy_lab.entropy import kernels


def biased_bits(p1: float, n: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random(n) < p1).astype(np.uint8)


@pytest.mark.parametrize("p1", [0.5, 0.7, 0.8])
def test_estimates_bound_known_binary_min_entropy(p1):
    bits = biased_bits(p1, 400_000)
    truth = -math.log2(max(p1, 1 - p1))
    renyi2 = -math.log2(p1**2 + (1 - p1) ** 2)  # what LRS estimates (collision entropy)
    slack = 0.005  # sampling error of a point estimate at n = 400,000
    t_tuple, lrs = E.tuple_and_lrs(bits)
    for name, h, tol in [
        ("most_common_value", E.most_common_value(bits), 0.02),
        ("collision", E.collision(bits), 0.1),
        ("markov", E.markov(bits), 0.02),
        ("t_tuple", t_tuple, 0.08),
        ("multi_mcw", E.multi_mcw(bits, 2), 0.02),
        ("multi_mmc", E.multi_mmc(bits, 2), 0.02),
        ("lz78y", E.lz78y(bits, 2), 0.02),
    ]:
        assert truth - tol <= h <= truth + slack, (name, h, truth)
    comp = E.compression(bits)
    assert 0.5 * truth <= comp <= truth + slack  # conservative by construction (6.3.4)
    assert truth - 0.1 <= lrs <= renyi2 + slack
    assert renyi2 - 0.02 <= E.lag(bits, 2) <= renyi2 + slack  # a lag hits with p^2 + q^2
    assert E.assess(bits, 1)["min_entropy"] <= truth + slack


def test_uniform_bytes():
    s = np.random.default_rng(1).integers(0, 256, 200_000)
    r = E.assess(s, 8)
    assert 7.6 <= r["h_original"] <= 8.0  # MCV's 99.5% bound costs ~0.28 bits at this n
    assert r["min_entropy"] <= r["h_original"] and r["min_entropy"] == min(
        r["h_original"], 8 * r["h_bitstring"]
    )
    assert set(r["original"]) == set(E.NAMES) - E.BINARY_ONLY
    assert set(r["bitstring"]) == set(E.NAMES)
    assert all(0.85 <= h <= 1.0 for h in r["bitstring"].values())  # compression: ~0.89


def test_markov_sees_dependence_that_mcv_misses():
    """A sticky chain with balanced marginals: MCV says ~1 bit, Markov must say much less."""
    rng = np.random.default_rng(2)
    flips = rng.random(200_000) < 0.1  # stay with probability 0.9
    bits = (np.cumsum(flips) % 2).astype(np.uint8)
    assert E.most_common_value(bits) > 0.95
    assert E.markov(bits) < -math.log2(0.9) + 0.01


def test_predictors_see_structure_that_counts_miss():
    """Each predictor catches the pattern it is built for, on samples whose marginal
    distribution is uniform over 16 values (MCV: ~3.9 bits)."""
    rng = np.random.default_rng(5)
    n = 100_000
    cycle = np.tile(rng.permutation(16), n // 16)  # period 16: lag 15 predicts everything
    assert E.most_common_value(cycle) > 3.8
    assert E.lag(cycle, 16) < 0.01
    chain = np.empty(n, dtype=np.uint8)  # next = f(previous) with probability 0.9
    f = rng.permutation(16)
    chain[0] = 0
    noise = rng.integers(0, 16, n)
    keep = rng.random(n) < 0.9
    for i in range(1, n):
        chain[i] = f[chain[i - 1]] if keep[i] else noise[i]
    h_true = -math.log2(0.9 + 0.1 / 16)
    for predictor in (E.multi_mmc, E.lz78y):
        assert h_true - 0.05 <= predictor(chain, 16) <= h_true + 0.01
    drifting = np.repeat(rng.integers(0, 16, n // 500), 500)  # runs of 500: the window sees it
    assert E.multi_mcw(drifting, 16) < 0.05


def test_too_few_samples_and_one_value():
    with pytest.raises(ValueError, match=f"at least {E.MIN_SAMPLES} samples"):
        E.assess(np.zeros(10, dtype=np.int64))
    with pytest.raises(ValueError, match="every sample is 7"):
        E.assess(np.full(5000, 7))


def brute_force_tuples(s: bytes, t: int) -> tuple[int, int]:
    counts = Counter(s[i : i + t] for i in range(len(s) - t + 1))
    return max(counts.values()), sum(c * (c - 1) // 2 for c in counts.values())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=2, max_size=300))
def test_tuple_counts_from_the_suffix_array_match_brute_force(values):
    s = np.array(values, dtype=np.uint8)
    counts = kernels.tuple_counts(E.suffix_array(s)[1])
    v = counts.shape[0] - 2
    most = np.maximum.accumulate(counts[::-1, 0])[::-1]
    pairs = np.cumsum(counts[::-1, 1])[::-1]
    for t in range(1, v + 1):
        assert (most[t], pairs[t]) == brute_force_tuples(s.tobytes(), t)
    assert brute_force_tuples(s.tobytes(), v + 1)[0] == 1  # v is the longest repeat


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=20, max_size=200), st.integers(1, 17))
def test_substring_ids_name_equal_substrings(values, length):
    s = np.array(values, dtype=np.uint8)
    ids = kernels.substring_ids(*E.suffix_array(s), 17)[:, length - 1]
    starts = range(s.size - length + 1)
    by_text = {}
    for p in starts:
        by_text.setdefault(s[p : p + length].tobytes(), set()).add(int(ids[p]))
    assert all(len(v) == 1 for v in by_text.values())  # equal substrings share an id
    assert len({next(iter(v)) for v in by_text.values()}) == len(by_text)  # and only they


def lag_by_definition(s: np.ndarray) -> tuple[int, int, int]:
    """6.3.8 as NIST's first code wrote it: every step checks all 128 lags in increasing d,
    each matching lag taking the lead at >= the high score."""
    score, winner, high, c, run, longest = [0] * 128, 0, 0, 0, 0, 0
    for i in range(1, s.size):
        if s[i - winner - 1] == s[i]:
            c, run = c + 1, run + 1
            longest = max(longest, run)
        else:
            run = 0
        for d in range(min(128, i)):
            if s[i - d - 1] == s[i]:
                score[d] += 1
                if score[d] >= high:
                    winner, high = d, score[d]
    return c, s.size - 1, longest


@pytest.mark.parametrize(
    "values",
    [2, 5, 40, 256],  # bits (all-lag scan), few values (both paths), many (sparse visits)
)
def test_lag_counts_equal_the_definition(values):
    rng = np.random.default_rng(values)
    skewed = np.minimum(rng.geometric(0.5, 1500), values) - 1  # one common value: the scan
    uniform = rng.integers(0, values, 1500)  # rare matches: the visits
    s = np.concatenate([skewed, uniform, skewed[:300]]).astype(np.uint8)
    assert kernels.lag(s) == lag_by_definition(s)


def multi_mcw_by_definition(s: np.ndarray, k: int) -> tuple[int, int, int]:
    """6.3.7 step by step: each window's prediction is its most common value, ties to the one
    seen last, recounted at every step."""
    w = kernels.MCW_WINDOWS
    score, winner, c, run, longest = [0] * 4, 0, 0, 0, 0
    for i in range(w[0], s.size):
        frequent = [-1] * 4
        for j in range(4):
            if i >= w[j]:
                window = s[i - w[j] : i]
                counts = np.bincount(window, minlength=k)
                tied = np.flatnonzero(counts == counts.max())
                seen = [i - w[j] + np.flatnonzero(window == v)[-1] for v in tied]
                frequent[j] = int(tied[int(np.argmax(seen))])
        if frequent[winner] == s[i]:
            c, run = c + 1, run + 1
            longest = max(longest, run)
        else:
            run = 0
        for j in range(4):
            if frequent[j] == s[i]:
                score[j] += 1
                if score[j] >= score[winner]:
                    winner = j
    return c, s.size - w[0], longest


@pytest.mark.parametrize("values", [3, 5, 40, 256])
def test_multi_mcw_counts_equal_the_definition(values):
    """Skewed, uniform and periodic stretches: leaders that leave a window, ties at the top."""
    rng = np.random.default_rng(values)
    skewed = np.minimum(rng.geometric(0.4, 2500), values) - 1
    uniform = rng.integers(0, values, 2500)
    periodic = np.arange(1500) % min(values, 4)
    s = np.concatenate([skewed, uniform, periodic, skewed[:1000]]).astype(np.uint8)
    assert kernels.multi_mcw(s, values) == multi_mcw_by_definition(s, values)


@pytest.mark.parametrize("n", [1, 7, 1001])
def test_symbol_counts_equal_bincount(n):
    for s in (np.random.default_rng(n).integers(0, 256, n), np.full(n, 9)):
        s = s.astype(np.uint8)
        assert np.array_equal(kernels.symbol_counts(s), np.bincount(s, minlength=256))


def test_repetitive_input_costs_no_more_than_random_input():
    """A repeated 4 KiB block: the longest repeat is nearly the whole input."""
    block = np.random.default_rng(6).integers(0, 256, 4096).astype(np.uint8)
    s = np.tile(block, 50)
    t0 = time.perf_counter()
    r = E.assess(s, 8)
    assert time.perf_counter() - t0 < 30  # generous for a loaded CI machine; ~1 s here
    assert r["original"]["t_tuple"] < 1e-3 and r["min_entropy"] < 0.01


REFERENCE = {
    "most_common_value": "most_common",
    "collision": "collision",
    "markov": "markov",
    "compression": "compression",
    "multi_mcw": "multi_most_common",
    "lag": "lag_prediction",
    "multi_mmc": "multi_markov",
    "lz78y": "lz78y",
}


def cross_check_sources() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    n = 100_000
    block = rng.integers(0, 256, 37).astype(np.uint8)
    return {
        "biased": (rng.integers(0, 256, n) & rng.integers(0, 256, n)).astype(np.uint8),
        "low_entropy": np.minimum(rng.geometric(0.6, n), 255).astype(np.uint8),
        "periodic": (np.arange(n) % 8).astype(np.uint8),
        "repeated_block": np.tile(block, n // 37 + 1)[:n],
        "two_values": np.where(rng.random(n) < 0.7, 0x10, 0xF3).astype(np.uint8),
    }


def reference_estimates(data) -> dict[str, float]:
    """NIST's estimate per estimator; those it skips (-1) left out, as `ea_non_iid` does."""
    out = {name: getattr(data, f"h_{ref}")() for name, ref in REFERENCE.items()}
    out["t_tuple"], out["lrs"] = data.h_t_tuple_and_lrs()
    if not data.is_binary:
        for name in E.BINARY_ONLY:
            del out[name]
    return {k: v for k, v in out.items() if v >= 0}


@pytest.mark.slow
@pytest.mark.parametrize("source", sorted(cross_check_sources()))
def test_matches_nist_reference_code(source):
    """All ten estimators, on the samples and on their bit string, against NIST's C++
    (PyPI `sp800-90b`, `make install-reference`) to 1e-9."""
    sp = pytest.importorskip("sp800_90b")
    raw = cross_check_sources()[source]
    ours = E.assess(raw, 8)
    ref = sp.Data(raw.tobytes(), bits_per_symbol=8)
    assert ours["original"] == pytest.approx(reference_estimates(ref), abs=1e-9, rel=0)
    if ref.is_binary:  # ea_non_iid assesses two-valued samples as binary, with no bit string
        assert ours["bitstring"] is None
        assert ours["min_entropy"] == pytest.approx(ref.h_initial(), abs=1e-9)
        return
    bits = sp.Data(E.to_bits(raw, 8).tobytes(), bits_per_symbol=1)
    assert ours["bitstring"] == pytest.approx(reference_estimates(bits), abs=1e-9, rel=0)
    assert ours["min_entropy"] == pytest.approx(ref.h_initial(), abs=1e-9)
