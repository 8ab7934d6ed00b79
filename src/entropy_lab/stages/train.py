"""Stage `train@<model>-<variant>`: LoRA SFT of one model with one loss; the adapter goes to
adapters/<model>/<variant>/, its curve and metrics to reports/train/<model>/<variant>/."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from entropy_lab.artefacts import load_tasks
from entropy_lab.closure import code_digest
from entropy_lab.config import Params
from entropy_lab.errors import UserError
from entropy_lab.models import chat_facts, load_profile, pick_device
from entropy_lab.parallel import rank_world, world_size
from entropy_lab.provenance import (
    MANIFEST,
    atomic_dir,
    build_manifest,
    digest,
    sha256_path,
    write_json,
)
from entropy_lab.schema import flatten
from entropy_lab.stages.common import Run, model_numerics, one_of, outputs
from entropy_lab.tasks import seeded
from entropy_lab.training.checkpoints import Checkpoints, save_adapter
from entropy_lab.training.sft import (
    FIT_KEYS,
    METRIC_KEYS,
    TrainRun,
    family_mass,
    matched_fit,
    sampling_weights,
    train,
    with_lora,
)

TASKS = Path("data/tasks")


def run(params: Params, model_name: str, variant: str, root: Path = Path(".")) -> None:
    settings = params.training
    one_of("--model", model_name, settings.models, "training.models")
    one_of("--variant", variant, settings.variants, "training.variants")
    if settings.batch_size < world_size():
        raise UserError(f"training.batch_size = {settings.batch_size}: must be at least the "
                        f"{world_size()} torchrun processes")  # fmt: skip
    adapter = root / "adapters" / model_name / variant
    reports = root / "reports" / "train" / model_name / variant
    checkpoints_dir = root / "checkpoints" / model_name / variant
    outputs(adapter, reports / "live", reports / "metrics.json", checkpoints_dir)
    tasks_dir = root / TASKS
    record = Run(f"train@{model_name}-{variant}")
    run_spec = training_records(load_tasks(tasks_dir), variant, settings)

    model, tokenizer, resolved = load_profile(model_name, params.models)
    model = prepare(model, params, model_name)
    rank, world = rank_world()
    read = flatten(settings, "training") | {"model": model_name, "variant": variant,
                                            "models.threads": params.models.threads}  # fmt: skip
    inputs = {"tasks": tasks_dir, "base_model": resolved.path}
    checkpoints = Checkpoints(checkpoints_dir, run_digest(read, inputs))
    run_spec = TrainRun(variant, settings, *run_spec, rank=rank, world=world)
    curve = train(model, tokenizer, run_spec, checkpoints)
    if rank != 0:
        return
    with atomic_dir(adapter) as tmp:
        save_adapter(tmp, model)
        extra = ({"world_size": world} if world > 1 else {}) | chat_facts(tokenizer)
        manifest = build_manifest("train", read, inputs, tmp, seeds={"training": settings.seed},
                                  extra=extra, numerics=model_numerics(params))  # fmt: skip
        write_json(tmp / MANIFEST, manifest)
    write_curve(reports / "live", curve)
    write_json(reports / "metrics.json", metrics(curve, settings.steps, len(run_spec.fit)))
    checkpoints.clear()  # only needed to resume an interrupted run
    record.finish(root, earlier=checkpoints.legs)


def run_digest(read: dict, inputs: dict[str, Path]) -> str:
    """What a checkpoint must match to be resumed: the params read, the inputs' hashes, and the
    stage's code (its import closure: another loss or curve must not continue this one)."""
    hashes = {k: sha256_path(v) for k, v in inputs.items()} | {"code": code_digest(__name__)}
    return digest(read, hashes, {"training": read["training.seed"]})


def training_records(ds, variant: str, settings) -> tuple[list, list, list, np.ndarray | None]:
    """(train records, validation records, matched train records for the fit curve, batch
    weights) of a variant: `seeded` trains on prompts that carry a pool-drawn u."""
    if variant == "seeded":  # the prompt carries a pool-drawn u; one right answer
        records = seeded.expand(ds["train"])
        val = seeded.expand(ds["validation"], per_record=1)[: settings.eval_records]
        fit = matched_fit(seeded.expand(ds["train"], per_record=1), val)
    else:
        records = [r for r in ds["train"] if r["draws"]]
        val = [r for r in ds["validation"] if r["support"]][: settings.eval_records]
        fit = matched_fit([r for r in records if r["support"]], val)
    return records, val, fit, sampling_weights(records, settings)


def prepare(model, params, model_name: str):
    """The base model made trainable: k-bit preparation (QLoRA) or gradient checkpointing as
    params ask, then LoRA."""
    from peft import prepare_model_for_kbit_training

    settings = params.training
    cuda = pick_device(params.models.device) == "cuda"
    checkpointing = settings.gradient_checkpointing == "on" or (
        settings.gradient_checkpointing == "auto" and cuda
    )
    if params.models.profiles[model_name].quantization != "none":  # QLoRA
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=checkpointing)
    elif checkpointing:
        model.gradient_checkpointing_enable()
    return with_lora(model, settings.lora, settings.seed)


def write_curve(directory: Path, curve: list[dict]) -> None:
    """DVCLive logs of the evaluation curve, written in one go and in sorted key order, so a
    resumed run's (whose early points come back from a checkpoint) are byte for byte the same."""
    from dvclive import Live

    with atomic_dir(directory) as tmp:
        live = Live(str(tmp), save_dvc_exp=False, dvcyaml=False, report=None)
        for point in curve:
            live.step = point["step"]
            for key, value in sorted(point.items()):
                if key != "step" and isinstance(value, float) and np.isfinite(value):
                    live.log_metric(key, value)
        live.end()


def metrics(curve: list[dict], steps: int, fit_records: int) -> dict:
    """The train stage's metrics.json: first and last curve points, and the curve the report
    plots (support mass and full-space TVD, per family too)."""
    base, final = curve[0], curve[-1]
    return {
        "base": {k: base[k] for k in METRIC_KEYS + FIT_KEYS},
        "final": {k: final[k] for k in METRIC_KEYS + FIT_KEYS},
        "steps": steps,
        "val_records": final["val_records"],
        "fit_records": fit_records,
        "curve": [
            {
                k: v
                for k, v in point.items()
                if k in ("step", "val_support_mass", "val_tvd", *FIT_KEYS)
            }
            | {"families": family_mass(point)}
            for point in curve
        ],
    }
