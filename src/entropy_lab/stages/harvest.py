"""Stage `harvest`: collect, health-test and assess each source, condition it into the pool
(data/entropy/), and write the assessment (reports/harvest/metrics.json)."""

from __future__ import annotations

from pathlib import Path

from entropy_lab.config import Params
from entropy_lab.entropy import estimators, sources
from entropy_lab.entropy.harvest import harvest_source, raw_file
from entropy_lab.entropy.pool import CARD_FILE, POOL_DIR, POOL_FILE, Segment
from entropy_lab.provenance import MANIFEST, atomic_dir, build_manifest, sha256_bytes, write_json
from entropy_lab.schema import flatten
from entropy_lab.stages.common import Run, outputs

REPORTS = Path("reports/harvest")


def run(params: Params, out: Path = POOL_DIR, reports: Path = REPORTS) -> None:
    section = params.harvest
    outputs(out, reports / "metrics.json")
    for spec in section.sources:
        if spec.path is not None:
            sources.check_external(Path(spec.path), spec.sha256)
    record = Run("harvest")
    results = {spec.name: harvest_source(spec, section) for spec in section.sources}
    pool = b"".join(r["conditioned"] for r in results.values())
    segments = layout(results)
    by_source = {name: r["report"] for name, r in results.items()}
    with atomic_dir(out) as tmp:
        (tmp / POOL_FILE).write_bytes(pool)
        # Only the assessed raw samples are kept (so the assessment can be re-run); the rest
        # of the raw input, an imported dump included, is not copied.
        for name, r in results.items():
            (tmp / raw_file(name)).write_bytes(r["raw_assessed"])
        write_json(tmp / CARD_FILE, card(pool, segments, by_source))
        external = {f"external:{s.name}": Path(s.path) for s in section.sources if s.path}
        manifest = build_manifest("harvest", flatten(section, "harvest"), external, tmp)
        write_json(tmp / MANIFEST, manifest)
    write_json(
        reports / "metrics.json",
        {"pool_bytes": len(pool), "estimators": list(estimators.NAMES), "sources": by_source},
    )
    record.finish()


def layout(results: dict) -> list[Segment]:
    """Each source's conditioned bytes, one after another, in params order."""
    segments, cursor = [], 0
    for name, r in results.items():
        segments.append(Segment(name, cursor, cursor + len(r["conditioned"])))
        cursor += len(r["conditioned"])
    return segments


def card(pool: bytes, segments: list[Segment], by_source: dict) -> dict:
    """The pool's card: its hash and size, where each source's bytes are, and its assessment."""
    return {
        "sha256": sha256_bytes(pool),
        "size": len(pool),
        "segments": [s.__dict__ for s in segments],
        "bytes_per_source": {s.source: s.end - s.start for s in segments},
        "estimators": list(estimators.NAMES),
        "min_entropy_per_sample": {n: r["min_entropy"] for n, r in by_source.items()},
        "min_entropy_estimator": {n: r["min_entropy_estimator"] for n, r in by_source.items()},
        "sts_all_passed": {n: r["sts_all_passed"] for n, r in by_source.items()},
        "raw_per_32_bytes": {n: r["raw_per_32_bytes"] for n, r in by_source.items()},
    }
