"""The sequential scans of the SP 800-90B estimators, compiled with numba.

A predictor's state at sample i depends on every earlier sample (its counts, its
scoreboard, the dictionary it has grown), so these loops cannot be expressed as numpy
array operations without sorting the input once per context length, which costs more
than NIST's whole C++ loop on a million-bit string. numba compiles them to machine code
(cached on disk after the first call); each follows the order of updates of NIST's
`ea_non_iid` (SP800-90B_EntropyAssessment, cpp/non_iid), which decides its ties.

Symbols are uint8; literal (non-binary) inputs arrive translated to 0..k-1 in value order,
as NIST's tool translates them. The predictors return (correct predictions C, number of
predictions N, longest run of correct predictions); `estimators.prediction_estimate`
turns those into a min-entropy.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numba
import numpy as np
from numba import njit

if not os.environ.get("NUMBA_CACHE_DIR"):
    # Compiled code is cached outside the source tree: files under src/ would change the
    # harvest stage's code hash in dvc.lock.
    _cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    numba.config.CACHE_DIR = str(_cache / "entropy-lab" / "numba")

MCW_WINDOWS = (63, 255, 1023, 4095)  # 6.3.7
LAG_D = 128  # 6.3.8
MMC_D = 16  # 6.3.9
MMC_MAX_ENTRIES = 100_000
LZ78Y_B = 16  # 6.3.10
LZ78Y_MAX_DICT = 65_536


@njit(cache=True, nogil=True, inline="always")
def _tally(correct, c, run, longest):
    """A predictor's bookkeeping after one prediction: (correct count, current run of
    corrects, longest run)."""
    if correct:
        return c + 1, run + 1, max(longest, run + 1)
    return c, 0, longest


@njit(cache=True, nogil=True)
def symbol_counts(s):
    """Occurrences of each byte value (6.3.1), in four interleaved tables so that runs of one
    value do not wait on each other's increments (np.bincount first widens bytes to int64)."""
    parts = np.zeros((4, 256), np.int64)
    n4 = s.size - s.size % 4
    for i in range(0, n4, 4):
        parts[0, s[i]] += 1
        parts[1, s[i + 1]] += 1
        parts[2, s[i + 2]] += 1
        parts[3, s[i + 3]] += 1
    for i in range(n4, s.size):
        parts[0, s[i]] += 1
    return parts.sum(axis=0)


@njit(cache=True, nogil=True)
def collision_sums(b):
    """6.3.2: the waits for a collision (2 or 3 bits) read left to right: (count, sum, sum of squares)."""
    n = b.size
    i = 0
    v = 0
    s = 0
    while i < n - 1:
        if b[i] == b[i + 1]:
            t = 2
        elif i < n - 2:
            t = 3
        else:
            break
        v += 1
        s += t * t
        i += t
    return v, i, s


@njit(cache=True, nogil=True)
def compression_distances(bits, b, d):
    """6.3.4: for each b-bit block from the (d+1)-th on, the distance back to the last
    occurrence of the same block (its index + 1 if none)."""
    num_blocks = bits.size // b
    last = np.zeros(1 << b, np.int64)
    out = np.empty(num_blocks - d, np.int64)
    for i in range(num_blocks):
        block = 0
        for j in range(b):
            block = (block << 1) | (bits[i * b + j] & 1)
        if i >= d:
            out[i - d] = i + 1 - last[block]
        last[block] = i + 1
    return out


@njit(cache=True, nogil=True)
def compression_g(z, d, log_i):
    """6.3.4 step 9's G(z) in NIST's O(n) form: G = z (z F + A_end - A_d) / v with the
    partial sums A_i of log2(i) (1-z)^(i-1), i = 2..num_blocks (log_i[i-2] = log2(i)).
    Compensated sums; the power is refreshed from exp every 1024 terms, and the loop stops
    where the terms leave double's normal range, as NIST's stops where they underflow."""
    num_blocks = log_i.size + 1
    step = math.log1p(-z)
    power = 1.0 - z
    first, first_c, later, later_c = 0.0, 0.0, 0.0, 0.0
    for i in range(2, num_blocks + 1):
        if i % 1024 == 0:
            power = math.exp((i - 1) * step)
        if power < 1e-300:
            break
        a = log_i[i - 2] * power
        weight = num_blocks - d if i <= d else num_blocks - i
        y = weight * a - first_c
        s = first + y
        first_c = (s - first) - y
        first = s
        if i > d:
            y = a - later_c
            s = later + y
            later_c = (s - later) - y
            later = s
        power *= 1.0 - z
    return z * (z * first + later) / (num_blocks - d)


@njit(cache=True, nogil=True)
def tuple_counts(lcp):
    """6.3.5-6.3.6 from an LCP array (lcp[j] = common prefix of the j-th and (j+1)-th
    sorted suffixes, last entry 0; int32, as libdivsufsort gives it): per length t, row t
    holds the most occurrences of one t-tuple (column 0, to be suffix-maximised) and the
    number of pairs of equal t-tuples (column 1, to be suffix-summed). One stack pass over
    the LCP intervals, O(n). The two counts of a length share a row, so the pass touches
    one cache line per length where two arrays took two (0.7-0.85x the time on a periodic
    bit string, whose repeats run to the input's length)."""
    n = lcp.size
    v = 0
    for j in range(n):
        if lcp[j] > v:
            v = lcp[j]
    counts = np.zeros((v + 2, 2), np.int64)
    heights = np.empty(n + 1, np.int32)
    lefts = np.empty(n + 1, np.int32)
    top = 0
    for i in range(n):
        h = lcp[i]
        left = i
        while top > 0 and heights[top - 1] > h:
            top -= 1
            th = heights[top]
            tl = lefts[top]
            below = h
            if top > 0 and heights[top - 1] > below:
                below = heights[top - 1]
            c = np.int64(i - tl + 1)  # suffixes sharing a prefix of length below+1 .. th
            if c > counts[th, 0]:
                counts[th, 0] = c
            pairs = c * (c - 1) // 2
            counts[th, 1] += pairs
            counts[below, 1] -= pairs
            left = tl
        if h > 0 and (top == 0 or heights[top - 1] < h):
            heights[top] = h
            lefts[top] = left
            top += 1
    return counts


@njit(cache=True, nogil=True)
def _ratio(counts, n, t, lrs):
    """p_t of the t-tuple estimate (most occurrences over the t-tuples' number) or of LRS
    (pairs of equal t-tuples over all pairs), as NIST's code divides."""
    if lrs:
        return counts[t, 1] / (((n - t) * (n - t + 1)) >> 1)
    return counts[t, 0] / (n - t + 1)


@njit(cache=True, nogil=True)
def _largest_root(counts, n, t0, t1, lrs, logs, top):
    """max over t in [t0, t1) of p_t^(1/t), taken with pow (as NIST's code computes it) at
    every t whose logs[t] = log(p_t)/t is within rounding of the range's top; -1 where the
    range is empty."""
    floor = top - 1e-12 * max(1.0, abs(top))
    out = -1.0
    for t in range(t0, t1):
        if logs[t] >= floor:
            out = max(out, _ratio(counts, n, t, lrs) ** (1.0 / t))
    return out


@njit(cache=True, nogil=True)
def tuple_maxima(counts, n):
    """From `tuple_counts` (changed in place): the largest p_t^(1/t) of the t-tuple
    estimate (t < u, where u is the first length with no tuple occurring 35 times) and of
    the LRS estimate (u <= t <= v, v the longest repeat); -1 where there is none. One pass
    from t = v down: the suffix maxima fall with t, so a length is on LRS's side as soon as
    its maximum is below 35, and its log(p_t)/t is taken in the same pass."""
    v = counts.shape[0] - 2
    logs = np.empty(v + 1, np.float64)
    u = v + 1
    top_tuple = top_lrs = -np.inf
    for t in range(v, 0, -1):  # most occurrences of a t-tuple, pairs of equal t-tuples
        counts[t, 0] = max(counts[t, 0], counts[t + 1, 0])
        counts[t, 1] += counts[t + 1, 1]
        lrs = counts[t, 0] < 35
        logs[t] = np.log(_ratio(counts, n, t, lrs)) / t
        if lrs:
            u = t
            top_lrs = max(top_lrs, logs[t])
        else:
            top_tuple = max(top_tuple, logs[t])
    return (
        _largest_root(counts, n, 1, u, False, logs, top_tuple),
        _largest_root(counts, n, u, v + 1, True, logs, top_lrs),
    )


@njit(cache=True, nogil=True)
def substring_ids(sa, lcp, lengths):
    """ids[p, L-1]: a number shared by exactly the positions p whose next L symbols are
    equal (ranks of the distinct L-substrings, read off the suffix array), L = 1..lengths."""
    n = sa.size
    ids = np.empty((n, lengths), np.int32)
    cur = np.full(lengths, -1, np.int32)
    for r in range(n):
        common = lcp[r - 1] if r > 0 else 0
        for k in range(lengths):
            if common < k + 1:
                cur[k] += 1
            ids[sa[r], k] = cur[k]
    return ids


@njit(cache=True, nogil=True)
def multi_mcw(s, k):
    """6.3.7 MultiMCW: four most-common-in-window predictors (ties to the value seen last).

    When the leader's oldest occurrence leaves a window, two branch-free (vectorised) passes
    over the k counts give the new top count and how many share it; a scan for the one seen
    last runs only if the old leader is not alone at the top (skewed sources lose their
    leader's oldest sample often, and keep a clear leader). On uniform bytes, whose small
    windows often tie at the top, those passes come on top of the scan."""
    n = s.size
    nw = len(MCW_WINDOWS)
    w = np.array(MCW_WINDOWS, np.int64)
    counts = np.zeros((nw, k), np.int64)
    last = np.zeros((nw, k), np.int64)
    top = np.zeros(nw, np.int64)
    frequent = np.zeros(nw, np.int64)
    for i in range(w[nw - 1]):
        x = s[i]
        for j in range(nw):
            if i < w[j]:
                counts[j, x] += 1
                if top[j] <= counts[j, x]:
                    top[j] = counts[j, x]
                    frequent[j] = x
                last[j, x] = i
    score = np.zeros(nw, np.int64)
    winner = 0
    c = 0
    run = 0
    longest = 0
    for i in range(w[0], n):
        x = s[i]
        c, run, longest = _tally(frequent[winner] == x, c, run, longest)
        for j in range(nw):
            if i >= w[j] and frequent[j] == x:
                score[j] += 1
                if score[j] >= score[winner]:
                    winner = j
        for j in range(nw):
            if i < w[j]:
                continue
            old = s[i - w[j]]
            counts[j, old] -= 1
            counts[j, x] += 1
            last[j, x] = i
            if top[j] <= counts[j, x]:  # x, seen last, ties or passes the top
                top[j] = counts[j, x]
                frequent[j] = x
            elif old == frequent[j]:
                row = counts[j]
                high = 0
                for y in range(k):
                    high = max(high, row[y])
                top[j] = high
                shared = 0
                for y in range(k):
                    shared += row[y] == high
                if shared > 1 or row[old] != high:  # the one seen last among those at the top
                    at = -1
                    for y in range(k):
                        if row[y] == high and last[j, y] > at:
                            frequent[j] = y
                            at = last[j, y]
    return c, n - w[0], longest


@njit(cache=True, nogil=True)
def multi_mcw_binary(s):
    """6.3.7 MultiMCW on bits: the windows are odd, so the most common bit is the majority."""
    n = s.size
    nw = len(MCW_WINDOWS)
    w = np.array(MCW_WINDOWS, np.int64)
    ones = np.zeros(nw, np.int64)
    for j in range(nw):
        for i in range(w[j]):
            ones[j] += s[i]
    score = np.zeros(nw, np.int64)
    winner = 0
    c = 0
    run = 0
    longest = 0
    for i in range(w[0], n):
        x = s[i]
        c, run, longest = _tally((2 * ones[winner] > w[winner]) == (x == 1), c, run, longest)
        for j in range(nw):
            if i >= w[j]:
                if (2 * ones[j] > w[j]) == (x == 1):
                    score[j] += 1
                    if score[j] >= score[winner]:
                        winner = j
                ones[j] += np.int64(x) - s[i - w[j]]
    return c, n - w[0], longest


LAG_SPARSE = 32  # fewer matches in the window than this: visit them; else scan all 128 lags


@njit(cache=True, nogil=True)
def lag(s):
    """6.3.8 Lag: predictors "the value d+1 samples back", d < 128; ties to the longer lag.

    Only the lags whose sample equals the new one gain a point. Each symbol keeps the
    positions of its occurrences among the last 128 samples (a ring, as NIST's code does);
    when the new symbol has fewer than LAG_SPARSE of them (most steps, for bytes of many
    values) the step visits just those, otherwise it scans all 128 lags in a branch-free
    loop the compiler vectorises (bit strings, skewed sources). Both give the same scores
    and leader."""
    n = s.size
    score = np.zeros(LAG_D, np.int64)  # score[e]: lag d = 127 - e, so the window reads forward
    ring = np.empty((256, LAG_D), np.int64)  # ring[x]: where x occurred, oldest first
    # unsigned ring indices: numba then skips its negative-index wraparound in the inner loop
    first = np.zeros(256, np.uint64)
    count = np.zeros(256, np.uint64)
    one = np.uint64(1)
    mask = np.uint64(LAG_D - 1)  # LAG_D is a power of two
    winner = 0
    high = 0
    c = 0
    run = 0
    longest = 0
    for i in range(n):
        x = s[i]
        if i > 0:
            c, run, longest = _tally(s[i - winner - 1] == x, c, run, longest)
            # NIST updates the matching lags in increasing d, each taking the lead at >= the
            # high score.
            if i >= LAG_D and count[x] >= LAG_SPARSE:
                # branch-free: the new leader is the longest matching lag with the top score
                top = -1
                window = s[i - LAG_D : i]
                for e in range(LAG_D):
                    hit = window[e] == x
                    score[e] += hit
                    key = (score[e] << 8) | (LAG_D - 1 - e)
                    top = max(top, key if hit else -1)
                if top >= 0 and (top >> 8) >= high:
                    high = top >> 8
                    winner = top & 0xFF
            else:
                start = first[x]
                m = count[x]
                while m > 0:  # newest first: increasing d
                    m -= one
                    e = np.uint64(ring[x, (start + m) & mask] - i + LAG_D)
                    new = score[e] + 1
                    score[e] = new
                    if new >= high:
                        high = new
                        winner = LAG_D - 1 - np.int64(e)
        if i >= LAG_D:  # sample i - 128 leaves the window: it is its symbol's oldest entry
            y = s[i - LAG_D]
            first[y] = (first[y] + one) & mask
            count[y] -= one
        ring[x, (first[x] + count[x]) & mask] = i
        count[x] += one
    return c, n - 1, longest


@njit(cache=True, nogil=True)
def multi_mmc_binary(s):
    """6.3.9 MultiMMC on bits: Markov predictors of order 1..16 over context tables."""
    n = s.size
    # the counts of context length m (2^m contexts x 2 next bits) start at 2^(m+1) - 4
    table = np.zeros((1 << (MMC_D + 2)) - 4, np.int32)
    entries = np.ones(MMC_D, np.int64)
    pattern = 0
    for d in range(MMC_D):  # the first context of each order
        pattern = (pattern << 1) | (s[d] & 1)
        table[(1 << (d + 2)) - 4 + (pattern << 1) + (s[d + 1] & 1)] = 1
    score = np.zeros(MMC_D, np.int64)
    winner = 0
    c = 0
    run = 0
    longest = 0
    history = 0  # the last 16 bits, newest lowest
    for i in range(2, n):
        history = ((history << 1) | (s[i - 1] & 1)) & 0xFFFF
        y = s[i] & 1
        found = True
        current = winner
        for d in range(min(MMC_D, i - 1)):
            # the context s[i-d-1..i-1], of length d+1
            e = (1 << (d + 2)) - 4 + ((history & ((2 << d) - 1)) << 1)
            if found:  # a context is looked up only while its shorter suffix was found
                a0 = table[e]
                a1 = table[e + 1]
                guess = 1 if a1 >= a0 else 0
                found = (a0 | a1) != 0
            if found:
                if guess == y:
                    score[d] += 1
                    if score[d] >= score[winner]:
                        winner = d
                    if d == current:
                        c += 1
                        run += 1
                        if run > longest:
                            longest = run
                elif d == current:
                    run = 0
                seen = a1 if y else a0
                if seen != 0:
                    table[e + y] = seen + 1
                elif entries[d] < MMC_MAX_ENTRIES:
                    table[e + y] = 1
                    entries[d] += 1
            elif entries[d] < MMC_MAX_ENTRIES:
                table[e + y] = 1
                entries[d] += 1
    return c, n - 2, longest


@njit(cache=True, nogil=True)
def multi_mmc(s, ids):
    """6.3.9 MultiMMC on non-binary symbols; `ids` from `substring_ids` with 17 lengths
    name the contexts (lengths 1..16) and (context, next symbol) pairs (lengths 2..17).
    Each context predicts its most frequent next symbol, ties to the larger symbol."""
    n = s.size
    m = ids.shape[0]
    pair_count = np.zeros((MMC_D, m), np.int32)
    best = np.zeros((MMC_D, m), np.int32)  # 0: the context has not been seen
    guess = np.zeros((MMC_D, m), np.uint8)
    entries = np.zeros(MMC_D, np.int64)
    for d in range(min(MMC_D, n - 2)):  # the first context of each order
        ctx = ids[0, d]
        pair_count[d, ids[0, d + 1]] = 1
        best[d, ctx] = 1
        guess[d, ctx] = s[d + 1]
        entries[d] = 1
    score = np.zeros(MMC_D, np.int64)
    winner = 0
    c = 0
    run = 0
    longest = 0
    for i in range(2, n):
        y = s[i]
        found = False
        current = winner
        for d in range(min(MMC_D, i - 1)):
            p = i - d - 1
            ctx = ids[p, d]
            if d == 0 or found:  # a context is looked up only while its shorter suffix was found
                found = best[d, ctx] > 0
            if found:
                if guess[d, ctx] == y:
                    score[d] += 1
                    if score[d] >= score[winner]:
                        winner = d
                    if d == current:
                        c += 1
                        run += 1
                        if run > longest:
                            longest = run
                elif d == current:
                    run = 0
            pair = ids[p, d + 1]
            got = pair_count[d, pair]
            # a new pair, or any pair of a context not looked up, counts as an entry (as NIST's)
            if got == 0 or not found:
                if entries[d] >= MMC_MAX_ENTRIES:
                    continue
                entries[d] += 1
            got += 1
            pair_count[d, pair] = got
            if got > best[d, ctx] or (got == best[d, ctx] and y > guess[d, ctx]):
                best[d, ctx] = got
                guess[d, ctx] = y
    return c, n - 2, longest


@njit(cache=True, nogil=True, inline="always")
def _lz78y_context(table, j, history, y, top, guess, size):
    """One context length j of LZ78Y on bits: its prediction joins (top, guess), its count
    of y is raised; returns (top, guess, dictionary size)."""
    e = (1 << (j + 1)) - 4 + ((history & ((1 << j) - 1)) << 1)  # the context s[i-j..i-1]
    a0 = table[e]
    a1 = table[e + 1]
    count = max(a0, a1)
    if count > top:  # the longest context with the most counts predicts
        top = count
        guess = a1 >= a0
    if count == 0:  # a new context enters the dictionary while there is room
        if size >= LZ78Y_MAX_DICT:
            return top, guess, size
        size += 1
    table[e + y] = (a1 if y else a0) + 1
    return top, guess, size


@njit(cache=True, nogil=True)
def lz78y_binary(s):
    """6.3.10 LZ78Y on bits: contexts of 1..16 bits in one dictionary of at most 65,536.

    The 16 context lengths are written out, longest first, so that each is a compile-time
    constant: a third faster than a loop over them (bench_harvest.py), the same counts."""
    n = s.size
    table = np.zeros((1 << (LZ78Y_B + 2)) - 4, np.int32)  # laid out as in multi_mmc_binary
    size = 0
    pattern = 0
    for j in range(LZ78Y_B):  # the contexts ending just before s[16]
        pattern |= (s[LZ78Y_B - j - 1] & 1) << j
        table[(1 << (j + 2)) - 4 + (pattern << 1) + (s[LZ78Y_B] & 1)] = 1
        size += 1
    c = 0
    run = 0
    longest = 0
    history = 0  # the last 16 bits, newest lowest
    for j in range(LZ78Y_B):
        history = (history << 1) | (s[j] & 1)
    f = _lz78y_context
    for i in range(LZ78Y_B + 1, n):
        history = ((history << 1) | (s[i - 1] & 1)) & 0xFFFF
        y = s[i] & 1
        t, g, size = f(table, 16, history, y, 0, False, size)  # top stays 0 while no context
        t, g, size = f(table, 15, history, y, t, g, size)  # has been seen: no prediction
        t, g, size = f(table, 14, history, y, t, g, size)
        t, g, size = f(table, 13, history, y, t, g, size)
        t, g, size = f(table, 12, history, y, t, g, size)
        t, g, size = f(table, 11, history, y, t, g, size)
        t, g, size = f(table, 10, history, y, t, g, size)
        t, g, size = f(table, 9, history, y, t, g, size)
        t, g, size = f(table, 8, history, y, t, g, size)
        t, g, size = f(table, 7, history, y, t, g, size)
        t, g, size = f(table, 6, history, y, t, g, size)
        t, g, size = f(table, 5, history, y, t, g, size)
        t, g, size = f(table, 4, history, y, t, g, size)
        t, g, size = f(table, 3, history, y, t, g, size)
        t, g, size = f(table, 2, history, y, t, g, size)
        t, g, size = f(table, 1, history, y, t, g, size)
        c, run, longest = _tally(t > 0 and g == y, c, run, longest)
    return c, n - LZ78Y_B - 1, longest


@njit(cache=True, nogil=True)
def lz78y(s, ids, k):
    """6.3.10 LZ78Y on non-binary symbols; `ids` (16 lengths) name the contexts. Each
    context predicts its most frequent next symbol, ties to the larger symbol."""
    n = s.size
    m = ids.shape[0]
    slot = np.full((LZ78Y_B, m), -1, np.int32)  # context id -> dictionary entry
    pair_count = np.zeros((LZ78Y_MAX_DICT, k), np.int32)
    best = np.zeros(LZ78Y_MAX_DICT, np.int32)
    guess = np.zeros(LZ78Y_MAX_DICT, np.uint8)
    size = 0
    for j in range(1, LZ78Y_B + 1):  # the contexts ending just before s[16]
        slot[j - 1, ids[LZ78Y_B - j, j - 1]] = size
        pair_count[size, s[LZ78Y_B]] = 1
        best[size] = 1
        guess[size] = s[LZ78Y_B]
        size += 1
    c = 0
    run = 0
    longest = 0
    for i in range(LZ78Y_B + 1, n):
        y = s[i]
        have = False
        g = 0
        top = 0
        for j in range(LZ78Y_B, 0, -1):
            e = slot[j - 1, ids[i - j, j - 1]]
            if e >= 0:
                if best[e] > top:  # the longest context with the most counts predicts
                    top = best[e]
                    g = guess[e]
                    have = True
            elif size < LZ78Y_MAX_DICT:
                e = size
                slot[j - 1, ids[i - j, j - 1]] = e
                size += 1
            else:
                continue
            got = pair_count[e, y] + 1
            pair_count[e, y] = got
            if got > best[e] or (got == best[e] and y > guess[e]):
                best[e] = got
                guess[e] = y
        c, run, longest = _tally(have and g == y, c, run, longest)
    return c, n - LZ78Y_B - 1, longest
