"""What both evaluators share (the sampled and exact views in `evaluate`, the entropy-driven
mode in `seeded`): stream keys, answer budgets, the shared-prefix decoder, and a mean's CI."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from entropy_lab.evaluation.params import EvaluateSection
from entropy_lab.stats.inference import bca_interval, keyed_rng

if TYPE_CHECKING:
    from entropy_lab.tasks.base import Family


def stream_key(model_name: str, variant: str) -> str:
    """What keys a variant's sampled answers and Monte Carlo tests (with the record id)."""
    return f"{model_name}/{variant}"


def is_ordinal(support: list[str]) -> bool:
    try:
        [float(a) for a in support]
    except ValueError:
        return False
    return True


def answer_budget(tokenizer, record: dict[str, Any], family: Family) -> int:
    """Tokens a sampled answer may take before it counts as not stopping: the longest valid
    answer's (its UTF-8 bytes where the support is too large to list), plus EOS."""
    from entropy_lab.training.scoring import answer_ids

    if record["support"]:
        return max(map(len, answer_ids(tokenizer, record["support"]))) + 1
    return len(family.longest_answer(json.loads(record["instance"])).encode()) + 1


@torch.inference_mode()
def decode_shared(model, prefix: list[int], suffixes: list[list[int]], steps: int, pick, eos: int):
    """Continue `prefix + suffixes[row]` for every row (suffixes of one length): the prefix is run
    once and its KV cache repeated for the rows, then each step takes `pick(logits, step)` (one
    token per row). Returns each row's tokens before EOS, or None where no EOS came within
    `steps`. Sampling N answers to one prompt (empty suffixes) costs N answers' tokens, not N
    prompts'."""
    rows = len(suffixes)
    ids = torch.tensor([prefix], device=model.device)
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=True)
    cache, logits = out.past_key_values, out.logits[:, -1].expand(rows, -1)
    cache.batch_repeat_interleave(rows)
    seen = len(prefix)

    def step_in(tokens: torch.Tensor):
        nonlocal cache, logits, seen
        seen += tokens.shape[1]
        mask = torch.ones(rows, seen, dtype=torch.long, device=model.device)
        out = model(input_ids=tokens.to(model.device), attention_mask=mask, past_key_values=cache,
                    use_cache=True)  # fmt: skip
        cache, logits = out.past_key_values, out.logits[:, -1]

    if suffixes[0]:
        step_in(torch.tensor(suffixes))
    tokens = torch.full((rows, steps), eos, dtype=torch.long)
    done = torch.zeros(rows, dtype=torch.bool)
    for step in range(steps):
        chosen = pick(logits, step).cpu()
        tokens[:, step] = torch.where(done, eos, chosen)
        done |= chosen == eos
        if bool(done.all()) or step + 1 == steps:
            break
        step_in(chosen[:, None])
    answers: list[list[int] | None] = []
    for row in tokens.tolist():
        answers.append(row[: row.index(eos)] if eos in row else None)
    return answers


def mean_ci(
    x: np.ndarray, settings: EvaluateSection, key: tuple, statistic=np.mean
) -> dict[str, Any]:
    """A statistic (the mean) with a bootstrap 95% CI over records; no interval from fewer than
    `evaluate.min_records_ci` records (the BCa interval's coverage is 46% at 2 records, 83% at
    5, 94% at 30) or with no variation, where it would mean nothing."""
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return {"mean": None, "ci": None, "n": 0}
    if len(x) < settings.min_records_ci or np.ptp(x) == 0:
        return {"mean": float(statistic(x)), "ci": None, "n": len(x)}
    rng = keyed_rng(settings.seed, "ci", *key)
    lo, hi = bca_interval((x,), statistic, settings.bootstrap, 0.05, rng)
    return {"mean": float(statistic(x)), "ci": [lo, hi], "n": len(x)}
