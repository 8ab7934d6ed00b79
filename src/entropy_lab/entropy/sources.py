"""Entropy sources. Each yields raw 8-bit samples in chunks; the harvest stage health-tests
them as they arrive, assesses them, and conditions them with SHA-256.

kernel    os.getrandom: the kernel's conditioned CSPRNG output (a baseline, already
          conditioned, so its assessment measures the conditioner, not a noise source).
jitter    CPU timing jitter: the low byte of the nanosecond duration of a small fixed
          workload, unconditioned. The physical noise source of an ordinary machine.
external  an imported dump (a QRNG file, a commercial entropy engine's output), validated,
          hashed and read in order, so outside entropy enters through the same door.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from entropy_lab.errors import UserError
from entropy_lab.provenance import sha256_file

CHUNK = 1 << 16


def kernel() -> Iterator[np.ndarray]:
    while True:
        yield np.frombuffer(os.getrandom(CHUNK), dtype=np.uint8)


def _workload(state: int) -> int:
    # A short, data-dependent integer loop: its duration varies with cache, branch and
    # scheduler state, which is the jitter being sampled.
    for i in range(16):
        state = (state * 6364136223846793005 + i) & 0xFFFFFFFFFFFFFFFF
    return state


def jitter() -> Iterator[np.ndarray]:
    """Low 8 bits of successive workload durations (ns), unconditioned."""
    clock = time.perf_counter_ns
    state = 1
    while True:
        out = np.empty(CHUNK, dtype=np.uint8)
        for i in range(CHUNK):
            t0 = clock()
            state = _workload(state)
            out[i] = (clock() - t0) & 0xFF
        yield out


def check_external(path: Path, expected_sha256: str) -> None:
    """An imported dump exists as a regular file and matches its declared hash (checked before
    any source is collected, so a bad dump costs no other source's harvest)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"harvest.sources.external.path = '{path}': no such regular file")
    digest = sha256_file(path)
    if digest != expected_sha256:
        raise UserError(
            f"harvest.sources.external.sha256 = '{expected_sha256}': file {path} hashes to {digest}"
        )


def external(path: Path, expected_sha256: str) -> Iterator[np.ndarray]:
    """Bytes of an imported dump, in order, after `check_external` (the harvest stage checks
    that what it conditions never repeats: `first_repeat`)."""
    check_external(path, expected_sha256)
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            yield np.frombuffer(chunk, dtype=np.uint8)


def repeat_window(h: float) -> int:
    """The shortest window (a power of two, at least 16 bytes) that carries 128 bits at `h`
    bits of min-entropy per byte: two equal windows then have probability ~2^-128 in an honest
    source, so a repeat means the input replays itself."""
    need = math.ceil(128 / h)
    return max(16, 1 << (need - 1).bit_length())


_BASE = np.uint64(0x100000001B3)


def _window_hashes(data: np.ndarray, start: int, stop: int, window: int) -> np.ndarray:
    """A 64-bit polynomial hash of every `window`-byte window (a power of two) starting in
    [start, stop): windows of length 2m are combined from two of length m (log2 passes)."""
    h = data[start : stop + window - 1].astype(np.uint64)
    m, power = 1, _BASE
    with np.errstate(over="ignore"):
        while m < window:
            h = h[:-m] * power + h[m:]
            m, power = 2 * m, power * power
    return h


def first_repeat(data: np.ndarray, window: int, chunk: int = 1 << 22) -> tuple[int, int] | None:
    """(first offset, later offset) of two equal `window`-byte windows of `data`, or None.

    Any repeat of at least 2 * window - 1 bytes contains an aligned window (offset a multiple
    of the window) of one copy, found at some offset in the other: so the aligned windows'
    hashes are matched against every offset's, and each match is confirmed byte by byte.
    """
    n = len(data) - window + 1
    if n <= 1:
        return None
    starts = range(0, n, chunk)
    aligned = np.concatenate(
        [
            _window_hashes(data, s, min(s + chunk, n), window)[(-s) % window :: window]
            for s in starts
        ]
    )
    order = np.argsort(aligned, kind="stable")
    ranked = aligned[order]
    for start in starts:
        h = _window_hashes(data, start, min(start + chunk, n), window)
        where = np.minimum(np.searchsorted(ranked, h), len(ranked) - 1)
        for i in np.flatnonzero(ranked[where] == h):
            k = where[i]
            while k < len(ranked) and ranked[k] == h[i]:  # every aligned window with this hash
                a, b = int(order[k]) * window, start + int(i)
                if a != b and np.array_equal(data[a : a + window], data[b : b + window]):
                    return min(a, b), max(a, b)
                k += 1
    return None


def condition(
    raw: bytes, min_entropy_per_byte: float, out_bytes: int, margin_bits: int = 64
) -> tuple[bytes, int]:
    """SHA-256 conditioning at a ratio justified by the assessed min-entropy.

    Each 32-byte output block hashes enough raw bytes to carry 256 + `margin_bits` bits of
    assessed min-entropy (SP 800-90B 3.1.5.1.2: a vetted conditioner's output has full
    entropy when its input carries at least n_out + 64 bits). Returns (output, raw bytes
    per block).
    """
    per_block = raw_per_block(min_entropy_per_byte, margin_bits)
    blocks = -(-out_bytes // 32)
    if blocks * per_block > len(raw):
        raise UserError(
            f"need {blocks * per_block} raw bytes to condition {out_bytes} bytes, have {len(raw)}"
        )
    out = b"".join(
        hashlib.sha256(raw[i * per_block : (i + 1) * per_block]).digest() for i in range(blocks)
    )
    return out[:out_bytes], per_block


def raw_per_block(min_entropy_per_byte: float, margin_bits: int = 64) -> int:
    """Raw bytes hashed into one 32-byte block: enough for 256 + margin bits of min-entropy."""
    if min_entropy_per_byte <= 0:
        raise UserError("assessed min-entropy is 0 bits/sample: nothing to condition")
    return math.ceil((256 + margin_bits) / min_entropy_per_byte)
