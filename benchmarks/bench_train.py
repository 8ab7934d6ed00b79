"""Training step time of ce_kl and soft_trie vs ce_multisample on the same batch (target: at
most 1.15x, the support scored in one packed forward pass), and training tokens/s.

A support trie adds tokens to the batch (every answer's own suffix), so the step ratio cannot
fall below the token ratio; the time per token shows what the packing itself costs.

    python benchmarks/bench_train.py [--repeats 7]

Uses the default model (models/kjv-tiny, from `dvc repro models`) and data/tasks.
"""

from __future__ import annotations

import argparse
import statistics
import time

from datasets import load_from_disk

from entropy_lab.config import load_params
from entropy_lab.models import load_profile
from entropy_lab.training.scoring import make_item
from entropy_lab.training.sft import SUPPORT_LOSSES, batch_for, loss_on, with_lora


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    params = load_params()
    t = params.training
    model, tok, _ = load_profile(t.models[0], params.models)
    model = with_lora(model, t.lora, t.seed).train()
    records = [r for r in load_from_disk("data/tasks")["train"] if r["draws"]]
    batch = batch_for(0, records, t)
    positions = model.config.max_position_embeddings
    kinds = ("ce_multisample", "ce_kl", "soft_trie")
    counts = {
        kind: sum(
            len(
                make_item(
                    tok,
                    r,
                    d,
                    kind in SUPPORT_LOSSES,
                    t.max_prompt_tokens,
                    t.max_support_tokens,
                    positions,
                ).packed.input_ids
            )
            for r, d in batch
        )
        for kind in kinds
    }

    def step(kind: str) -> float:
        t0 = time.perf_counter()
        model.zero_grad(set_to_none=True)
        loss_on(model, tok, batch, kind, t)["loss"].backward()
        return time.perf_counter() - t0

    for kind in kinds:
        step(kind)  # warm-up
    runs = {kind: [] for kind in kinds}
    for _ in range(args.repeats):  # interleaved, so a burst of other load hits every kind
        for kind in kinds:
            runs[kind].append(step(kind))
    times = {kind: statistics.median(r) for kind, r in runs.items()}
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


if __name__ == "__main__":
    main()
