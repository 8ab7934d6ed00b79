"""NIST SP 800-22 rev. 1a statistical tests (numpy + scipy.special), and the suite's
pass criteria over many sequences: the proportion passing and p-value uniformity.

Written here because the PyPI implementation (`nistrng`) has known wrong p-values; each
test is checked against the worked examples of section 2 and Appendix B (binary e).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.special import erfc, gammaincc
from scipy.stats import norm

ALPHA = 0.01


def _pm1(bits: np.ndarray) -> np.ndarray:
    return 2 * bits.astype(np.int64) - 1


def frequency(bits: np.ndarray) -> float:
    s_obs = abs(_pm1(bits).sum()) / math.sqrt(bits.size)
    return float(erfc(s_obs / math.sqrt(2)))


def block_frequency(bits: np.ndarray, m: int = 128) -> float:
    n_blocks = bits.size // m
    pi = bits[: n_blocks * m].reshape(n_blocks, m).mean(axis=1)
    chi2 = 4 * m * np.sum((pi - 0.5) ** 2)
    return float(gammaincc(n_blocks / 2, chi2 / 2))


def runs(bits: np.ndarray) -> float:
    n = bits.size
    pi = bits.mean()
    if abs(pi - 0.5) >= 2 / math.sqrt(n):  # frequency prerequisite fails
        return 0.0
    v_obs = 1 + np.count_nonzero(bits[1:] != bits[:-1])
    return float(erfc(abs(v_obs - 2 * n * pi * (1 - pi)) / (2 * math.sqrt(2 * n) * pi * (1 - pi))))


# (block length M, class boundaries of the longest run, class probabilities pi_i)
_LONGEST_RUN = (
    (750_000, 10_000, (10, 16), (0.0882, 0.2092, 0.2483, 0.1933, 0.1208, 0.0675, 0.0727)),
    (6_272, 128, (4, 9), (0.1174, 0.2430, 0.2493, 0.1752, 0.1027, 0.1124)),
    (128, 8, (1, 4), (0.2148, 0.3672, 0.2305, 0.1875)),
)


def _longest_run_per_block(blocks: np.ndarray) -> np.ndarray:
    padded = np.pad(blocks, ((0, 0), (1, 1)))
    d = np.diff(padded.astype(np.int8), axis=1)
    longest = np.zeros(blocks.shape[0], dtype=np.int64)
    rows_s, cols_s = np.nonzero(d == 1)
    _, cols_e = np.nonzero(d == -1)  # run ends pair with starts row by row, in order
    np.maximum.at(longest, rows_s, cols_e - cols_s)
    return longest


def longest_run(bits: np.ndarray) -> float:
    n = bits.size
    fits = [row for row in _LONGEST_RUN if n >= row[0]]
    if not fits:
        raise ValueError("longest run test needs at least 128 bits")
    _, m, (lo, hi), pi = fits[0]
    n_blocks = n // m
    runs_ = np.clip(_longest_run_per_block(bits[: n_blocks * m].reshape(n_blocks, m)), lo, hi)
    v = np.bincount(runs_ - lo, minlength=hi - lo + 1)
    expected = n_blocks * np.asarray(pi)
    chi2 = np.sum((v - expected) ** 2 / expected)
    return float(gammaincc((len(pi) - 1) / 2, chi2 / 2))


def _pattern_counts(bits: np.ndarray, m: int) -> np.ndarray:
    """Counts of every overlapping m-bit pattern, the sequence wrapped around its end."""
    if m == 0:
        return np.array([bits.size])
    ext = np.concatenate([bits, bits[: m - 1]]).astype(np.int64)
    key = np.zeros(bits.size, dtype=np.int64)
    for j in range(m):
        key = (key << 1) | ext[j : j + bits.size]
    return np.bincount(key, minlength=1 << m)


def _psi2(bits: np.ndarray, m: int) -> float:
    if m <= 0:
        return 0.0
    counts = _pattern_counts(bits, m).astype(np.float64)
    return (1 << m) / bits.size * np.sum(counts**2) - bits.size


def serial(bits: np.ndarray, m: int = 16) -> tuple[float, float]:
    p0, p1, p2 = _psi2(bits, m), _psi2(bits, m - 1), _psi2(bits, m - 2)
    d1, d2 = p0 - p1, p0 - 2 * p1 + p2
    return float(gammaincc(2 ** (m - 2), d1 / 2)), float(gammaincc(2 ** (m - 3), d2 / 2))


def approximate_entropy(bits: np.ndarray, m: int = 10) -> float:
    n = bits.size

    def phi(k: int) -> float:
        c = _pattern_counts(bits, k) / n
        c = c[c > 0]
        return float(np.sum(c * np.log(c)))

    apen = phi(m) - phi(m + 1)
    chi2 = 2 * n * (math.log(2) - apen)
    return float(gammaincc(2 ** (m - 1), chi2 / 2))


def cumulative_sums(bits: np.ndarray) -> tuple[float, float]:
    """(forward, backward) p-values."""
    n = bits.size

    def p_value(walk: np.ndarray) -> float:
        z = int(np.max(np.abs(walk)))
        sq = math.sqrt(n)
        k1 = np.arange(math.floor((-n / z + 1) / 4), math.floor((n / z - 1) / 4) + 1)
        k2 = np.arange(math.floor((-n / z - 3) / 4), math.floor((n / z - 1) / 4) + 1)
        s1 = np.sum(norm.cdf((4 * k1 + 1) * z / sq) - norm.cdf((4 * k1 - 1) * z / sq))
        s2 = np.sum(norm.cdf((4 * k2 + 3) * z / sq) - norm.cdf((4 * k2 + 1) * z / sq))
        return float(1 - s1 + s2)

    x = _pm1(bits)
    return p_value(np.cumsum(x)), p_value(np.cumsum(x[::-1]))


def dft(bits: np.ndarray) -> float:
    n = bits.size
    modulus = np.abs(np.fft.rfft(_pm1(bits))[: n // 2])
    threshold = math.sqrt(math.log(1 / 0.05) * n)
    n0 = 0.95 * n / 2
    n1 = np.count_nonzero(modulus < threshold)
    d = (n1 - n0) / math.sqrt(n * 0.95 * 0.05 / 4)
    return float(erfc(abs(d) / math.sqrt(2)))


def suite(n: int) -> dict[str, Callable[[np.ndarray], float | tuple[float, ...]]]:
    """The tests with parameters inside SP 800-22's recommended ranges for n-bit sequences
    (block frequency: M >= 20, M > n/100; serial: m < log2(n) - 2; ApEn: m < log2(n) - 5)."""
    log_n = int(math.log2(n))
    block_m = max(20, n // 99 + 1)
    serial_m, apen_m = min(16, log_n - 3), min(10, log_n - 6)
    return {
        "frequency": frequency,
        "block_frequency": lambda b: block_frequency(b, block_m),
        "runs": runs,
        "longest_run": longest_run,
        "serial": lambda b: serial(b, serial_m),
        "approximate_entropy": lambda b: approximate_entropy(b, apen_m),
        "cumulative_sums": cumulative_sums,
        "dft": dft,
    }


def proportion_interval(n_sequences: int, alpha: float = ALPHA) -> tuple[float, float]:
    """The acceptable proportion of passing sequences: p +- 3 sqrt(p(1-p)/m), p = 1 - alpha."""
    p = 1 - alpha
    half = 3 * math.sqrt(p * (1 - p) / n_sequences)
    return p - half, p + half


def uniformity_p(p_values: np.ndarray) -> float:
    """Chi-square of the p-values over ten equal bins (section 4.2.2)."""
    counts = np.histogram(p_values, bins=10, range=(0.0, 1.0))[0]
    expected = len(p_values) / 10
    chi2 = np.sum((counts - expected) ** 2 / expected)
    return float(gammaincc(9 / 2, chi2 / 2))


def run_suite(
    bits: np.ndarray, sequence_bits: int, alpha: float = ALPHA
) -> dict[str, dict[str, float | bool]]:
    """Split `bits` into sequences, run every test, apply the suite's two pass criteria.

    Uniformity needs at least 55 sequences (section 4.2.2); with fewer it is not judged.
    """
    m = bits.size // sequence_bits
    if m < 1:
        raise ValueError(f"need at least {sequence_bits} bits for one sequence")
    seqs = bits[: m * sequence_bits].reshape(m, sequence_bits)
    lo, _ = proportion_interval(m, alpha)
    out: dict[str, dict[str, float | bool]] = {}
    for name, test in suite(sequence_bits).items():
        results = [np.atleast_1d(test(s)) for s in seqs]
        for j in range(len(results[0])):
            p = np.array([r[j] for r in results])
            key = name if len(results[0]) == 1 else f"{name}_{j + 1}"
            proportion = float(np.mean(p >= alpha))
            uniform = uniformity_p(p) if m >= 55 else None
            out[key] = {
                "proportion": proportion,
                "uniformity_p": uniform,
                "passed": proportion >= lo and (uniform is None or uniform >= 1e-4),
            }
    return out
