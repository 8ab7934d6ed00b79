"""The `harvest` stage: collect, health-test, assess, condition, and store the pool.

For each source, in the order of `harvest.sources`:
  1. read raw samples, running start-up and continuous health tests on every chunk;
  2. assess the first `assessment.samples` raw samples (SP 800-90B estimators);
  3. read enough further raw samples to condition the requested bytes with SHA-256 at
     the ratio the assessed min-entropy justifies;
  4. run SP 800-22 on the conditioned bytes and byte statistics on both.
Any failure stops the stage before the pool is written; nothing falls back to a PRNG.
This is the one non-deterministic stage: `dvc freeze harvest` keeps its pool.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from entropy_lab.entropy import estimators, sources
from entropy_lab.entropy.health import STARTUP_SAMPLES, HealthTests, startup_test
from entropy_lab.entropy.params import Assessment, HarvestSection, SourceSpec
from entropy_lab.entropy.pool import POOL_DIR
from entropy_lab.entropy.sts import run_suite
from entropy_lab.errors import UserError
from entropy_lab.progress import progress

log = logging.getLogger(__name__)
# The most raw bytes one 32-byte block may hash (a ratio of 128:1, i.e. at least 0.078 bits
# per sample at margin 64): below that the source is too repetitive to be worth conditioning.
MAX_RAW_PER_BLOCK = 4096


def raw_file(source: str) -> str:
    """The file in the pool directory that keeps a source's assessed raw samples."""
    return f"raw-{source}.bin"


def available_memory() -> int:
    import psutil

    return int(psutil.virtual_memory().available)


def check_memory(spec: SourceSpec, raw_bytes: int, why: str) -> None:
    """Refuse before collecting what would not fit: raw samples are held twice at most
    (as read, then joined for conditioning)."""
    have = available_memory()
    if 2 * raw_bytes > have:
        raise UserError(
            f"source {spec.name!r}: {why} needs {raw_bytes} raw bytes, held twice while "
            f"conditioning; {have} bytes of memory are available; no pool written"
        )


def byte_statistics(data: bytes) -> dict[str, float]:
    """What Debian's `ent` reports: Shannon entropy, chi-square vs uniform, mean, serial correlation."""
    from scipy import stats

    x = np.frombuffer(data, dtype=np.uint8)
    counts = np.bincount(x, minlength=256).astype(np.float64)
    p = counts[counts > 0] / x.size
    expected = x.size / 256
    chi2 = float(np.sum((counts - expected) ** 2) / expected)
    a = x.astype(np.float64)
    b = np.roll(a, -1)  # ent correlates each byte with the next, wrapping around
    n = a.size
    scc = (n * np.dot(a, b) - a.sum() ** 2) / (n * np.dot(a, a) - a.sum() ** 2)
    return {
        "shannon_bits_per_byte": float(-np.sum(p * np.log2(p))),
        "chi_square": chi2,
        "chi_square_p": float(stats.chi2.sf(chi2, 255)),
        "mean": float(a.mean()),
        "serial_correlation": float(scc),
    }


class Reader:
    """Pulls raw samples from a source, health-testing every chunk as it arrives."""

    def __init__(self, spec: SourceSpec, tests: HealthTests, chunks: Iterator[np.ndarray]):
        self.spec, self.tests, self.chunks = spec, tests, chunks
        self.buffer = np.empty(0, dtype=np.uint8)
        self.parts: list[np.ndarray] = []
        self.seconds = 0.0

    def take(self, n: int) -> np.ndarray:
        t0 = time.perf_counter()
        out = [self.buffer[:n]]
        self.buffer = self.buffer[n:]
        have = out[0].size
        with progress(total=n - have, desc=f"{self.spec.name}: collecting", unit="B") as bar:
            while have < n:
                chunk = next(self.chunks, None)
                if chunk is None:
                    raise UserError(
                        f"source {self.spec.name!r}: need {n} more raw bytes, the source ran out after {self.tests.samples}"
                    )
                if self.tests.samples == 0:
                    startup_test(self.tests, chunk)
                    self.tests.update(chunk[STARTUP_SAMPLES:])
                else:
                    self.tests.update(chunk)
                used = min(chunk.size, n - have)
                out.append(chunk[:used])
                self.buffer = chunk[used:]
                have += used
                bar.update(used)
        self.seconds += time.perf_counter() - t0
        taken = np.concatenate(out)
        self.parts.append(taken)
        return taken

    def raw(self) -> np.ndarray:
        return np.concatenate(self.parts)


def chunks_for(spec: SourceSpec) -> Iterator[np.ndarray]:
    if spec.name == "kernel":
        return sources.kernel()
    if spec.name == "jitter":
        return sources.jitter()
    return sources.external(Path(spec.path), spec.sha256)


def assess_source(name: str, raw: np.ndarray) -> dict[str, Any]:
    """SP 800-90B's ten estimators on a source's raw samples, with a progress bar; a source
    that cannot be assessed stops the stage in one line."""
    with progress(total=estimators.steps(raw), desc=f"{name}: SP 800-90B", unit="estimate") as bar:
        try:
            return estimators.assess(raw, 8, step=lambda _: bar.update())
        except ValueError as exc:
            raise UserError(f"source {name!r} cannot be assessed: {exc}; no pool written") from None


def conditioning_ratio(name: str, h: float, margin_bits: int) -> int:
    """Raw bytes per 32-byte block; one line and no pool if the source is too repetitive."""
    need = math.inf if h <= 0 else math.ceil((256 + margin_bits) / h)
    if need > MAX_RAW_PER_BLOCK:
        raise UserError(
            f"source {name!r}: assessed min-entropy {h:.3g} bits/sample is too low to condition "
            f"{256 + margin_bits} bits per 32-byte block within {MAX_RAW_PER_BLOCK} raw bytes; "
            "no pool written"
        )
    return sources.raw_per_block(h, margin_bits)


def check_no_repeat(spec: SourceSpec, raw: np.ndarray, h: float) -> None:
    """A dump that replays part of itself would be credited twice (only its first samples are
    assessed): one line and no pool if any window of 128 bits' worth of its bytes repeats."""
    window = sources.repeat_window(h)
    if (found := sources.first_repeat(raw, window)) is not None:
        raise UserError(
            f"source {spec.name!r}: {spec.path} repeats itself (the {window} bytes at offset "
            f"{found[1]} also occur at offset {found[0]}), so part of it would be credited "
            "twice; no pool written"
        )


def harvest_source(
    spec: SourceSpec, section: HarvestSection, chunks: Iterator[np.ndarray] | None = None
) -> dict[str, Any]:
    """Collect, test, assess and condition one source; returns its bytes and its report."""
    a = section.assessment
    blocks = math.ceil(spec.bytes / 32)
    best_case = blocks * math.ceil((256 + a.margin_bits) / 8)  # 8 bits in every sample
    check_memory(spec, max(a.samples, best_case), f"conditioning {spec.bytes} bytes")
    tests = HealthTests(
        spec.name, spec.claimed_h, 2.0**-section.false_alarm_log2, 8, section.apt_form
    )
    reader = Reader(spec, tests, chunks if chunks is not None else chunks_for(spec))
    raw_assessed = reader.take(a.samples)
    log.info("%s: assessing %d raw samples (SP 800-90B)", spec.name, raw_assessed.size)
    assessment = assess_source(spec.name, raw_assessed)
    h = float(assessment["min_entropy"])
    log.info("%s: %.4f bits/sample (%s)", spec.name, h, limiting_estimator(assessment))
    if h < spec.claimed_h:
        log.warning(
            "%s: assessed %.3f bits/sample, below the %.3f the health tests assume",
            spec.name,
            h,
            spec.claimed_h,
        )
    per_block = conditioning_ratio(spec.name, h, a.margin_bits)
    need = blocks * per_block
    check_memory(spec, need, f"conditioning {spec.bytes} bytes at {per_block} raw bytes per 32")
    if need > raw_assessed.size:
        reader.take(need - raw_assessed.size)
    raw = reader.raw()
    if spec.name == "external":  # the assessment saw the first samples only
        check_no_repeat(spec, raw, h)
    conditioned, _ = sources.condition(raw, h, spec.bytes, a.margin_bits)
    log.info(
        "%s: %d raw -> %d conditioned bytes (%d raw per 32-byte block)",
        spec.name,
        len(raw),
        len(conditioned),
        per_block,
    )
    return {
        "conditioned": conditioned,
        "raw_assessed": raw_assessed.tobytes(),
        "report": {
            "raw_samples": len(raw),
            "raw_bytes_per_s": len(raw) / reader.seconds if reader.seconds else None,
            "health": {
                "samples": tests.samples,
                "rct_cutoff": tests.rct.cutoff,
                "apt_cutoff": tests.apt.cutoff,
                "apt_window": tests.apt.window,
            },
        }
        | assessment_report(assessment, raw_assessed, conditioned, a),
    }


def limiting_estimator(assessment: dict[str, Any]) -> str:
    """The estimate the assessed min-entropy comes from, e.g. 'multi_mmc (bit string)'."""
    h = assessment["min_entropy"]
    for part, label, scale in (("original", "samples", 1), ("bitstring", "bit string", 8)):
        for name, value in (assessment[part] or {}).items():
            if value * scale == h:
                return f"{name} ({label})"
    raise AssertionError("the min-entropy is one of the estimates")


def assessment_report(
    assessment: dict[str, Any], raw_assessed: np.ndarray, conditioned: bytes, a: Assessment
) -> dict[str, Any]:
    """The part of a source's report that is a function of its stored bytes alone."""
    h = float(assessment["min_entropy"])
    bits = np.unpackbits(np.frombuffer(conditioned, dtype=np.uint8))
    if bits.size < a.sts_sequence_bits:
        raise UserError(
            f"harvest.assessment.sts_sequence_bits = {a.sts_sequence_bits}: more than the "
            f"{bits.size} bits of a pool segment; SP 800-22 cannot run"
        )
    sts = run_suite(bits, a.sts_sequence_bits)
    return {
        "min_entropy": h,
        "min_entropy_estimator": limiting_estimator(assessment),
        "assessment": assessment,
        "raw_per_32_bytes": sources.raw_per_block(h, a.margin_bits),
        "sts": sts,
        "sts_all_passed": all(t["passed"] for t in sts.values()),
        "bytes_raw": byte_statistics(raw_assessed.tobytes()),
        "bytes_conditioned": byte_statistics(conditioned),
    }


def reassess(section: HarvestSection, pool_dir: Path = POOL_DIR) -> dict[str, dict[str, Any]]:
    """Re-run every source's assessment from the stored raw samples and pool segment."""
    from entropy_lab.entropy.pool import Pool

    pool = Pool.load(pool_dir)
    out = {}
    for seg in pool.segments:
        raw = np.frombuffer((pool_dir / raw_file(seg.source)).read_bytes(), dtype=np.uint8)
        conditioned = pool.data[seg.start : seg.end]
        out[seg.source] = assessment_report(
            assess_source(seg.source, raw), raw, conditioned, section.assessment
        )
    return out
