"""SP 800-90B section 6.3 non-IID min-entropy estimators (numpy).

Implemented: most common value (6.3.1), collision (6.3.2), Markov (6.3.3), compression
(6.3.4), t-tuple (6.3.5) and longest repeated substring (6.3.6). Collision, Markov and
compression apply to binary data only, so, as NIST's `ea_non_iid` does, samples of more
than one bit are assessed twice: the estimators that take any alphabet on the samples
(H_original), and all six on their bit string (H_bitstring, per bit). The assessed
min-entropy per sample is min(H_original, bits_per_sample * H_bitstring). The
prediction estimators of 6.3.7-6.3.10 are not implemented; the PyPI `sp800-90b`
wrapper of NIST's reference code is the cross-check (slow tests, benchmark).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq

Z_ALPHA = 2.5758293035489  # the 99.5% normal quantile, as in NIST's code


def _upper_bound(p_hat: float, n: int) -> float:
    return min(1.0, p_hat + Z_ALPHA * math.sqrt(p_hat * (1.0 - p_hat) / (n - 1)))


def most_common_value(s: np.ndarray) -> float:
    counts = np.bincount(s)
    return -math.log2(_upper_bound(counts.max() / s.size, s.size))


def collision(bits: np.ndarray) -> float:
    """Binary collision estimate, with NIST's closed form: X' = -2p^2 + 2p + 2."""
    b = bits.astype(np.int8)
    t, i, n = [], 0, b.size
    # Each wait is 2 (first two bits equal) or 3 (a binary triple always collides).
    eq = (b[:-1] == b[1:]).tolist()  # a list: this scan is sequential, and list indexing is fast
    while i < n - 1:
        if eq[i]:
            t.append(2)
            i += 2
        elif i < n - 2:
            t.append(3)
            i += 3
        else:
            break
    t = np.asarray(t, dtype=np.float64)
    v = t.size
    x = t.mean()
    s = math.sqrt((np.sum(t * t) - t.sum() * x) / (v - 1))
    x = max(2.0, x - Z_ALPHA * s / math.sqrt(v))
    if x >= 2.5:
        return 1.0
    return -math.log2(0.5 + math.sqrt(1.25 - 0.5 * x))


def markov(bits: np.ndarray) -> float:
    """First-order Markov model over 128-bit sequences; per-bit min-entropy."""
    b = bits.astype(np.int8)
    prev, nxt = b[:-1], b[1:]
    c0 = np.count_nonzero(prev == 0)
    c1 = prev.size - c0
    c00 = np.count_nonzero((prev == 0) & (nxt == 0))
    c10 = np.count_nonzero((prev == 1) & (nxt == 0))
    p00 = c00 / c0 if c0 else 0.0
    p01 = 1.0 - p00 if c0 else 0.0
    p10 = c10 / c1 if c1 else 0.0
    p11 = 1.0 - p10 if c1 else 0.0
    p0 = (c0 + (b[-1] == 0)) / b.size
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


def _compression_g(z: float, d: int, num_blocks: int) -> float:
    """G(z) of 6.3.4 step 9, in UL/NIST's O(n) form (A_i partial sums of log2(i)(1-z)^(i-1))."""
    i = np.arange(2, num_blocks + 1, dtype=np.float64)
    with np.errstate(under="ignore"):
        a = np.log2(i) * np.power(1.0 - z, i - 1)
    ad1 = a[: d - 1].sum()  # i = 2..d
    tail = a[d - 1 : num_blocks - 2]  # i = d+1 .. num_blocks-1
    weights = num_blocks - np.arange(d + 1, num_blocks, dtype=np.float64)
    first_sum = np.dot(weights, tail) + (num_blocks - d) * ad1
    a_end = a.sum()  # A_{num_blocks+1}
    return z * (z * first_sum + (a_end - ad1)) / (num_blocks - d)


def compression(bits: np.ndarray, b: int = 6, d: int = 1000) -> float:
    """Maurer-style compression estimate over b-bit blocks; per-bit min-entropy."""
    num_blocks = bits.size // b
    if num_blocks <= d:
        raise ValueError(f"compression estimate needs more than {d * b} bits")
    blocks = bits[: num_blocks * b].reshape(num_blocks, b).astype(np.int64) @ (
        1 << np.arange(b - 1, -1, -1)
    )
    # Distance to the previous occurrence of the same block (i + 1 if none), for i >= d.
    order = np.argsort(blocks, kind="stable")
    prev = np.full(num_blocks, -1, dtype=np.int64)
    same = blocks[order[1:]] == blocks[order[:-1]]
    prev[order[1:][same]] = order[:-1][same]
    idx = np.arange(d, num_blocks)
    dist = np.where(prev[idx] >= 0, idx - prev[idx], idx + 1)
    logs = np.log2(dist.astype(np.float64))
    v = num_blocks - d
    x = logs.mean()
    sigma = 0.5907 * math.sqrt(np.sum(logs * logs) / (v - 1) - x * x)
    x -= Z_ALPHA * sigma / math.sqrt(v)
    alph = 1 << b

    def expected(p: float) -> float:
        q = (1.0 - p) / (alph - 1)
        return _compression_g(p, d, num_blocks) + (alph - 1) * _compression_g(q, d, num_blocks)

    if expected(1.0 / alph) <= x:
        return 1.0
    p = brentq(lambda p: expected(p) - x, 1.0 / alph, 1.0 - 1e-12, xtol=1e-12)
    return -math.log2(p) / b if p > 1.0 / alph else 1.0


class _Tuples:
    """Counts of overlapping w-tuples for w = 1, 2, ...: windows packed into one int64 key,
    extended one symbol at a time, or compared as raw bytes once they no longer fit."""

    def __init__(self, s: np.ndarray):
        self.s = s
        self.width = max(1, int(s.max()).bit_length())
        self.w = 0
        self.key = np.zeros(s.size + 1, dtype=np.int64)

    def counts(self, w: int) -> np.ndarray:
        n = self.s.size - w + 1
        if w * self.width <= 63:
            while self.w < w:  # extend every window by its next symbol
                m = self.s.size - self.w
                self.key = (self.key[:m] << self.width) | self.s[self.w :].astype(np.int64)
                self.w += 1
            key = self.key[:n]
        else:
            windows = np.lib.stride_tricks.sliding_window_view(self.s.astype(np.uint8), w)
            key = np.ascontiguousarray(windows).view(np.dtype((np.void, w))).ravel()
        return np.unique(key, return_counts=True)[1]


def tuple_and_lrs(s: np.ndarray) -> tuple[float, float | None]:
    """t-tuple (6.3.5) and LRS (6.3.6) estimates; LRS is None when no W fits (u > v)."""
    n = s.size
    tuples = _Tuples(s)
    p_max_t = []
    w = 1
    while True:
        counts = tuples.counts(w)
        top = counts.max()
        if top < 35:
            break
        p_max_t.append((top / (n - w + 1)) ** (1.0 / w))
        w += 1
    t_est = (
        -math.log2(_upper_bound(max(p_max_t), n))
        if p_max_t
        else math.log2(max(2, int(s.max()) + 1))
    )
    p_lrs = []  # w is now u, the smallest length whose most common tuple occurs < 35 times
    while counts.max() >= 2:
        pairs = np.sum(counts * (counts - 1) / 2.0)
        total = (n - w + 1) * (n - w) / 2.0
        p_lrs.append((pairs / total) ** (1.0 / w))
        w += 1
        counts = tuples.counts(w)
    lrs_est = -math.log2(_upper_bound(max(p_lrs), n)) if p_lrs else None
    return t_est, lrs_est


def to_bits(samples: np.ndarray, bits_per_sample: int) -> np.ndarray:
    """Big-endian bit string of the samples (the order NIST's tool uses)."""
    shifts = np.arange(bits_per_sample - 1, -1, -1)
    return ((samples[:, None].astype(np.int64) >> shifts) & 1).astype(np.uint8).ravel()


def _estimates(s: np.ndarray, binary: bool) -> dict[str, float]:
    out = {"most_common_value": most_common_value(s)}
    if binary:
        out["collision"] = collision(s)
        out["markov"] = markov(s)
        out["compression"] = compression(s)
    t, lrs = tuple_and_lrs(s)
    out["t_tuple"] = t
    if lrs is not None:
        out["lrs"] = lrs
    return out


def assess(samples: np.ndarray, bits_per_sample: int = 8) -> dict[str, object]:
    """Every estimate, H_original, H_bitstring and the assessed min-entropy per sample."""
    s = np.asarray(samples).astype(np.int64)
    if s.size < 1000:
        raise ValueError(
            "SP 800-90B assessment needs at least 1000 samples (1,000,000 recommended)"
        )
    if bits_per_sample == 1:
        per_bit = _estimates(s, binary=True)
        h = min(per_bit.values())
        return {
            "original": per_bit,
            "bitstring": per_bit,
            "h_original": h,
            "h_bitstring": h,
            "min_entropy": h,
        }
    original = _estimates(s, binary=False)
    bitstring = _estimates(to_bits(s, bits_per_sample), binary=True)
    h_orig, h_bits = min(original.values()), min(bitstring.values())
    return {
        "original": original,
        "bitstring": bitstring,
        "h_original": h_orig,
        "h_bitstring": h_bits,
        "min_entropy": min(h_orig, bits_per_sample * h_bits),
    }
