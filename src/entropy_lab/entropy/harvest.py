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
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, model_validator

from entropy_lab.entropy import sources
from entropy_lab.entropy.estimators import assess
from entropy_lab.entropy.health import STARTUP_SAMPLES, HealthTests, startup_test
from entropy_lab.entropy.pool import CARD_FILE, POOL_DIR, POOL_FILE, Segment
from entropy_lab.entropy.sts import run_suite
from entropy_lab.errors import UserError
from entropy_lab.schema import PositiveInt, Section, bad_value

log = logging.getLogger(__name__)
REPORTS = Path("reports/harvest")


def raw_file(source: str) -> str:
    """The file in the pool directory that keeps a source's assessed raw samples."""
    return f"raw-{source}.bin"


class SourceSpec(Section):
    name: Literal["kernel", "jitter", "external"]
    bytes: PositiveInt  # conditioned bytes this source adds to the pool
    claimed_h: Annotated[float, Field(gt=0, le=8)]  # bits per 8-bit sample the health tests assume
    path: str | None = None  # external only: the dump to import
    sha256: str | None = None  # external only: its expected hash

    @model_validator(mode="after")
    def _external_needs_path(self) -> SourceSpec:
        if (self.name == "external") != (self.path is not None):
            raise bad_value("path", self.path, "required for the external source, and only for it")
        return self


class Assessment(Section):
    samples: Annotated[int, Field(ge=STARTUP_SAMPLES)]  # raw samples given to the 90B estimators
    sts_sequence_bits: Annotated[int, Field(ge=1000)]  # SP 800-22 sequence length
    margin_bits: Annotated[int, Field(ge=0, le=256)]  # conditioning margin over 256 bits


class HarvestSection(Section):
    sources: Annotated[list[SourceSpec], Field(min_length=1)]
    false_alarm_log2: Annotated[int, Field(ge=20, le=60)]  # health tests' alpha = 2^-k
    apt_form: Literal["sp800-90b", "jitterentropy"]
    assessment: Assessment

    @model_validator(mode="after")
    def _unique(self) -> HarvestSection:
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise bad_value("sources", names, "each source may appear once")
        return self


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
            out.append(chunk[: n - have])
            self.buffer = chunk[n - have :]
            have += min(chunk.size, n - have)
        self.seconds += time.perf_counter() - t0
        taken = np.concatenate(out)
        self.parts.append(taken)
        return taken

    def raw(self) -> bytes:
        return b"".join(p.tobytes() for p in self.parts)


def chunks_for(spec: SourceSpec) -> Iterator[np.ndarray]:
    if spec.name == "kernel":
        return sources.kernel()
    if spec.name == "jitter":
        return sources.jitter()
    return sources.external(Path(spec.path), spec.sha256)


def harvest_source(
    spec: SourceSpec, section: HarvestSection, chunks: Iterator[np.ndarray] | None = None
) -> dict[str, Any]:
    """Collect, test, assess and condition one source; returns its bytes and its report."""
    a = section.assessment
    tests = HealthTests(
        spec.name, spec.claimed_h, 2.0**-section.false_alarm_log2, 8, section.apt_form
    )
    reader = Reader(spec, tests, chunks if chunks is not None else chunks_for(spec))
    raw_assessed = reader.take(a.samples)
    log.info("%s: assessing %d raw samples (SP 800-90B)", spec.name, raw_assessed.size)
    assessment = assess(raw_assessed, 8)
    h = float(assessment["min_entropy"])
    if h < spec.claimed_h:
        log.warning(
            "%s: assessed %.3f bits/sample, below the %.3f the health tests assume",
            spec.name,
            h,
            spec.claimed_h,
        )
    per_block = sources.raw_per_block(h, a.margin_bits)
    need = math.ceil(spec.bytes / 32) * per_block
    if need > raw_assessed.size:
        reader.take(need - raw_assessed.size)
    raw = reader.raw()
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


def assessment_report(
    assessment: dict[str, Any], raw_assessed: np.ndarray, conditioned: bytes, a: Assessment
) -> dict[str, Any]:
    """The part of a source's report that is a function of its stored bytes alone."""
    h = float(assessment["min_entropy"])
    bits = np.unpackbits(np.frombuffer(conditioned, dtype=np.uint8))
    sts = run_suite(bits, a.sts_sequence_bits) if bits.size >= a.sts_sequence_bits else {}
    return {
        "min_entropy": h,
        "assessment": assessment,
        "raw_per_32_bytes": sources.raw_per_block(h, a.margin_bits),
        "sts": sts,
        "sts_all_passed": all(t["passed"] for t in sts.values()) if sts else None,
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
        out[seg.source] = assessment_report(assess(raw, 8), raw, conditioned, section.assessment)
    return out


def run_stage(section: HarvestSection, out: Path = POOL_DIR, reports: Path = REPORTS) -> None:
    from entropy_lab.provenance import (
        MANIFEST,
        atomic_dir,
        build_manifest,
        sha256_bytes,
        write_json,
    )
    from entropy_lab.schema import flatten

    results = {spec.name: harvest_source(spec, section) for spec in section.sources}
    segments, cursor = [], 0
    for name, r in results.items():
        segments.append(Segment(name, cursor, cursor + len(r["conditioned"])))
        cursor += len(r["conditioned"])
    pool = b"".join(r["conditioned"] for r in results.values())
    reports_by_source = {name: r["report"] for name, r in results.items()}
    with atomic_dir(out) as tmp:
        (tmp / POOL_FILE).write_bytes(pool)
        for (
            name,
            r,
        ) in results.items():  # unconditioned samples, kept so the assessment can be re-run
            (tmp / raw_file(name)).write_bytes(r["raw_assessed"])
        card = {
            "sha256": sha256_bytes(pool),
            "size": len(pool),
            "segments": [s.__dict__ for s in segments],
            "bytes_per_source": {s.source: s.end - s.start for s in segments},
            "min_entropy_per_sample": {n: r["min_entropy"] for n, r in reports_by_source.items()},
            "sts_all_passed": {n: r["sts_all_passed"] for n, r in reports_by_source.items()},
            "raw_per_32_bytes": {n: r["raw_per_32_bytes"] for n, r in reports_by_source.items()},
        }
        write_json(tmp / CARD_FILE, card)
        external = {f"external:{s.name}": Path(s.path) for s in section.sources if s.path}
        write_json(
            tmp / MANIFEST, build_manifest("harvest", flatten(section, "harvest"), external, tmp)
        )
    write_json(reports / "metrics.json", {"pool_bytes": len(pool), "sources": reports_by_source})
