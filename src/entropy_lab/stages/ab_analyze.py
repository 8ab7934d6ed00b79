"""Stage `ab-analyze`: effect sizes, tests and verdicts for every metric, comparison, model and
length, from the ab-metrics tables, to reports/ab/."""

from __future__ import annotations

from pathlib import Path

from entropy_lab.artefacts import read_parquet
from entropy_lab.config import Params
from entropy_lab.generation.metrics import METRICS_DIR
from entropy_lab.provenance import MANIFEST, atomic_file, build_manifest, json_safe, write_json
from entropy_lab.schema import flatten
from entropy_lab.stages.common import Run, model_numerics, outputs
from entropy_lab.stats.ab import effects, results

REPORT_DIR = Path("reports/ab")
TABLES = ("tests.csv", "arms.csv", "effects.csv", "metrics.json", MANIFEST)


def run(params: Params, root: Path = Path(".")) -> None:
    out = root / REPORT_DIR
    outputs(*(out / name for name in TABLES))
    samples, groups, inputs = load_metrics(params, root)
    record = Run("ab-analyze")
    tests, arms, metrics = results(samples, groups, params)
    for name, table in (("tests.csv", tests), ("arms.csv", arms), ("effects.csv", effects(tests))):
        with atomic_file(out / name) as tmp:
            table.to_csv(tmp, index=False, float_format="%.6g")
    write_json(out / "metrics.json", json_safe(metrics))
    analysis = params.ab.analysis
    read = flatten(analysis, "ab.analysis") | {
        "ab.models": params.ab.models,
        "ab.lengths": params.ab.lengths,
        "ab.generate.aa_pairs": params.ab.generate.aa_pairs,
    }
    manifest = build_manifest(
        "ab-analyze",
        read,
        inputs,
        out,
        seeds={"analysis": analysis.seed},
        numerics=model_numerics(params, device=False),
    )
    write_json(out / MANIFEST, manifest)
    record.finish(root)


def load_metrics(params, root: Path = Path(".")):
    """(per-sample table, per-group table, their directories) of every ab-metrics stage."""
    import pandas as pd

    samples, groups, inputs = [], [], {}
    for model in params.ab.models:
        for length in params.ab.lengths:
            d = root / METRICS_DIR / model / str(length)
            hint = f"run ab-metrics@{model}-{length} first"
            samples.append(read_parquet(d / "samples.parquet", hint))
            groups.append(read_parquet(d / "groups.parquet", hint))
            inputs[f"metrics/{model}/{length}"] = d
    return pd.concat(samples, ignore_index=True), pd.concat(groups, ignore_index=True), inputs
