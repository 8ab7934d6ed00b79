"""Default-model throughput, measured side by side in one run (ratios, not absolute times).

1. Training step of the default config with 1 vs 2 CPU threads (why `models.threads: 2`).
2. Greedy decoding with the KV cache vs without (why generation stages keep the cache on).

    python benchmarks/bench_models.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from entropy_lab.cli import quiet_libraries

quiet_libraries()  # as the stages do, before transformers imports
from transformers import GPT2LMHeadModel  # noqa: E402

from entropy_lab.config import load_params  # noqa: E402
from entropy_lab.training.pretrain import gpt2_config, next_byte_loss  # noqa: E402


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    p = load_params().models.built["kjv-tiny"]  # the configured default model
    torch.manual_seed(0)
    model = GPT2LMHeadModel(gpt2_config(p))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch = torch.randint(
        0, 256, (p.batch_size, p.context + 1), generator=torch.Generator().manual_seed(0)
    )

    def step() -> None:
        loss = next_byte_loss(model, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()

    tokens = p.batch_size * p.context
    per_thread = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        per_thread[threads] = median_seconds(step, args.repeats)
        print(f"train step, {threads} thread(s): {tokens / per_thread[threads]:,.0f} tokens/s")
    print(f"ratio 2 threads / 1 thread (throughput): {per_thread[1] / per_thread[2]:.2f}x")

    model.eval()
    prompt = torch.randint(0, 256, (8, 16), generator=torch.Generator().manual_seed(1))
    new = p.context - prompt.shape[1]
    timings = {}
    for cache in (True, False):

        @torch.no_grad()
        def gen(cache=cache) -> None:
            model.generate(
                prompt,
                attention_mask=torch.ones_like(prompt),
                max_new_tokens=new,
                do_sample=False,
                use_cache=cache,
                pad_token_id=256,
            )

        timings[cache] = median_seconds(gen, args.repeats)
        label = "with" if cache else "without"
        print(
            f"greedy decode {label} KV cache: {prompt.shape[0] * new / timings[cache]:,.0f} tokens/s"
        )
    print(f"ratio KV cache / no cache (throughput): {timings[False] / timings[True]:.2f}x")


if __name__ == "__main__":
    main()
