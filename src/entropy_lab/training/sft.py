"""LoRA SFT on the task dataset with the losses of training.losses; the `train` stage.

Every draw is keyed by (seed, step): the batch, the answer drawn for CE, and torch's RNG
(LoRA dropout) are re-derived at each step, so a run killed after a checkpoint and
restarted ends with the same adapter as an uninterrupted one (on CPU, fixed seed).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from entropy_lab.errors import UserError
from entropy_lab.parallel import all_reduce_sum, barrier, rank_world, world_size
from entropy_lab.progress import progress
from entropy_lab.tasks import seeded
from entropy_lab.training.losses import (
    kl_target_model,
    record_loss,
    sequence_scores,
    soft_trie_loss,
)
from entropy_lab.training.params import LoraSection, TrainingSection
from entropy_lab.training.scoring import exact_distributions, make_item, score

log = logging.getLogger(__name__)

# Every linear layer of attention and MLP, per architecture (model_type), as QLoRA does: on the
# default model, rank 32 on these reached 2.5x the support mass of rank 8 on `c_attn` alone
# after 600 steps, and rank 128 (full rank at its width) 0.48 where rank 32 reached 0.41 after
# 400 (README). `training.lora.target_modules` overrides.
LLAMA_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
DEFAULT_TARGETS = {
    "gpt2": ["c_attn", "c_proj", "c_fc"],
    "gpt_neox": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
    "llama": LLAMA_LINEAR,
    "mistral": LLAMA_LINEAR,
}


def canonical_adapter_config(path: Path) -> None:
    """Sort the module lists peft keeps as sets: their saved order follows Python's per-process
    string hashing, so the same adapter would get different bytes on every run."""
    config = json.loads(path.read_text())
    for key in ("target_modules", "modules_to_save"):
        if isinstance(config.get(key), list):
            config[key] = sorted(config[key])
    path.write_text(json.dumps(config, indent=2, sort_keys=True))  # peft's own layout


def target_modules(model, lora: LoraSection) -> list[str]:
    """The LoRA targets: by architecture, or as given; every one must exist in the model."""
    kind = model.config.model_type
    if lora.target_modules == "auto":
        if kind not in DEFAULT_TARGETS:
            raise UserError(
                f"training.lora.target_modules = 'auto': no default for model type {kind!r}; list them"
            )
        return DEFAULT_TARGETS[kind]
    names = {
        n.rsplit(".", 1)[-1]
        for n, m in model.named_modules()
        if isinstance(m, torch.nn.Module) and n
    }
    for t in lora.target_modules:
        if t not in names:
            linear = sorted(
                {
                    n.rsplit(".", 1)[-1]
                    for n, m in model.named_modules()
                    if hasattr(m, "weight") and n
                }
            )
            raise UserError(
                f"training.lora.target_modules = {lora.target_modules}: {t!r} is not a module of this {kind} model; modules with weights: {', '.join(linear)}"
            )
    return list(lora.target_modules)


def with_lora(model, lora: LoraSection, seed: int):
    from peft import LoraConfig, get_peft_model

    from entropy_lab.models import peft_quietly

    torch.manual_seed(seed)  # LoRA A matrices are initialised from torch's RNG
    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=target_modules(model, lora),
        fan_in_fan_out=model.config.model_type == "gpt2",  # GPT-2's Conv1D stores W transposed
        task_type="CAUSAL_LM",
    )
    with peft_quietly():
        return get_peft_model(model, config)


def step_rng(seed: int, step: int) -> np.random.Generator:
    return np.random.default_rng([seed, step])


def learning_rate(step: int, t: TrainingSection) -> float:
    """Linear warmup, then cosine decay to zero at the last step: on the default model this
    reached 0.65 support mass at step 1000 where a constant rate reached 0.52 (README)."""
    if step < t.warmup_steps:
        return t.lr * (step + 1) / t.warmup_steps
    done = (step - t.warmup_steps) / max(1, t.steps - t.warmup_steps)
    return t.lr * 0.5 * (1 + math.cos(math.pi * done))


def sampling_weights(records: list[dict[str, Any]], t: TrainingSection) -> np.ndarray | None:
    """Each train record's chance of being drawn into a batch, in proportion to its family's
    `training.family_weights` (1 where not listed); None (uniform) when none is listed."""
    if not t.family_weights:
        return None
    families = sorted({r["family"] for r in records})
    for name in t.family_weights:
        if name not in families:
            raise UserError(
                f"training.family_weights.{name}: not a family of the train split; "
                f"allowed: {', '.join(families)}"
            )
    w = np.array([t.family_weights.get(r["family"], 1.0) for r in records])
    return w / w.sum()


def batch_for(
    step: int,
    records: list[dict[str, Any]],
    t: TrainingSection,
    weights: np.ndarray | None = None,
) -> list[tuple[dict[str, Any], str]]:
    """The records of a step and the target draw each is trained on: a function of (seed, step).
    `weights` (`sampling_weights`) are the records' chances at each successive draw of the
    batch (without replacement); None draws uniformly."""
    rng = step_rng(t.seed, step)
    size = min(t.batch_size, len(records))
    idx = rng.choice(len(records), size=size, replace=False, p=weights)
    out = []
    for i in idx:
        r = records[int(i)]
        out.append((r, r["draws"][int(rng.integers(len(r["draws"])))]))
    return out


def loss_on(model, tokenizer, batch, kind: str, t: TrainingSection) -> dict[str, torch.Tensor]:
    """The batch's mean loss, with its CE and full-space KL parts (KL: NaN if never scored)."""
    positions = model.config.max_position_embeddings
    items = [
        make_item(
            tokenizer,
            r,
            draw,
            kind in SUPPORT_LOSSES,
            t.max_prompt_tokens,
            t.max_support_tokens,
            positions,
        )
        for r, draw in batch
    ]
    losses, ces, kls = [], [], []
    eos = tokenizer.eos_token_id
    for item, (logprobs, toks) in zip(items, score(model, tokenizer, items), strict=True):
        ce = -toks[item.sampled].mean()
        kl = soft = None
        if item.target is not None:
            target = item.target.to(logprobs.device)
            kl = kl_target_model(target, sequence_scores(toks))
            if kind == "soft_trie":
                soft = soft_trie_loss(logprobs, item.packed, item.trie, target, eos)
            kls.append(kl.detach())
        ces.append(ce.detach())
        losses.append(record_loss(kind, t.lambda_kl, ce, kl, soft))
    return {
        "loss": torch.stack(losses).mean(),
        "ce": torch.stack(ces).mean(),
        "kl": torch.stack(kls).mean() if kls else torch.tensor(float("nan")),
    }


def evaluate(
    model, tokenizer, records: list[dict[str, Any]], t: TrainingSection
) -> dict[str, float]:
    """Over validation records: full-space KL(target || model) and TVD (invalid outputs one
    outcome), the support mass, and the renormalised (conditional) KL and TVD as diagnostics."""
    from entropy_lab.evaluation import distribution as dist

    was_training = model.training
    model.eval()
    dists = exact_distributions(
        model, tokenizer, records, t.max_prompt_tokens, t.max_support_tokens
    )
    model.train(was_training)
    if not dists:
        raise UserError("no validation record has a support that fits training.max_support_tokens")
    full, cond, masses, by_family = [], [], [], {}
    for i, p, log_q, log_mass in dists:
        p, q, mass = p.double().numpy(), log_q.double().exp().numpy(), float(log_mass.exp())
        full.append(dist.full_space(p, q, mass))
        cond.append((p, q))
        masses.append(mass)
        by_family.setdefault(records[i]["family"], []).append(mass)
    return {
        "val_kl": float(np.mean([dist.kl(p, q) for p, q in full])),
        "val_tvd": float(np.mean([dist.tvd(p, q) for p, q in full])),
        "val_support_mass": float(np.mean(masses)),
        "val_kl_conditional": float(np.mean([dist.kl(p, q) for p, q in cond])),
        "val_tvd_conditional": float(np.mean([dist.tvd(p, q) for p, q in cond])),
        "val_records": len(dists),
        # the learning curve per family: which answers the model learns to give, and when
        **{f"{FAMILY_MASS}{f}": float(np.mean(m)) for f, m in sorted(by_family.items())},
    }


def fit_scores(
    model, tokenizer, records: list[dict[str, Any]], t: TrainingSection
) -> dict[str, float]:
    """Support mass and full-space TVD on train records the loop draws from. Beside the
    validation curve this says where a plateau is: in fitting the taught prompts (both low)
    or in carrying them over to new ones (train high, validation low)."""
    point = evaluate(model, tokenizer, records, t)
    return {"train_support_mass": point["val_support_mass"], "train_tvd": point["val_tvd"]}


def matched_fit(records: list[dict[str, Any]], val: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each validation record, the next train record of its family: the fit is measured on
    validation's family mix (the splits' mixes differ, since near-duplicate prompts are
    dropped from validation and small families lose more), so the two curves differ only in
    whether the model was taught the prompt."""
    by_family: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_family.setdefault(r["family"], []).append(r)
    taken: dict[str, int] = {}
    out = []
    for v in val:
        pool, i = by_family.get(v["family"], []), taken.get(v["family"], 0)
        if i < len(pool):
            out.append(pool[i])
            taken[v["family"]] = i + 1
    return out


SUPPORT_LOSSES = ("soft_trie", "ce_kl", "kl")  # the variants that score a record's whole support
METRIC_KEYS = ("val_kl", "val_tvd", "val_support_mass", "val_kl_conditional", "val_tvd_conditional")
FIT_KEYS = ("train_support_mass", "train_tvd")
FAMILY_MASS = "support_mass/"  # curve keys `support_mass/<family>` (DVCLive: one plot per family)


def family_mass(point: dict[str, Any]) -> dict[str, float]:
    """A curve point's support mass per validation family."""
    return {k[len(FAMILY_MASS) :]: v for k, v in point.items() if k.startswith(FAMILY_MASS)}


def save_adapter(directory: Path, model) -> None:
    """The adapter in peft's layout. LoRA on an embedding saves its A and B only: peft would
    also save the frozen base embedding, which GPT-2 ties to lm_head, and safetensors refuses
    tensors that share memory."""
    model.save_pretrained(directory, safe_serialization=True, save_embedding_layers=False)
    canonical_adapter_config(directory / "adapter_config.json")


def adapter_state(model) -> dict[str, torch.Tensor]:
    """The trained tensors of a checkpoint, as `save_adapter` stores them."""
    from peft import get_peft_model_state_dict

    state = get_peft_model_state_dict(model, save_embedding_layers=False)
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def save_checkpoint(directory: Path, model, opt, step: int, curve: list[dict], digest: str) -> None:
    from safetensors.torch import save_file

    from entropy_lab.provenance import atomic_dir, write_json

    with atomic_dir(directory) as tmp:
        save_file(adapter_state(model), tmp / "adapter.safetensors")
        torch.save(opt.state_dict(), tmp / "optimizer.pt")
        write_json(tmp / "state.json", {"step": step, "curve": curve, "digest": digest})


def load_checkpoint(directory: Path, model, opt, digest: str) -> tuple[int, list[dict]]:
    """Resume from `directory` if it holds a checkpoint of this same run; else start at 0."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    state_path = directory / "state.json"
    if not state_path.is_file():
        return 0, []
    state = json.loads(state_path.read_text())
    if state["digest"] != digest:
        log.info("checkpoint in %s is from other params; starting afresh", directory)
        shutil.rmtree(directory, ignore_errors=True)  # every torchrun process may try
        return 0, []
    set_peft_model_state_dict(model, load_file(directory / "adapter.safetensors"))
    opt.load_state_dict(torch.load(directory / "optimizer.pt", weights_only=True))
    log.info("resuming from step %d", state["step"])
    return state["step"], state["curve"]


def code_files() -> list[Path]:
    """The training code: the train stage's code dependencies in dvc.yaml (and the rest of
    the training package)."""
    here = Path(__file__).parent
    return [*sorted(here.glob("*.py")), here.parent / "parallel.py"]


def code_digest() -> str:
    """One hash of `code_files`. It is part of the checkpoint's digest, so a run resumes only
    under the code that wrote the checkpoint: other code may compute another loss or record
    other curve keys than the steps it would continue."""
    from entropy_lab.provenance import canonical_json, sha256_bytes, sha256_file

    return sha256_bytes(canonical_json({p.name: sha256_file(p) for p in code_files()}))


def train(
    model,
    tokenizer,
    records: list[dict],
    val: list[dict],
    kind: str,
    t: TrainingSection,
    checkpoints: Path,
    digest: str,
    rank: int = 0,
    world: int = 1,
    fit: Sequence[dict] = (),
    weights: np.ndarray | None = None,
):
    """The loop. Returns the evaluation curve (on rank 0); the model is trained in place.
    Each evaluation scores `val` and, where given, the train records `fit` (`fit_scores`);
    batches draw `records` with `weights` (`batch_for`).

    Under torchrun each of the `world` processes takes every world-th record of the step's
    batch and weights its mean loss by its share; summing the gradients over processes
    gives the gradient of the whole batch's mean loss, so every replica takes the same
    step (up to float summation order). Rank 0 evaluates and checkpoints."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=t.lr, weight_decay=0.0)
    start, curve = load_checkpoint(checkpoints, model, opt, digest)
    barrier()

    def scores() -> dict[str, float]:
        return evaluate(model, tokenizer, val, t) | (
            fit_scores(model, tokenizer, fit, t) if fit else {}
        )

    if start == 0 and rank == 0:
        curve = [{"step": 0, **scores()}]
    model.train()
    bar = progress(total=t.steps, desc=f"train {kind}", unit="step") if rank == 0 else None
    if bar is not None:
        bar.update(start)
    for step in range(start, t.steps):
        torch.manual_seed(t.seed * 1_000_003 + step)  # LoRA dropout, keyed by step
        for group in opt.param_groups:
            group["lr"] = learning_rate(step, t)
        batch = batch_for(step, records, t, weights)
        shard = batch[rank::world]
        out = loss_on(model, tokenizer, shard, kind, t)
        if not torch.isfinite(out["loss"]):
            raise UserError(
                f"training: the {kind} loss became {out['loss'].item()} at step {step + 1}; "
                f"lower training.lr ({t.lr}) or training.lambda_kl ({t.lambda_kl})"
            )
        opt.zero_grad(set_to_none=True)
        (out["loss"] * (len(shard) / len(batch))).backward()
        if world > 1:
            all_reduce_sum(p.grad for p in params)
            logged = torch.stack([out[k].detach() for k in ("loss", "ce", "kl")])
            logged *= len(shard) / len(batch)
            all_reduce_sum([logged])
            out = dict(zip(("loss", "ce", "kl"), logged, strict=True))
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        done = step + 1
        if rank != 0:
            continue
        bar.update(1)
        if done % t.eval_every == 0 or done == t.steps:
            point = {
                "step": done,
                "loss": out["loss"].item(),
                "ce": out["ce"].item(),
                "kl": out["kl"].item(),
                **scores(),
            }
            curve.append(point)
            log.info(
                "%s step %d: loss %.4f, val KL %.4f, TVD %.4f",
                kind,
                done,
                point["loss"],
                point["val_kl"],
                point["val_tvd"],
            )
        if done % t.checkpoint_every == 0 and done < t.steps:
            save_checkpoint(checkpoints, model, opt, done, curve, digest)
    if bar is not None:
        bar.close()
    return curve


def write_curve(directory: Path, curve: list[dict]) -> None:
    """DVCLive logs of the evaluation curve, written in one go (so a resumed run's are whole)."""
    from dvclive import Live

    from entropy_lab.provenance import atomic_dir

    with atomic_dir(directory) as tmp:
        live = Live(str(tmp), save_dvc_exp=False, dvcyaml=False, report=None)
        for point in curve:
            live.step = point["step"]
            for key, value in point.items():
                if key != "step" and isinstance(value, float) and np.isfinite(value):
                    live.log_metric(key, value)
        live.end()


def run_stage(
    params,
    model_name: str,
    variant: str,
    tasks_dir: Path = Path("data/tasks"),
    root: Path = Path("."),
) -> None:
    """Stage `train@<model>-<variant>`: LoRA SFT of one model with one loss; the adapter goes
    to adapters/<model>/<variant>/."""
    from datasets import load_from_disk
    from peft import prepare_model_for_kbit_training

    from entropy_lab.models import load_profile, pick_device
    from entropy_lab.provenance import (
        MANIFEST,
        atomic_dir,
        build_manifest,
        digest,
        sha256_path,
        write_json,
    )
    from entropy_lab.schema import flatten

    t: TrainingSection = params.training
    if model_name not in t.models:
        raise UserError(
            f"--model {model_name!r}: not in training.models; allowed: {', '.join(t.models)}"
        )
    if variant not in t.variants:
        raise UserError(
            f"--variant {variant!r}: not in training.variants; allowed: {', '.join(t.variants)}"
        )
    if t.batch_size < world_size():
        raise UserError(
            f"training.batch_size = {t.batch_size}: must be at least the {world_size()} "
            "torchrun processes"
        )
    if not (tasks_dir / "dataset_dict.json").is_file():
        raise UserError(f"no task dataset at {tasks_dir}; run the tasks stage first")
    ds = load_from_disk(str(tasks_dir))
    if variant == "seeded":  # the prompt carries a pool-drawn u; one right answer
        records = seeded.expand(ds["train"])
        val = seeded.expand(ds["validation"], per_record=1)[: t.eval_records]
        fit = matched_fit(seeded.expand(ds["train"], per_record=1), val)
    else:
        records = [r for r in ds["train"] if r["draws"]]
        val = [r for r in ds["validation"] if r["support"]][: t.eval_records]
        fit = matched_fit([r for r in records if r["support"]], val)
    weights = sampling_weights(records, t)

    model, tokenizer, resolved = load_profile(model_name, params.models)
    cuda = pick_device(params.models.device) == "cuda"
    checkpointing = t.gradient_checkpointing == "on" or (
        t.gradient_checkpointing == "auto" and cuda
    )
    if params.models.profiles[model_name].quantization != "none":  # QLoRA
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=checkpointing)
    elif checkpointing:
        model.gradient_checkpointing_enable()
    model = with_lora(model, t.lora, t.seed)
    rank, world = rank_world()

    read = flatten(t, "training") | {
        "model": model_name,
        "variant": variant,
        "models.threads": params.models.threads,
    }
    inputs = {"tasks": tasks_dir, "base_model": resolved.path}
    run_digest = digest(
        read,
        {k: sha256_path(v) for k, v in inputs.items()} | {"code": code_digest()},
        {"training": t.seed},
    )
    checkpoints = root / "checkpoints" / model_name / variant
    curve = train(
        model,
        tokenizer,
        records,
        val,
        variant,
        t,
        checkpoints,
        run_digest,
        rank,
        world,
        fit,
        weights,
    )
    if rank != 0:
        return

    with atomic_dir(root / "adapters" / model_name / variant) as tmp:
        save_adapter(tmp, model)
        # data-parallel adapters equal single-process ones up to float summation order
        extra = {"world_size": world} if world > 1 else None
        manifest = build_manifest(
            "train", read, inputs, tmp, seeds={"training": t.seed}, extra=extra
        )
        write_json(tmp / MANIFEST, manifest)
    reports = root / "reports" / "train" / model_name / variant
    write_curve(reports / "live", curve)
    base, final = curve[0], curve[-1]
    write_json(
        reports / "metrics.json",
        {
            "base": {k: base[k] for k in METRIC_KEYS + FIT_KEYS},
            "final": {k: final[k] for k in METRIC_KEYS + FIT_KEYS},
            "steps": t.steps,
            "val_records": final["val_records"],
            "fit_records": len(fit),
            "curve": [
                {
                    k: v
                    for k, v in point.items()
                    if k in ("step", "val_support_mass", "val_tvd", *FIT_KEYS)
                }
                | {"families": family_mass(point)}
                for point in curve
            ],
        },
    )
    shutil.rmtree(checkpoints, ignore_errors=True)  # only needed to resume an interrupted run
