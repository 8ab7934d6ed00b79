"""Turn task records into packed model inputs and score them: the exact model distribution
over each record's support in one batched forward pass (see training.losses)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from entropy_lab.errors import UserError
from entropy_lab.models import end_of_answer, prompt_ids
from entropy_lab.training.losses import (
    Packed,
    Trie,
    answer_token_logprobs,
    batch_tensors,
    build_trie,
    cheapest_row_length,
    pack,
    support_log_probs,
)


def answer_ids(tokenizer, answers: list[str]) -> list[list[int]]:
    return [tokenizer(a, add_special_tokens=False).input_ids for a in answers]


@lru_cache(maxsize=8192)
def answer_trie(tokenizer, answers: tuple[str, ...]) -> Trie:
    """The token trie of `answers`, built once per support: every training step re-draws its
    records, and tokenising a support of up to 256 tokens each time cost about a tenth of a
    ce_kl step on the default model (bench_train.py)."""
    return build_trie(answer_ids(tokenizer, list(answers)))


@lru_cache(maxsize=65536)
def mean_answer_tokens(tokenizer, draws: tuple[str, ...]) -> float:
    """A record's mean answer length in tokens, EOS included, over its draws from the target:
    the per-record constant a sampled answer's summed NLL is divided by."""
    return float(np.mean([len(ids) + 1 for ids in answer_ids(tokenizer, list(draws))]))


@dataclass(frozen=True)
class Item:
    """One record ready to score: its packed trie, the target over it (None: CE only), which
    trie answer is the sampled one, and the record's mean answer length (`ce_norm`)."""

    packed: Packed
    trie: Trie
    target: torch.Tensor | None
    sampled: int
    ce_norm: float


def _depth(trie: Trie) -> int:
    """Positions the deepest answer takes after the prompt, its EOS included."""
    return max(len(p) for p in trie.paths) + 1


def make_item(
    tokenizer,
    record: dict[str, Any],
    draw: str,
    exact: bool,
    max_prompt: int,
    max_support: int,
    max_positions: int,
) -> Item:
    """`exact`: score the whole support (when the record has one that fits); else only `draw`.

    The prompt is left-truncated so that prompt, deepest answer and EOS fit the model's positions."""
    support = record["support"]
    trie = answer_trie(tokenizer, tuple(support)) if exact and support else None
    if trie is None or len(trie.tokens) > max_support or _depth(trie) > max_positions // 2:
        trie, target, sampled = answer_trie(tokenizer, (draw,)), None, 0
    else:
        target, sampled = torch.tensor(record["probs"], dtype=torch.float32), support.index(draw)
    room = min(max_prompt, max_positions - _depth(trie))
    if room < 1:
        raise UserError(
            f"an answer of {_depth(trie)} tokens does not fit the model's {max_positions} positions"
        )
    prompt = prompt_ids(tokenizer, record["prompt"], room, suffix="\nAnswer: ")
    norm = mean_answer_tokens(tokenizer, tuple(record.get("draws") or [draw]))
    return Item(pack(prompt, trie), trie, target, sampled, norm)


def score(
    model, tokenizer, items: list[Item], temperature: float = 1.0
) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
    """Per item: the (L, V) log-softmax of its packed sequence (logits divided by `temperature`,
    as sampling at that temperature sees them) and, per trie answer, its token log-probs
    (answer tokens then EOS, a chat model's end of turn); one forward pass over rows packed at
    the cheapest length."""
    eos = end_of_answer(tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    packed = [i.packed for i in items]
    length = cheapest_row_length([len(x.input_ids) for x in packed], model.config.hidden_size)
    batch, place = batch_tensors(packed, pad, length)
    logits = model(**{k: v.to(model.device) for k, v in batch.items()}).logits.float()
    if temperature != 1.0:
        logits = logits / temperature
    logprobs = torch.log_softmax(logits, dim=-1)
    out = []
    for item, (row, off) in zip(items, place, strict=True):
        own = logprobs[row, off : off + len(item.packed.input_ids)]
        out.append((own, answer_token_logprobs(own, item.packed, item.trie, eos)))
    return out


@torch.no_grad()
def exact_distributions(
    model,
    tokenizer,
    records: list[dict[str, Any]],
    max_prompt: int,
    max_support: int,
    batch_size: int = 8,
    temperature: float = 1.0,
):
    """For each record with a scorable support: (its index in `records`, target,
    log q renormalised over the support, log support mass), at the sampling `temperature`."""
    positions = model.config.max_position_embeddings
    items = [
        (i, make_item(tokenizer, r, r["support"][0], True, max_prompt, max_support, positions))
        for i, r in enumerate(records)
        if r["support"]
    ]
    items = [(i, item) for i, item in items if item.target is not None]
    out = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        scored = score(model, tokenizer, [item for _, item in chunk], temperature)
        for (i, item), (_, toks) in zip(chunk, scored, strict=True):
            log_q, mass = support_log_probs(toks)
            out.append((i, item.target, log_q.cpu(), mass.cpu()))
    return out
