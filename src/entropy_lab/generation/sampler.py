"""Reproducible sampling: one uniform per generated token, inverse CDF after the warpers.

A sample's uniform stream is fixed before generation (from a keyed PRNG or a pool range),
and row b of a batch only ever reads stream b. So a sample's tokens depend on its own
record and the model's logits for that row, never on batch size, batch composition or how
the samples are split over processes. The step runs as a logits processor inside HF
`generate` (greedy over a one-hot), so it inherits the KV cache, padding and stopping.
"""

from __future__ import annotations

import copy
import hashlib
import logging
from dataclasses import dataclass

import numpy as np
import torch
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from entropy_lab.entropy.pool import WORD_BYTES
from entropy_lab.models import stop_tokens


class _PaddedRowsWarning(logging.Filter):
    """transformers' `generate` drops an all-ones attention mask on decoding steps, and then
    warns that a row which has already ended (its next input is the pad token, which is EOS
    here) "may be padded". Those rows' tokens are discarded at EOS, so nothing a user can act
    on: this one message is filtered."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "We strongly recommend passing in an `attention_mask`" not in record.getMessage()


logging.getLogger("transformers.modeling_utils").addFilter(_PaddedRowsWarning())


def uniforms(data: bytes) -> np.ndarray:
    """Uniforms strictly inside (0, 1) from little-endian 32-bit words: (w + 1/2) / 2^32."""
    words = np.frombuffer(data, dtype="<u4").astype(np.float64)
    return (words + 0.5) / 2.0**32


def prng_bytes(key: str, n: int) -> bytes:
    """`n` bytes of numpy's PCG64 seeded with sha256(key): the same key gives the same bytes."""
    entropy = int.from_bytes(hashlib.sha256(key.encode()).digest(), "little")
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy))).bytes(n)


def prng_uniforms(key: str, n: int) -> np.ndarray:
    """`n` uniforms from the keyed PRNG: the words `prng_bytes(key, ...)` gives, as uniforms."""
    return uniforms(prng_bytes(key, WORD_BYTES * n))


def seed_from(data: bytes) -> int:
    """A 32-bit seed (what `torch.manual_seed` takes in the write-up) from four bytes."""
    return int.from_bytes(data[:WORD_BYTES], "little")


@dataclass(frozen=True)
class Sampling:
    temperature: float
    top_k: int  # 0: off
    top_p: float  # 1.0: off
    max_new_tokens: int


def warp(logits: torch.Tensor, s: Sampling) -> torch.Tensor:
    """The sampling distribution (float64) after HF's warpers, in the order `generate` applies them."""
    scores = logits.float()
    if s.temperature != 1.0:
        scores = TemperatureLogitsWarper(s.temperature)(None, scores)
    if s.top_k:
        scores = TopKLogitsWarper(s.top_k)(None, scores)
    if s.top_p < 1.0:
        scores = TopPLogitsWarper(s.top_p)(None, scores)
    return torch.softmax(scores.double(), dim=-1)


def inverse_cdf(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Token i such that cdf[i-1] <= u < cdf[i], per row; u in (0, 1).

    If rounding leaves u at or above the last cumulative sum, the last token with positive
    probability is taken (zero-probability tokens have empty intervals and are never picked).
    """
    cdf = probs.cumsum(dim=-1).contiguous()
    idx = torch.searchsorted(cdf, u.to(cdf.dtype).unsqueeze(-1).contiguous(), right=True).squeeze(
        -1
    )
    vocab = probs.shape[-1]
    last = vocab - 1 - (probs > 0).flip(-1).int().argmax(dim=-1)
    return torch.where(idx >= vocab, last, idx)


def token_stats(logits: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: log-prob of the chosen token and entropy (nats), under the unwarped model."""
    logp = torch.log_softmax(logits.double(), dim=-1)
    chosen = logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    entropy = -(logp.exp() * logp).nan_to_num().sum(-1)
    return chosen, entropy


class InverseCDF(LogitsProcessor):
    """Row b at step t takes token inverse_cdf(warp(logits_b), u[b, t]) and returns it as a one-hot."""

    def __init__(self, u: np.ndarray, prompt_width: int, s: Sampling):
        self.u = torch.from_numpy(u)
        self.width = prompt_width
        self.sampling = s

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        step = input_ids.shape[1] - self.width
        u = self.u[:, step].to(scores.device)
        tokens = inverse_cdf(warp(scores, self.sampling), u)
        out = torch.full_like(scores, -torch.inf)
        return out.scatter_(1, tokens.unsqueeze(-1), 0.0)


@dataclass(frozen=True)
class Generated:
    token_ids: list[int]  # before the end-of-sequence token
    logprobs: list[float]  # per generated token, the stopping end-of-sequence token included
    entropies: list[float]  # likewise: every text, an empty one too, has at least one
    stopped: bool  # ended with an end-of-sequence token before max_new_tokens


def _generation_config(model, tokenizer, s: Sampling, **overrides):
    """A chat model stops at its end of turn: its answer is the assistant turn."""
    gc = copy.deepcopy(model.generation_config)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    gc.update(
        max_new_tokens=s.max_new_tokens,
        min_new_tokens=None,
        pad_token_id=pad,
        eos_token_id=stop_tokens(model, tokenizer),
        output_logits=True,
        return_dict_in_generate=True,
        **overrides,
    )
    return gc


def _collect(out, width: int, eos_ids: set[int]) -> list[Generated]:
    """Cut each row at its first end-of-sequence token; per-token stats from the raw logits."""
    new = out.sequences[:, width:].cpu()
    logits = torch.stack(out.logits, dim=1).cpu()  # (batch, steps, vocab), before any processor
    logprobs, entropies = token_stats(logits.flatten(0, 1), new.flatten())
    logprobs, entropies = logprobs.view(new.shape), entropies.view(new.shape)
    rows = []
    for b in range(new.shape[0]):
        ids = new[b].tolist()
        end = next((i for i, t in enumerate(ids) if t in eos_ids), len(ids))
        scored = end + 1 if end < len(ids) else end  # the stopping end-of-text is a choice too
        rows.append(
            Generated(
                ids[:end],
                logprobs[b, :scored].float().tolist(),
                entropies[b, :scored].float().tolist(),
                end < len(ids),
            )
        )
    return rows


def _eos_ids(gc) -> set[int]:
    eos = gc.eos_token_id
    return set(eos) if isinstance(eos, list) else {eos}


@torch.inference_mode()
def sample_streams(
    model, tokenizer, prompts: list[list[int]], u: np.ndarray, s: Sampling
) -> list[Generated]:
    """One batch: prompt token ids (left-padded here) and one uniform row per sample."""
    if u.shape != (len(prompts), s.max_new_tokens):
        raise ValueError(f"uniforms {u.shape}, need {(len(prompts), s.max_new_tokens)}")
    gc = _generation_config(
        model, tokenizer, s, do_sample=False, temperature=None, top_k=None, top_p=None
    )
    width = max(map(len, prompts))
    ids = torch.full((len(prompts), width), gc.pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for b, p in enumerate(prompts):
        ids[b, width - len(p) :] = torch.tensor(p)
        mask[b, width - len(p) :] = 1
    out = model.generate(
        input_ids=ids.to(model.device),
        attention_mask=mask.to(model.device),
        generation_config=gc,
        logits_processor=LogitsProcessorList([InverseCDF(u, width, s)]),
    )
    return _collect(out, width, _eos_ids(gc))


@torch.inference_mode()
def sample_seeded(model, tokenizer, prompt: list[int], seed: int, s: Sampling) -> Generated:
    """The write-up's protocol: `torch.manual_seed(seed)`, then one `generate(do_sample=True)`."""
    gc = _generation_config(
        model,
        tokenizer,
        s,
        do_sample=True,
        temperature=s.temperature,
        top_k=s.top_k or None,
        top_p=s.top_p,
    )
    ids = torch.tensor([prompt], device=model.device)
    torch.manual_seed(seed)
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=gc)
    return _collect(out, len(prompt), _eos_ids(gc))[0]
