"""Stage `ab-metrics@<model>-<length>`: the text metrics of every sample and group of one
ab-generate stage, to data/ab_metrics/<model>/<length>/."""

from __future__ import annotations

from pathlib import Path

from entropy_lab.artefacts import read_columns
from entropy_lab.config import Params
from entropy_lab.errors import UserError
from entropy_lab.generation.design import AB_DIR, SAMPLE_COLUMNS, SAMPLES_FILE
from entropy_lab.generation.embedders import load_embedder, load_scorer, minilm_path
from entropy_lab.generation.metrics import METRICS_DIR, compute
from entropy_lab.provenance import MANIFEST, atomic_dir, build_manifest, write_json
from entropy_lab.schema import flatten
from entropy_lab.stages.common import Run, model_numerics, one_of, outputs


def run(params: Params, model_name: str, length: int, root: Path = Path(".")) -> None:
    import pandas as pd

    ab = params.ab
    one_of("--model", model_name, ab.models, "ab.models")
    one_of("--length", length, ab.lengths, "ab.lengths")
    src, out = (
        root / AB_DIR / model_name / str(length),
        root / METRICS_DIR / model_name / str(length),
    )
    outputs(out)
    hint = f"run ab-generate@{model_name}-{length} first"
    rows = read_columns(src / SAMPLES_FILE, SAMPLE_COLUMNS, hint).to_dict("records")
    prompts = {p.id: p.text for p in ab.prompts}
    if missing := sorted({r["prompt_id"] for r in rows} - set(prompts)):
        raise UserError(f"samples in {src} use prompts not in ab.prompts: {', '.join(missing)}")
    record = Run(f"ab-metrics@{model_name}-{length}")
    scorer = load_scorer(ab.metrics.scorer, prompts)
    embedder = load_embedder(
        ab.metrics.embedder, [r["text"] for r in rows] + list(prompts.values())
    )
    per_sample, per_group = compute(rows, ab, embedder, scorer)
    inputs = {"samples": src / SAMPLES_FILE} | model_inputs(ab, embedder[0])
    with atomic_dir(out) as tmp:
        pd.DataFrame(per_sample).to_parquet(tmp / "samples.parquet", index=False)
        pd.DataFrame(per_group).to_parquet(tmp / "groups.parquet", index=False)
        read = flatten(ab.metrics, "ab.metrics") | {
            "ab.prompts": [p.model_dump() for p in ab.prompts],
            "models.threads": params.models.threads,
        }
        manifest = build_manifest("ab-metrics", read, inputs, tmp, extra={"embedder": embedder[0]},
                                  numerics=model_numerics(params, device=False))  # fmt: skip
        write_json(tmp / MANIFEST, manifest)
    record.finish(root)


def model_inputs(ab, embedder: str) -> dict[str, Path]:
    """The embedder's and the reward model's weights, where the metrics use them."""
    out = {}
    if embedder == "all-MiniLM-L6-v2":
        out["embedder"] = minilm_path() / "model.safetensors"
    if ab.metrics.scorer.startswith("reward:"):
        out["reward_model"] = Path(ab.metrics.scorer.removeprefix("reward:"))
    return out
