"""Training step time of ce_kl and soft_trie vs ce_multisample on the same batch (target: at
most 1.15x, the support scored in one packed forward pass), and training tokens/s.

A support trie adds tokens to the batch (every answer's own suffix), so the step ratio cannot
fall below the token ratio; the time per token shows what the packing itself costs. Last, the
forward and backward pass of each batch packed at the cheapest row length against rows of the
model's context (or of the longest sequence), the rule before it.

    python benchmarks/bench_train.py [--repeats 7]

Uses the default model (models/kjv-tiny, from `dvc repro models`) and data/tasks. Then, where
`entropy-lab convert --model smollm2-135m-instruct` has written it, the ce_kl step against the
ce_multisample step on SmolLM2-135M-Instruct (chat-wrapped prompts, answers ending with its end
of turn), and a line saying it was skipped where it has not.
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial
from pathlib import Path

from entropy_lab.cli import quiet_libraries
from entropy_lab.config import load_params
from entropy_lab.models import load_profile
from entropy_lab.training.losses import batch_tensors, cheapest_row_length
from entropy_lab.training.scoring import make_item
from entropy_lab.training.sft import SUPPORT_LOSSES, batch_for, loss_on, with_lora

CHAT_MODEL = "smollm2-135m-instruct"


def interleaved_medians(work: dict, repeats: int) -> dict:
    """Median seconds of each zero-argument callable in `work`, after one warm-up call each,
    timed in rounds that run every one in turn, so a burst of other load hits them all."""
    for fn in work.values():
        fn()
    runs = {key: [] for key in work}
    for _ in range(repeats):
        for key, fn in work.items():
            t0 = time.perf_counter()
            fn()
            runs[key].append(time.perf_counter() - t0)
    return {key: statistics.median(r) for key, r in runs.items()}


def main() -> None:
    quiet_libraries()  # as the stages do, before transformers and datasets import
    from datasets import load_from_disk

    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--batch-size", type=int, default=0, help="records per step (0: params')")
    args = ap.parse_args()
    params = load_params()
    t = params.training
    if args.batch_size:
        t = t.model_copy(update={"batch_size": args.batch_size})
    model, tok, _ = load_profile(t.models[0], params.models)
    model = with_lora(model, t.lora, t.seed).train()
    records = [r for r in load_from_disk("data/tasks")["train"] if r["draws"]]
    batch = batch_for(0, records, t)
    positions = model.config.max_position_embeddings
    kinds = ("ce_multisample", "ce_kl", "soft_trie")
    packed = {
        kind: [
            make_item(
                tok,
                r,
                d,
                kind in SUPPORT_LOSSES,
                t.max_prompt_tokens,
                t.max_support_tokens,
                positions,
            ).packed
            for r, d in batch
        ]
        for kind in kinds
    }
    counts = {kind: sum(len(x.input_ids) for x in packed[kind]) for kind in kinds}

    times = step_times(model, tok, batch, t, kinds, args.repeats)
    for kind in kinds:
        print(
            f"{kind:15s} step {times[kind] * 1e3:7.1f} ms, {counts[kind]} tokens in the packed "
            f"batch, {counts[kind] / times[kind]:,.0f} tokens/s"
        )
    for kind in ("ce_kl", "soft_trie"):
        ratio = times[kind] / times["ce_multisample"]
        tokens = counts[kind] / counts["ce_multisample"]
        print(
            f"ratio {kind} / ce_multisample step time: {ratio:.2f}x (target <= 1.15x); "
            f"tokens {tokens:.2f}x; time per token {ratio / tokens:.2f}x"
        )

    def forward_backward(inputs) -> None:
        model.zero_grad(set_to_none=True)
        model(**inputs).logits.float().log_softmax(-1)[..., 0].sum().backward()

    layouts = {}
    for kind in ("ce_multisample", "ce_kl"):
        lengths = [len(x.input_ids) for x in packed[kind]]
        for rule, length in (
            ("cheapest", cheapest_row_length(lengths, model.config.hidden_size)),
            ("context", max(positions, *lengths)),
        ):
            layouts[kind, rule] = batch_tensors(packed[kind], tok.pad_token_id, length)[0]
    fb = interleaved_medians(
        {key: partial(forward_backward, inputs) for key, inputs in layouts.items()}, args.repeats
    )
    for kind in ("ce_multisample", "ce_kl"):
        new, old = (layouts[kind, rule]["input_ids"].shape for rule in ("cheapest", "context"))
        ratio = fb[kind, "cheapest"] / fb[kind, "context"]
        print(
            f"ratio {kind} forward+backward, rows {new[0]}x{new[1]} (cheapest) / "
            f"{old[0]}x{old[1]} (context): {ratio:.2f}x"
        )
    chat_model(params, t, batch, args.repeats)


def step_times(model, tok, batch, t, kinds, repeats: int) -> dict:
    """Median seconds of one forward and backward pass of each loss on `batch`."""

    def step(kind: str) -> None:
        model.zero_grad(set_to_none=True)
        loss_on(model, tok, batch, kind, t)["loss"].backward()

    return interleaved_medians({kind: partial(step, kind) for kind in kinds}, repeats)


def chat_model(params, t, batch, repeats: int) -> None:
    """ce_kl against ce_multisample on the converted SmolLM2, where it is there."""
    if not (Path("models") / CHAT_MODEL).is_dir():
        print(
            f"skipped: ce_kl / ce_multisample on {CHAT_MODEL}: models/{CHAT_MODEL} not there "
            f"(`make gguf && entropy-lab convert --model {CHAT_MODEL}`)"
        )
        return
    model, tok, _ = load_profile(CHAT_MODEL, params.models)
    model = with_lora(model, t.lora, t.seed).train()
    times = step_times(model, tok, batch, t, ("ce_multisample", "ce_kl"), repeats)
    print(
        f"{CHAT_MODEL}: ce_multisample step {times['ce_multisample'] * 1e3:.1f} ms, ce_kl step "
        f"{times['ce_kl'] * 1e3:.1f} ms; ratio ce_kl / ce_multisample step time: "
        f"{times['ce_kl'] / times['ce_multisample']:.2f}x (target <= 1.15x)"
    )


if __name__ == "__main__":
    main()
