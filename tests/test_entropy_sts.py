"""SP 800-22 tests against the published worked examples (section 2) and Appendix B (e)."""

from __future__ import annotations

import numpy as np
import pytest

from entropy_lab.entropy import sts


def bits(s: str) -> np.ndarray:
    return np.frombuffer(s.encode(), dtype=np.uint8) - 48


LONGEST_RUN_EXAMPLE = (
    "11001100000101010110110001001100111000000000001001001101010100010001001111010110100000001101"
    "011111001100111001101101100010110010"
)


@pytest.mark.parametrize(
    ("test", "sequence", "expected"),
    [
        (sts.frequency, "1011010101", 0.527089),
        (lambda b: sts.block_frequency(b, 3), "0110011010", 0.801252),
        (sts.runs, "1001101011", 0.147232),
        (sts.longest_run, LONGEST_RUN_EXAMPLE, 0.180609),
        (lambda b: sts.serial(b, 3), "0011011101", (0.808792, 0.670320)),
        (lambda b: sts.approximate_entropy(b, 3), "0100110101", 0.261961),
        (lambda b: sts.cumulative_sums(b)[0], "1011010111", 0.4116588),
    ],
)
def test_section_2_worked_examples(test, sequence, expected):
    # The text rounds intermediate values (its normal-table cusum, its longest-run chi2), so 1e-4.
    assert test(bits(sequence)) == pytest.approx(expected, abs=1e-4)


@pytest.fixture(scope="module")
def e_bits() -> np.ndarray:
    """The first 1,000,000 bits of the binary expansion of e (Appendix B's data.e)."""
    import mpmath

    n = 1_000_000
    with mpmath.workprec(n + 64):
        v = int(mpmath.floor(mpmath.e * mpmath.mpf(2) ** (n - 2)))
    return bits(bin(v)[2 : n + 2])


@pytest.mark.parametrize(
    ("name", "test", "expected"),
    [
        ("frequency", sts.frequency, 0.953749),
        ("block frequency", lambda b: sts.block_frequency(b, 128), 0.211072),
        ("cusum", sts.cumulative_sums, (0.669887, 0.724266)),
        ("runs", sts.runs, 0.561917),
        ("longest run", sts.longest_run, 0.718945),
        ("dft", sts.dft, 0.847187),
        ("approximate entropy", lambda b: sts.approximate_entropy(b, 10), 0.700073),
        ("serial", lambda b: sts.serial(b, 16), (0.766182, 0.462921)),
    ],
)
def test_appendix_b_binary_expansion_of_e(e_bits, name, test, expected):
    assert e_bits[:8].tolist() == [1, 0, 1, 0, 1, 1, 0, 1]
    assert test(e_bits) == pytest.approx(expected, abs=1e-6), name


def test_biased_input_fails_and_good_input_passes():
    rng = np.random.default_rng(0)
    good = rng.integers(0, 2, 100 * 20_000).astype(np.uint8)
    bad = (rng.random(100 * 20_000) < 0.51).astype(np.uint8)
    good_r, bad_r = sts.run_suite(good, 20_000), sts.run_suite(bad, 20_000)
    assert all(r["passed"] for r in good_r.values())
    assert not bad_r["frequency"]["passed"] and bad_r["frequency"]["proportion"] < 0.9


def test_pass_criteria():
    lo, hi = sts.proportion_interval(100)
    assert hi == pytest.approx(0.99 + 3 * np.sqrt(0.99 * 0.01 / 100))
    assert lo == pytest.approx(0.99 - 3 * np.sqrt(0.99 * 0.01 / 100)) and lo == pytest.approx(
        0.960150, abs=1e-6
    )
    assert sts.uniformity_p(np.linspace(0.005, 0.995, 100)) > 0.99
    assert sts.uniformity_p(np.full(100, 0.05)) < 1e-4
