"""SP 800-90B estimators on sources of known min-entropy, and against NIST's reference code."""

from __future__ import annotations

import math

import numpy as np
import pytest

from entropy_lab.entropy import estimators as E


def biased_bits(p1: float, n: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random(n) < p1).astype(np.int64)


@pytest.mark.parametrize("p1", [0.5, 0.7, 0.8])
def test_estimates_bound_known_binary_min_entropy(p1):
    bits = biased_bits(p1, 400_000)
    truth = -math.log2(max(p1, 1 - p1))
    renyi2 = -math.log2(p1**2 + (1 - p1) ** 2)  # what LRS estimates (collision entropy)
    slack = 0.005  # sampling error of a point estimate at n = 400,000
    for name, tol in [
        ("most_common_value", 0.02),
        ("collision", 0.1),
        ("markov", 0.02),
        ("t_tuple", 0.08),
    ]:
        h = getattr(E, name)(bits) if name != "t_tuple" else E.tuple_and_lrs(bits)[0]
        assert truth - tol <= h <= truth + slack, (name, h, truth)
    comp = E.compression(bits)
    assert 0.5 * truth <= comp <= truth + slack  # conservative by construction (6.3.4)
    lrs = E.tuple_and_lrs(bits)[1]
    assert truth - 0.1 <= lrs <= renyi2 + slack
    assert E.assess(bits, 1)["min_entropy"] <= truth + slack


def test_uniform_bytes():
    s = np.random.default_rng(1).integers(0, 256, 200_000)
    r = E.assess(s, 8)
    assert 7.6 <= r["h_original"] <= 8.0  # MCV's 99.5% bound costs ~0.28 bits at this n
    assert r["min_entropy"] <= r["h_original"] and r["min_entropy"] == min(
        r["h_original"], 8 * r["h_bitstring"]
    )
    assert set(r["original"]) == {"most_common_value", "t_tuple", "lrs"}
    assert set(r["bitstring"]) == {
        "most_common_value",
        "collision",
        "markov",
        "compression",
        "t_tuple",
        "lrs",
    }


def test_markov_sees_dependence_that_mcv_misses():
    """A sticky chain with balanced marginals: MCV says ~1 bit, Markov must say much less."""
    rng = np.random.default_rng(2)
    flips = rng.random(200_000) < 0.1  # stay with probability 0.9
    bits = (np.cumsum(flips) % 2).astype(np.int64)
    assert E.most_common_value(bits) > 0.95
    assert E.markov(bits) < -math.log2(0.9) + 0.01


def test_too_few_samples():
    with pytest.raises(ValueError, match="at least 1000 samples"):
        E.assess(np.zeros(10, dtype=np.int64))


@pytest.mark.slow
def test_matches_nist_reference_code():
    """Every estimator against NIST's C++ (PyPI `sp800-90b`, `make install-reference`)."""
    sp = pytest.importorskip("sp800_90b")
    rng = np.random.default_rng(3)
    raw = (rng.integers(0, 256, 100_000) & rng.integers(0, 256, 100_000)).astype(
        np.uint8
    )  # biased bytes
    ref = sp.Data(raw.tobytes(), bits_per_symbol=8)
    ours = E.assess(raw.astype(np.int64), 8)
    assert ours["original"]["most_common_value"] == pytest.approx(ref.h_most_common(), abs=1e-9)
    t, lrs = ref.h_t_tuple_and_lrs()
    assert ours["original"]["t_tuple"] == pytest.approx(t, abs=1e-9)
    assert ours["original"]["lrs"] == pytest.approx(lrs, abs=1e-9)
    bits = sp.Data(E.to_bits(raw.astype(np.int64), 8).astype(np.uint8).tobytes(), bits_per_symbol=1)
    b = ours["bitstring"]
    assert b["most_common_value"] == pytest.approx(bits.h_most_common(), abs=1e-9)
    assert b["collision"] == pytest.approx(bits.h_collision(), abs=1e-9)
    assert b["markov"] == pytest.approx(bits.h_markov(), abs=1e-9)
    assert b["compression"] == pytest.approx(bits.h_compression(), abs=1e-9)
    assert (b["t_tuple"], b["lrs"]) == pytest.approx(bits.h_t_tuple_and_lrs(), abs=1e-9)
