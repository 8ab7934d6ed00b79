"""The reproducible sampler's throughput, side by side in one run (ratios, not absolute times).

Same model, prompt, batch and length, three ways:
  1. plain batched HF `generate(do_sample=True)`            (the speed to match: >= 0.9x)
  2. our inverse-CDF sampler, one uniform stream per row    (batch-invariant)
  3. the write-up's loop: `torch.manual_seed(s)` + `generate` per seed, batch 1 (>= 20x slower)

The three run interleaved, round after round, and each ratio is the median of the rounds'
ratios, so load from other processes falls on all three alike. The last lines say where the
loop ratio comes from: it is 64 x (batch-1 step) / (batch-64 step), so it is high only where
a batch of 64 costs little more than one row, and the share of the sampler's time spent in
the inverse-CDF step itself.

`--min-new-tokens` forces every row to the full length, so all three do the same work.

Then, where `entropy-lab convert --model smollm2-135m-instruct` has written it, the sampler
against HF's batched `generate` on SmolLM2-135M-Instruct (a real-size chat model; the per-seed
loop is left out there), and a line saying it was skipped where it has not.

    python benchmarks/bench_sampler.py                       # the default model, CPU, fp32
    python benchmarks/bench_sampler.py --threads 1           # ... one thread (a shared machine)
    python benchmarks/bench_sampler.py --config gpt2 --dtype bfloat16 --batch 64   # GPU, real size
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from entropy_lab.cli import quiet_libraries

quiet_libraries()  # as the stages do, before the sampler imports transformers
from entropy_lab.generation.sampler import InverseCDF, Sampling, prng_uniforms  # noqa: E402

SMOLLM2 = Path("models/smollm2-135m-instruct")


def build(config: str, dtype_name: str):
    from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = getattr(torch, dtype_name)
    if config == "gpt2":  # GPT-2 small's shape (124M), random weights: speed only
        torch.manual_seed(0)
        model = GPT2LMHeadModel(GPT2Config()).to(device, dtype)
    else:
        path = Path(config)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, use_safetensors=True).to(
            device
        )
    return model.eval(), device


def rounds(fns: dict, repeats: int) -> dict[str, np.ndarray]:
    """Seconds per call of each function, interleaved: round r runs each once."""
    for fn in fns.values():
        fn()  # warm-up
    out = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            out[name].append(time.perf_counter() - t0)
    return {name: np.array(v) for name, v in out.items()}


class TimedInverseCDF(InverseCDF):
    """The inverse-CDF step with its own time recorded."""

    seconds = 0.0

    def __call__(self, input_ids, scores):
        t0 = time.perf_counter()
        out = super().__call__(input_ids, scores)
        TimedInverseCDF.seconds += time.perf_counter() - t0
        return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="models/kjv-tiny", help="'gpt2' or a local model directory")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--loop-seeds", type=int, default=8, help="seeds timed in the per-seed loop")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument(
        "--chat-model", default=str(SMOLLM2), help="then sampler vs HF on this model ('': skip)"
    )
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    compare(args, args.config, loop=True)
    if not args.chat_model:
        return
    if not Path(args.chat_model).is_dir():
        print(
            f"skipped: sampler vs HF on {args.chat_model}: not there "
            "(`make gguf && entropy-lab convert --model smollm2-135m-instruct`)"
        )
        return
    compare(args, args.chat_model, loop=False)


def compare(args, config: str, loop: bool) -> None:
    """Sampler vs HF batched `generate` (and, with `loop`, vs the per-seed loop) on one model."""
    model, device = build(config, args.dtype)
    vocab = model.config.vocab_size
    prompt = torch.randint(0, min(vocab, 256), (1, 16), generator=torch.Generator().manual_seed(0))
    batch = prompt.repeat(args.batch, 1).to(device)
    mask = torch.ones_like(batch)
    s = Sampling(0.7, 50, 1.0, args.new_tokens)
    common = {
        "max_new_tokens": args.new_tokens,
        "min_new_tokens": args.new_tokens,
        "pad_token_id": 0,
        "eos_token_id": None,
    }
    u = np.stack([prng_uniforms(f"bench/{i}", args.new_tokens) for i in range(args.batch)])

    @torch.inference_mode()
    def hf_batched():
        model.generate(
            batch, attention_mask=mask, do_sample=True, temperature=0.7, top_k=50, **common
        )

    @torch.inference_mode()
    def ours():
        from transformers import LogitsProcessorList

        proc = LogitsProcessorList([TimedInverseCDF(u, batch.shape[1], s)])
        model.generate(batch, attention_mask=mask, do_sample=False, logits_processor=proc, **common)

    @torch.inference_mode()
    def per_seed():
        for seed in range(args.loop_seeds):
            torch.manual_seed(seed)
            model.generate(
                batch[:1],
                attention_mask=mask[:1],
                do_sample=True,
                temperature=0.7,
                top_k=50,
                **common,
            )

    fns = {"hf": hf_batched, "ours": ours} | ({"loop": per_seed} if loop else {})
    t = rounds(fns, args.repeats)
    tokens = args.batch * args.new_tokens
    print(
        f"device {device}, dtype {args.dtype}, model {config}, batch {args.batch}, "
        f"{args.new_tokens} new tokens, {args.repeats} interleaved rounds, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"HF generate batched:   {tokens / np.median(t['hf']):12,.0f} tokens/s")
    print(f"inverse-CDF sampler:   {tokens / np.median(t['ours']):12,.0f} tokens/s")
    if loop:
        t["loop"] = t["loop"] * args.batch / args.loop_seeds  # per batch-equivalent
        print(f"per-seed loop (bs 1):  {tokens / np.median(t['loop']):12,.0f} tokens/s")
    print(f"ratio sampler / HF batched:    {np.median(t['hf'] / t['ours']):.2f}x (target >= 0.9x)")
    if not loop:
        return
    print(f"ratio sampler / per-seed loop: {np.median(t['loop'] / t['ours']):.1f}x (target >= 20x)")
    calls = args.repeats + 1  # the warm-up call counted too
    step_share = TimedInverseCDF.seconds / (t["ours"].sum() * calls / args.repeats)
    step_1 = np.median(t["loop"]) / args.batch / args.new_tokens
    step_b = np.median(t["ours"]) / args.new_tokens
    print(
        f"one batch-{args.batch} step costs {step_b / step_1:.1f} batch-1 steps "
        f"({1e3 * step_b:.1f} ms vs {1e3 * step_1:.2f} ms): the loop ratio is "
        f"{args.batch} / {step_b / step_1:.1f}; the inverse-CDF step is "
        f"{100 * step_share:.1f}% of the sampler's time"
    )


if __name__ == "__main__":
    main()
