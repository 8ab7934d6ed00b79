"""Stage `evaluate@<model>`: the base model and every adapter of `training.variants`, on seen
and held-out families and templates: records to data/eval/<model>/, the summary to
reports/eval/<model>/metrics.json."""

from __future__ import annotations

from pathlib import Path

from entropy_lab.artefacts import check_safetensors, load_tasks, read_json
from entropy_lab.config import Params
from entropy_lab.errors import UserError
from entropy_lab.evaluation.common import stream_key
from entropy_lab.evaluation.evaluate import (
    EVAL_DIR,
    evaluate_variant,
    evaluation_records,
    summarize,
)
from entropy_lab.evaluation.seeded import summarize_seeded
from entropy_lab.models import chat_facts, load_profile, peft_quietly
from entropy_lab.provenance import MANIFEST, atomic_dir, build_manifest, json_safe, write_json
from entropy_lab.schema import flatten
from entropy_lab.stages.common import Run, model_numerics, one_of, outputs
from entropy_lab.tasks.families import instantiate

TASKS = Path("data/tasks")


def run(params: Params, model_name: str, root: Path = Path("."), untaught: bool = False) -> None:
    """`untaught` (stage evaluate-untaught@<model>): the base model alone, exact view only."""
    if untaught:
        one_of("--model", model_name, params.evaluate.untaught, "evaluate.untaught")
    else:
        one_of("--model", model_name, params.training.models, "training.models")
    out = root / EVAL_DIR / model_name
    summary_path = root / "reports" / "eval" / model_name / "metrics.json"
    outputs(out, summary_path)
    sampled = not untaught
    adapters = adapter_dirs(root, model_name, params.training.variants) if sampled else {}
    records = evaluation_records(load_tasks(root / TASKS), params.evaluate)
    record = Run(f"{'evaluate-untaught' if untaught else 'evaluate'}@{model_name}")
    model, tokenizer, resolved = load_profile(model_name, params.models, root / "models")
    rows, seeded_rows = evaluate_all(
        model, tokenizer, records, params, model_name, adapters, sampled
    )
    inputs = {"tasks": root / TASKS, "base_model": resolved.path} | {
        f"adapter/{v}": p for v, p in adapters.items()
    }
    write_records(out, rows, seeded_rows, params, inputs, chat_facts(tokenizer))
    summary = summarize(rows, params.evaluate) | {
        "seeded": summarize_seeded(seeded_rows, params.evaluate)
    }
    write_json(summary_path, json_safe(summary))
    record.finish(root)


def evaluate_all(
    model, tokenizer, records, params, model_name: str, adapters: dict[str, Path], sampled: bool
):
    """(rows, seeded rows) of the base model, then of each adapter loaded onto it in turn."""
    from peft import PeftModel

    families = instantiate(params.tasks)
    key = stream_key(model_name, "base")
    rows, seeded_rows = evaluate_variant(
        model, tokenizer, records, families, params, key, "base", sampled
    )
    for variant, path in adapters.items():
        with peft_quietly():
            peft = PeftModel.from_pretrained(model, path, is_trainable=False)
        key = stream_key(model_name, variant)
        found, seeded = evaluate_variant(
            peft.eval(), tokenizer, records, families, params, key, variant
        )
        rows, seeded_rows, model = rows + found, seeded_rows + seeded, peft.unload()
    return rows, seeded_rows


def write_records(
    out: Path, rows: list, seeded_rows: list, params: Params, inputs: dict, chat: dict
) -> None:
    """records.parquet (and seeded.parquet) with the manifest, atomically; `chat`: the chat
    template the prompts were built with (`models.chat_facts`)."""
    import pandas as pd

    read = flatten(params.evaluate, "evaluate") | {
        "models.threads": params.models.threads,
        "training.variants": params.training.variants,
        "training.max_prompt_tokens": params.training.max_prompt_tokens,
        "training.max_support_tokens": params.training.max_support_tokens,
    }
    with atomic_dir(out) as tmp:
        pd.DataFrame(rows).to_parquet(tmp / "records.parquet", index=False)
        if seeded_rows:
            pd.DataFrame(seeded_rows).to_parquet(tmp / "seeded.parquet", index=False)
        manifest = build_manifest(
            "evaluate", read, inputs, tmp, seeds={"evaluate": params.evaluate.seed},
            extra=chat, numerics=model_numerics(params),
        )  # fmt: skip
        write_json(tmp / MANIFEST, manifest)


def adapter_dirs(root: Path, model_name: str, variants: list[str]) -> dict[str, Path]:
    """Each variant's adapter directory, checked whole before any work (a truncated adapter is
    one line here, not a traceback after the base model has been evaluated)."""
    out = {}
    for variant in variants:
        path = root / "adapters" / model_name / variant
        hint = f"run train@{model_name}-{variant} first"
        read_json(path / "adapter_config.json", hint)
        check_safetensors(path / "adapter_model.safetensors", hint)
        check_adapter_config(path, hint)
        out[variant] = path
    return out


def check_adapter_config(path: Path, hint: str) -> None:
    """peft can read the adapter's config (a malformed one is one line before any work)."""
    from peft import PeftConfig

    try:
        PeftConfig.from_pretrained(str(path))
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise UserError(f"{path}/adapter_config.json: not a peft config ({exc}); {hint}") from None
