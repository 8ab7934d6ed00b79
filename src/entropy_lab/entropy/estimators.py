"""SP 800-90B section 6.3: the ten non-IID min-entropy estimators, as NIST's `ea_non_iid` runs them.

Most common value (6.3.1), collision (6.3.2), Markov (6.3.3), compression (6.3.4),
t-tuple (6.3.5), longest repeated substring (6.3.6), and the predictors MultiMCW (6.3.7),
Lag (6.3.8), MultiMMC (6.3.9) and LZ78Y (6.3.10). Collision, Markov and compression apply
to binary data only, so samples with more than two values are assessed twice, as
`ea_non_iid -i` does by default: the other seven on the samples, translated to 0..k-1 in
value order (H_original), and all ten on their big-endian bit string (H_bitstring, per
bit). The assessed min-entropy per sample is min(H_original, bits_per_sample * H_bitstring).
An estimator NIST skips (t-tuple when no tuple occurs 35 times, LRS when no length is left
for it) is left out here too.

t-tuple and LRS read every tuple count off one suffix array (libdivsufsort, through PyPI
`pydivsufsort`, the library NIST's code uses) and its LCP array, so repetitive input costs
no more than random input; the non-binary predictors name their contexts by the same
suffix array. The sequential loops are in `kernels` (numba). Every estimate equals NIST's
(PyPI `sp800-90b`) to 1e-9: tests/test_entropy_estimators.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from pydivsufsort import divsufsort, kasai
from scipy.optimize import brentq

from entropy_lab.entropy import kernels

Z_ALPHA = 2.5758293035489008  # the 99.5% normal quantile, as in NIST's code
NAMES = (
    "most_common_value",
    "collision",
    "markov",
    "compression",
    "t_tuple",
    "lrs",
    "multi_mcw",
    "lag",
    "multi_mmc",
    "lz78y",
)
BINARY_ONLY = frozenset({"collision", "markov", "compression"})
MIN_SAMPLES = kernels.MCW_WINDOWS[-1] + 1  # the fewest samples every estimator runs on


def _symbols(s: np.ndarray) -> np.ndarray:
    """The uint8 array every kernel takes (no copy when it already is one)."""
    return np.ascontiguousarray(s, dtype=np.uint8)


def _upper_bound(p_hat: float, n: int) -> float:
    return min(1.0, p_hat + Z_ALPHA * math.sqrt(p_hat * (1.0 - p_hat) / (n - 1)))


def most_common_value(s: np.ndarray) -> float:
    s = _symbols(s)
    top = (
        kernels.symbol_counts(s).max()
        if s.max() > 1
        else max(n1 := np.count_nonzero(s), s.size - n1)
    )
    return -math.log2(_upper_bound(top / s.size, s.size))


def collision(bits: np.ndarray) -> float:
    """Binary collision estimate, with NIST's closed form: X' = -2p^2 + 2p + 2."""
    v, total, squares = kernels.collision_sums(_symbols(bits))
    x = total / v
    s = math.sqrt((squares - total * x) / (v - 1))
    x = max(2.0, x - Z_ALPHA * s / math.sqrt(v))
    if x >= 2.5:
        return 1.0
    return -math.log2(0.5 + math.sqrt(1.25 - 0.5 * x))


def markov(bits: np.ndarray) -> float:
    """First-order Markov model over 128-bit sequences; per-bit min-entropy."""
    bits = _symbols(bits)
    # transition counts from three vectorised passes: 1 -> 1, ones leaving, ones arriving
    c11 = int(np.count_nonzero(bits[:-1] & bits[1:]))
    c10 = int(np.count_nonzero(bits[:-1])) - c11
    c01 = int(np.count_nonzero(bits[1:])) - c11
    c00 = bits.size - 1 - c01 - c10 - c11
    c0, c1 = c00 + c01, c10 + c11
    p00 = c00 / c0 if c0 else 0.0
    p01 = 1.0 - p00 if c0 else 0.0
    p10 = c10 / c1 if c1 else 0.0
    p11 = 1.0 - p10 if c1 else 0.0
    p0 = (c0 + (bits[-1] == 0)) / bits.size
    p1 = 1.0 - p0
    paths = [
        (p0, [(p00, 127)]),
        (p0, [(p01, 64), (p10, 63)]),
        (p0, [(p01, 1), (p11, 126)]),
        (p1, [(p10, 1), (p00, 126)]),
        (p1, [(p10, 64), (p01, 63)]),
        (p1, [(p11, 127)]),
    ]
    h = 128.0
    for start, steps in paths:
        if start > 0 and all(p > 0 for p, _ in steps):
            h = min(h, -math.log2(start) - sum(k * math.log2(p) for p, k in steps))
    return min(h / 128.0, 1.0)


def compression(bits: np.ndarray, b: int = 6, d: int = 1000) -> float:
    """Maurer-style compression estimate over b-bit blocks; per-bit min-entropy."""
    num_blocks = bits.size // b
    if num_blocks <= d:
        raise ValueError(f"compression estimate needs more than {d * b} bits")
    logs = np.log2(kernels.compression_distances(_symbols(bits), b, d).astype(np.float64))
    v = num_blocks - d
    x = logs.mean()
    sigma = 0.5907 * math.sqrt(np.sum(logs * logs) / (v - 1) - x * x)
    x -= Z_ALPHA * sigma / math.sqrt(v)
    alph = 1 << b
    log_i = np.log2(np.arange(2, num_blocks + 1, dtype=np.float64))

    def expected(p: float) -> float:
        q = (1.0 - p) / (alph - 1)
        return kernels.compression_g(p, d, log_i) + (alph - 1) * kernels.compression_g(q, d, log_i)

    if expected(1.0 / alph) <= x:
        return 1.0
    p = brentq(lambda p: expected(p) - x, 1.0 / alph, 1.0 - 1e-12, xtol=1e-15)
    return -math.log2(p) / b if p > 1.0 / alph else 1.0


def suffix_array(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Suffix array and LCP array (lcp[j]: common prefix of sorted suffixes j and j+1)."""
    text = _symbols(s)
    sa = divsufsort(text)
    return sa, kasai(text, sa)


def tuple_and_lrs(
    s: np.ndarray, sa: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[float | None, float | None]:
    """t-tuple (6.3.5) and LRS (6.3.6) estimates; None where NIST's code skips one."""
    _, lcp = sa if sa is not None else suffix_array(s)
    counts = kernels.tuple_counts(lcp)
    if counts.shape[0] < 3:  # no repeated substring at all
        return None, None
    p_tuple, p_lrs = kernels.tuple_maxima(counts, s.size)
    return tuple(None if p < 0 else -math.log2(_upper_bound(p, s.size)) for p in (p_tuple, p_lrs))


_LDBL_EPS = np.finfo(np.longdouble).eps
_LOG_99 = math.log(0.99)


def _run_probability_log(p: float, r: int, n: int) -> float:
    """log P(no run of r correct predictions in n) for success probability p (6.3.7 step 5),
    by NIST's fixed-point iteration in long double."""
    p_ = np.longdouble(p)
    q = 1 - p_
    x, last = np.longdouble(1), np.longdouble(0)
    for _ in range(66):
        if not x - last > _LDBL_EPS * x:
            break
        last = x
        x = 1 + q * p_**r * x ** (r + 1)
    with np.errstate(divide="ignore", invalid="ignore"):  # as in C: -inf or nan, no signal
        return float(np.log(1 - p_ * x) - np.log((r + 1 - r * x) * q) - (n + 1) * np.log(x))


def _close(a: float, b: float) -> bool:
    """NIST's relEpsilonEqual(a, b, DBL_MIN, DBL_EPSILON, 4 ULPs)."""
    if math.isnan(a) or math.isnan(b):
        return False
    if a == b:
        return True
    if math.isinf(a) or math.isinf(b):
        return False
    lo, hi = sorted((abs(a), abs(b)))
    diff = abs(a - b)
    tiny = np.finfo(np.float64).tiny
    if lo < tiny or diff < tiny or math.isinf(diff) or hi * np.finfo(np.float64).eps < tiny:
        return diff <= tiny
    if diff <= hi * np.finfo(np.float64).eps:
        return True
    if (a < 0) != (b < 0):
        return False
    bits = np.array([lo, hi], dtype=np.float64).view(np.uint64)
    return int(bits[1]) - int(bits[0]) <= 4


def _between(x: float, a: float, b: float, closed: bool = True) -> bool:
    lo, hi = min(a, b), max(a, b)
    return lo <= x <= hi if closed else lo < x < hi


def _local_p(r: int, n: int, low: float) -> float:
    """The p in [low, 1] with P(no run of r) = 0.99: NIST's bisection, stops and all."""
    lo_bound, hi_bound = low, 1.0
    lo_value, hi_value = math.inf, -math.inf
    p = (lo_bound + hi_bound) / 2.0
    value = _run_probability_log(p, r, n)
    for _ in range(1076):
        if _close(value, _LOG_99):
            break
        if value > _LOG_99:
            lo_bound, lo_value = p, value
        else:
            hi_bound, hi_value = p, value
        if lo_bound >= hi_bound:
            return min(max(lo_bound, hi_bound), 1.0)
        if not (_between(lo_bound, low, 1.0) and _between(hi_bound, low, 1.0)):
            return 1.0
        if not _between(_LOG_99, lo_value, hi_value):
            return 1.0
        last, p = p, (lo_bound + hi_bound) / 2.0
        if not _between(p, lo_bound, hi_bound, closed=False) or last == p:
            return hi_bound
        value = _run_probability_log(p, r, n)
        if not _between(value, lo_value, hi_value):
            return hi_bound
    return p


def prediction_estimate(correct: int, n: int, longest_run: int, k: int) -> float:
    """6.3.7-6.3.10's last steps: the larger of the global success rate's 99% upper bound
    and the local one that makes the longest run of successes plausible."""
    p_global = correct / n
    if p_global > 0:
        p_global = min(1.0, p_global + Z_ALPHA * math.sqrt(p_global * (1.0 - p_global) / (n - 1)))
    else:
        p_global = 1.0 - 0.01 ** (1.0 / n)
    p = max(1.0 / k, p_global)
    if p < 1.0 and _run_probability_log(p, longest_run + 1, n) > _LOG_99:
        p = max(p, _local_p(longest_run + 1, n, p))
    return -math.log2(p)


def multi_mcw(s: np.ndarray, k: int) -> float | None:
    if s.size < MIN_SAMPLES:
        return None
    s = _symbols(s)
    counts = kernels.multi_mcw_binary(s) if k == 2 else kernels.multi_mcw(s, k)
    return prediction_estimate(*counts, k)


def lag(s: np.ndarray, k: int) -> float:
    return prediction_estimate(*kernels.lag(_symbols(s)), k)


def multi_mmc(s: np.ndarray, k: int, ids: np.ndarray | None = None) -> float:
    """`ids`: `kernels.substring_ids` with 17 lengths (non-binary symbols only)."""
    s = _symbols(s)
    if k == 2:
        return prediction_estimate(*kernels.multi_mmc_binary(s), 2)
    if ids is None:
        ids = kernels.substring_ids(*suffix_array(s), kernels.MMC_D + 1)
    return prediction_estimate(*kernels.multi_mmc(s, ids), k)


def lz78y(s: np.ndarray, k: int, ids: np.ndarray | None = None) -> float:
    """`ids`: `kernels.substring_ids` with at least 16 lengths (non-binary symbols only)."""
    s = _symbols(s)
    if k == 2:
        return prediction_estimate(*kernels.lz78y_binary(s), 2)
    if ids is None:
        ids = kernels.substring_ids(*suffix_array(s), kernels.LZ78Y_B)
    return prediction_estimate(*kernels.lz78y(s, ids, k), k)


def to_bits(samples: np.ndarray, bits_per_sample: int) -> np.ndarray:
    """Big-endian bit string of the samples (the order NIST's tool uses)."""
    bits = np.unpackbits(np.asarray(samples, dtype=np.uint8)[:, None], axis=1)
    return np.ascontiguousarray(bits[:, 8 - bits_per_sample :]).ravel()


def _estimates(
    s: np.ndarray, k: int, step: Callable[[str], None] | None = None
) -> dict[str, float]:
    """Every estimator that applies to symbols 0..k-1, in SP 800-90B's order."""
    out: dict[str, float] = {}

    def record(name: str, h: float | None) -> None:
        if h is not None:
            out[name] = h
        if step is not None:
            step(name)

    record("most_common_value", most_common_value(s))
    if k == 2:
        record("collision", collision(s))
        record("markov", markov(s))
        record("compression", compression(s))
    sa = suffix_array(s)
    t_est, lrs_est = tuple_and_lrs(s, sa)
    record("t_tuple", t_est)
    record("lrs", lrs_est)
    record("multi_mcw", multi_mcw(s, k))
    record("lag", lag(s, k))
    ids = None if k == 2 else kernels.substring_ids(*sa, kernels.MMC_D + 1)
    del sa
    record("multi_mmc", multi_mmc(s, k, ids))
    record("lz78y", lz78y(s, k, ids))
    return out


def translate(samples: np.ndarray) -> tuple[np.ndarray, int]:
    """Samples as symbols 0..k-1 in value order, and k (NIST's tool maps them the same way)."""
    values, symbols = np.unique(np.asarray(samples), return_inverse=True)
    return symbols.astype(np.uint8).ravel(), values.size


def assess(
    samples: np.ndarray, bits_per_sample: int = 8, step: Callable[[str], None] | None = None
) -> dict[str, object]:
    """Every estimate, H_original, H_bitstring and the assessed min-entropy per sample.

    `step(name)` is called after each estimator (a progress bar's hook). Raises ValueError
    when the input cannot be assessed (too few samples, a single value).
    """
    raw = np.asarray(samples)
    if raw.size < MIN_SAMPLES:
        raise ValueError(
            f"SP 800-90B assessment needs at least {MIN_SAMPLES} samples (1,000,000 recommended)"
        )
    if raw.min() < 0 or raw.max() >= 1 << bits_per_sample:
        raise ValueError(f"samples do not fit in {bits_per_sample} bits")
    symbols, k = translate(raw)
    if k < 2:
        raise ValueError(f"every sample is {int(raw.flat[0])}: no entropy to assess")
    original = _estimates(symbols, k, step)
    h_orig = min(original.values())
    if k == 2:  # as ea_non_iid: binary samples have no separate bit-string assessment
        return {
            "original": original,
            "bitstring": None,
            "h_original": h_orig,
            "h_bitstring": None,
            "min_entropy": h_orig,
        }
    bitstring = _estimates(to_bits(raw, bits_per_sample), 2, step)
    h_bits = min(bitstring.values())
    return {
        "original": original,
        "bitstring": bitstring,
        "h_original": h_orig,
        "h_bitstring": h_bits,
        "min_entropy": min(h_orig, bits_per_sample * h_bits),
    }


def steps(samples: np.ndarray) -> int:
    """How many times `assess` calls `step` on these samples."""
    k = np.unique(np.asarray(samples)).size
    return len(NAMES) if k == 2 else 2 * len(NAMES) - len(BINARY_ONLY)
