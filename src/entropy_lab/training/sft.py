"""LoRA SFT on the task dataset with the losses of training.losses: the loop of the `train`
stage (stages/train.py), its batches, and its validation scores.

Every draw is keyed by (seed, step): the batch, the answer drawn for CE, and torch's RNG
(LoRA dropout) are re-derived at each step, so a run killed after a checkpoint and
restarted ends with the same adapter as an uninterrupted one (on CPU, fixed seed).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from entropy_lab.errors import UserError
from entropy_lab.models import end_of_answer
from entropy_lab.parallel import all_reduce_sum, barrier
from entropy_lab.progress import progress
from entropy_lab.training.checkpoints import Checkpoints
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


def learning_rate(step: int, settings: TrainingSection) -> float:
    """Linear warmup, then cosine decay to zero at the last step: on the default model this
    reached 0.65 support mass at step 1000 where a constant rate reached 0.52 (README)."""
    if step < settings.warmup_steps:
        return settings.lr * (step + 1) / settings.warmup_steps
    done = (step - settings.warmup_steps) / max(1, settings.steps - settings.warmup_steps)
    return settings.lr * 0.5 * (1 + math.cos(math.pi * done))


def sampling_weights(records: list[dict[str, Any]], settings: TrainingSection) -> np.ndarray | None:
    """Each train record's chance of being drawn into a batch, in proportion to its family's
    `training.family_weights` (1 where not listed); None (uniform) when none is listed."""
    if not settings.family_weights:
        return None
    families = sorted({r["family"] for r in records})
    for name in settings.family_weights:
        if name not in families:
            raise UserError(
                f"training.family_weights.{name}: not a family of the train split; "
                f"allowed: {', '.join(families)}"
            )
    w = np.array([settings.family_weights.get(r["family"], 1.0) for r in records])
    return w / w.sum()


def batch_for(
    step: int,
    records: list[dict[str, Any]],
    settings: TrainingSection,
    weights: np.ndarray | None = None,
) -> list[tuple[dict[str, Any], str]]:
    """The records of a step and the target draw each is trained on: a function of (seed, step).
    `weights` (`sampling_weights`) are the records' chances at each successive draw of the
    batch (without replacement); None draws uniformly."""
    rng = step_rng(settings.seed, step)
    size = min(settings.batch_size, len(records))
    idx = rng.choice(len(records), size=size, replace=False, p=weights)
    out = []
    for i in idx:
        r = records[int(i)]
        out.append((r, r["draws"][int(rng.integers(len(r["draws"])))]))
    return out


def loss_on(
    model, tokenizer, batch, variant: str, settings: TrainingSection
) -> dict[str, torch.Tensor]:
    """The batch's mean loss, with its CE and full-space KL parts (KL: NaN if never scored)."""
    positions = model.config.max_position_embeddings
    items = [
        make_item(
            tokenizer,
            r,
            draw,
            variant in SUPPORT_LOSSES,
            settings.max_prompt_tokens,
            settings.max_support_tokens,
            positions,
        )
        for r, draw in batch
    ]
    losses, ces, kls = [], [], []
    eos = end_of_answer(tokenizer)
    for item, (logprobs, toks) in zip(items, score(model, tokenizer, items), strict=True):
        # the answer's summed NLL over the record's mean answer length: a per-token mean
        # (dividing by this answer's own length) is minimised by q ∝ p / length, not by p
        ce = -toks[item.sampled].sum() / item.ce_norm
        kl = soft = None
        if item.target is not None:
            target = item.target.to(logprobs.device)
            kl = kl_target_model(target, sequence_scores(toks))
            if variant == "soft_trie":
                soft = soft_trie_loss(logprobs, item.packed, item.trie, target, eos)
            kls.append(kl.detach())
        ces.append(ce.detach())
        losses.append(record_loss(variant, settings.lambda_kl, ce, kl, soft))
    return {
        "loss": torch.stack(losses).mean(),
        "ce": torch.stack(ces).mean(),
        "kl": torch.stack(kls).mean() if kls else torch.tensor(float("nan")),
    }


def score_validation(
    model, tokenizer, records: list[dict[str, Any]], settings: TrainingSection
) -> dict[str, float]:
    """Over validation records: full-space KL(target || model) and TVD (invalid outputs one
    outcome), the support mass, and the renormalised (conditional) KL and TVD as diagnostics."""
    from entropy_lab.evaluation import distribution as dist

    was_training = model.training
    model.eval()
    dists = exact_distributions(
        model, tokenizer, records, settings.max_prompt_tokens, settings.max_support_tokens
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
    model, tokenizer, records: list[dict[str, Any]], settings: TrainingSection
) -> dict[str, float]:
    """Support mass and full-space TVD on train records the loop draws from. Beside the
    validation curve this says where a plateau is: in fitting the taught prompts (both low)
    or in carrying them over to new ones (train high, validation low)."""
    point = score_validation(model, tokenizer, records, settings)
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


@dataclass(frozen=True)
class TrainRun:
    """What one SFT run trains on and how: its variant and settings, the train records (drawn
    into batches with `weights`, see `batch_for`), the validation records scored at each
    evaluation and, where given, train records `fit` scored beside them (`fit_scores`); and,
    under torchrun, this process's rank in `world` processes."""

    variant: str
    settings: TrainingSection
    records: list[dict[str, Any]]
    validation: list[dict[str, Any]]
    fit: Sequence[dict[str, Any]] = ()
    weights: np.ndarray | None = None
    rank: int = 0
    world: int = 1


def train(model, tokenizer, run: TrainRun, checkpoints: Checkpoints | None = None) -> list[dict]:
    """The loop. Returns the evaluation curve (on rank 0); the model is trained in place and,
    given `checkpoints`, resumes from and saves to them.

    Under torchrun each of the `world` processes takes every world-th record of the step's
    batch and weights its mean loss by its share; summing the gradients over processes
    gives the gradient of the whole batch's mean loss, so every replica takes the same
    step (up to float summation order). Rank 0 evaluates and checkpoints."""
    settings, variant = run.settings, run.variant
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=settings.lr, weight_decay=0.0)
    start, curve = checkpoints.resume(model, opt, settings.steps) if checkpoints else (0, [])
    barrier()

    def scores() -> dict[str, float]:
        fit = fit_scores(model, tokenizer, run.fit, settings) if run.fit else {}
        return score_validation(model, tokenizer, run.validation, settings) | fit

    if start == 0 and run.rank == 0:
        curve = [{"step": 0, **scores()}]
    model.train()
    bar = (
        progress(total=settings.steps, desc=f"train {variant}", unit="step")
        if run.rank == 0
        else None
    )
    if bar is not None:
        bar.update(start)
    for step in range(start, settings.steps):
        out = train_step(model, tokenizer, opt, params, run, step)
        done = step + 1
        if run.rank != 0:
            continue
        bar.update(1)
        if done % settings.eval_every == 0 or done == settings.steps:
            point = {"step": done, **{k: out[k].item() for k in ("loss", "ce", "kl")}, **scores()}
            curve.append(point)
            log.info("%s step %d: loss %.4f, val KL %.4f, TVD %.4f", variant, done,
                     point["loss"], point["val_kl"], point["val_tvd"])  # fmt: skip
        if checkpoints and done % settings.checkpoint_every == 0 and done < settings.steps:
            checkpoints.save(model, opt, done, curve)
    if bar is not None:
        bar.close()
    return curve


def train_step(model, tokenizer, opt, params, run: TrainRun, step: int) -> dict[str, torch.Tensor]:
    """One optimiser step on the step's batch (this process's share of it under torchrun):
    the batch's loss, CE and KL."""
    for group in opt.param_groups:
        group["lr"] = learning_rate(step, run.settings)
    opt.zero_grad(set_to_none=True)
    out = batch_gradients(model, tokenizer, params, run, step)
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    return out


def shard_share(shard: list, batch: list) -> float:
    """A process's weight on its shard's mean loss: its share of the batch's records, so the
    processes' gradients sum to the gradient of the whole batch's mean loss."""
    return len(shard) / len(batch)


def batch_gradients(model, tokenizer, params, run: TrainRun, step: int) -> dict[str, torch.Tensor]:
    """The gradient of the step's mean batch loss in `params`' .grad (summed over processes
    under torchrun, each scoring every world-th record), and the batch's loss, CE and KL."""
    settings = run.settings
    torch.manual_seed(settings.seed * 1_000_003 + step)  # LoRA dropout, keyed by step
    batch = batch_for(step, run.records, settings, run.weights)
    shard = batch[run.rank :: run.world]
    out = loss_on(model, tokenizer, shard, run.variant, settings)
    if not torch.isfinite(out["loss"]):
        raise UserError(
            f"training: the {run.variant} loss became {out['loss'].item()} at step {step + 1}; "
            f"lower training.lr ({settings.lr}) or training.lambda_kl ({settings.lambda_kl})"
        )
    share = shard_share(shard, batch)
    (out["loss"] * share).backward()
    if run.world > 1:
        all_reduce_sum(p.grad for p in params)
        logged = torch.stack([out[k].detach() for k in ("loss", "ce", "kl")]) * share
        all_reduce_sum([logged])
        out = dict(zip(("loss", "ce", "kl"), logged, strict=True))
    return out
