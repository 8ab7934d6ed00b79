"""Stage `build@<model>`: train one built byte-level LM (`models.built`) into models/<model>/,
with its metrics and DVCLive curve under reports/models/<model>/."""

from __future__ import annotations

import logging
import math
from pathlib import Path

from entropy_lab.config import Params
from entropy_lab.provenance import MANIFEST, atomic_dir, build_manifest, write_json
from entropy_lab.schema import flatten
from entropy_lab.stages.common import Run, model_numerics, one_of, outputs
from entropy_lab.training import pretrain

log = logging.getLogger(__name__)
MODELS_DIR, REPORTS = Path("models"), Path("reports/models")
STOP_PROMPTS = 64  # held-out verses the stop rate is measured on


def run(params: Params, name: str, models_dir: Path = MODELS_DIR, reports: Path = REPORTS) -> None:
    from dvclive import Live

    one_of("--model", name, params.models.build, "models.build")
    spec, out = params.models.built[name], models_dir / name
    outputs(out, reports / name / "live", reports / name / "metrics.json")
    record = Run(f"build@{name}")
    src = pretrain.corpus_path()
    train_docs, val_docs = pretrain.split_documents(pretrain.load_documents(src), spec.val_fraction)
    train_ids, val_ids = pretrain.encode(train_docs), pretrain.encode(val_docs)
    log.info("%s: %d train tokens, %d validation tokens", name, len(train_ids), len(val_ids))
    tokenizer = pretrain.byte_tokenizer()
    with atomic_dir(reports / name / "live") as live_dir, atomic_dir(out) as tmp:
        live = Live(str(live_dir), save_dvc_exp=False, dvcyaml=False, report=None)
        result = pretrain.train(spec, train_ids, val_ids, live)
        live.end()
        result.model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        n_params = sum(w.numel() for w in result.model.parameters())
        stops = pretrain.stop_rate(result.model, tokenizer, val_docs, STOP_PROMPTS, spec.seed)
        sample = pretrain.greedy_sample(result.model, tokenizer, "Genesis 1:1 In the beginning")
        (tmp / "README.md").write_text(
            pretrain.model_card(name, spec, n_params, result, stops, sample), encoding="utf-8"
        )
        manifest = build_manifest(
            "build",
            flatten(spec, f"models.built.{name}") | {"models.threads": params.models.threads},
            inputs={"corpus": src},
            outputs=tmp,
            seeds={"init": spec.seed, "batches": spec.seed + 1, "stop_rate": spec.seed},
            numerics=model_numerics(params),
        )
        write_json(tmp / MANIFEST, manifest)
    write_json(reports / name / "metrics.json", metrics(result, stops, spec, n_params))
    record.finish()


def metrics(result, stops: dict, spec, n_params: int) -> dict:
    """The build stage's metrics.json: validation loss, size, tokens seen and the stop rate."""
    return {
        "val_loss": round(result.val_loss, 6),
        "val_bits_per_byte": round(result.val_loss / math.log(2), 6),
        "parameters": n_params,
        "tokens_seen": spec.steps * spec.batch_size * spec.context,
    } | {k: round(v, 6) if isinstance(v, float) else v for k, v in stops.items()}
