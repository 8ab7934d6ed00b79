"""What portable CPU numerics cost: the default model's training step and a sampling step under
each `models.numerics` setting, measured side by side, with a hash of each setting's result.

PyPI torch runs fp32 matrix products in MKL, which picks its kernels by CPU vendor and ISA, and
its own vectorised kernels (random draws included) by ISA; so the same code gives other bytes
on another CPU. `portable` pins both (MKL's AVX2 code path, ATen's AVX2 kernels), which any
x86-64 CPU with AVX2 runs; `compatible` takes MKL's vendor-neutral path and ATen's scalar one.
Each setting runs in its own process (both are read when torch loads), in interleaved rounds.

    python benchmarks/bench_numerics.py [--rounds 5] [--steps 8]
"""

from __future__ import annotations

import argparse
import statistics

from entropy_lab.numerics import SETTINGS
from settings_child import run_child

CHILD = r"""
import hashlib, json, sys, time
import torch
from transformers import GPT2Config, GPT2LMHeadModel
torch.set_num_threads(int(sys.argv[2]))
steps = int(sys.argv[1])
torch.manual_seed(0)
config = GPT2Config(vocab_size=257, n_positions=256, n_embd=128, n_layer=4, n_head=4,
                    bos_token_id=256, eos_token_id=256)
model = GPT2LMHeadModel(config)  # the default built model's shape (kjv-tiny)
opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
g = torch.Generator().manual_seed(1)
batches = [torch.randint(0, 256, (16, 256), generator=g) for _ in range(steps)]
t0 = time.perf_counter()
for ids in batches:  # the build stage's step: batch 16 x 256 bytes
    loss = model(input_ids=ids, labels=ids).loss
    opt.zero_grad(); loss.backward(); opt.step()
train = (time.perf_counter() - t0) / steps
model.eval()
with torch.inference_mode():  # a sampling step: 64 rows, one token each, KV cache of 128
    out = model(input_ids=batches[0][:64 // 16].repeat(16, 1)[:, :128], use_cache=True)
    cache = out.past_key_values
    t0 = time.perf_counter()
    for k in range(steps * 4):
        nxt = out.logits[:, -1].argmax(-1, keepdim=True)
        out = model(input_ids=nxt, past_key_values=cache, use_cache=True)
        cache = out.past_key_values
    sample = (time.perf_counter() - t0) / (steps * 4)
digest = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in model.parameters()))
print(json.dumps({"train": train, "sample": sample, "hash": digest.hexdigest()[:16],
                  "capability": torch.backends.cpu.get_cpu_capability()}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    runs: dict[str, list[dict]] = {s: [] for s in SETTINGS}
    for _ in range(args.rounds):  # interleaved: a burst of other load hits every setting
        for setting in SETTINGS:
            runs[setting].append(run_child(CHILD, setting, args.steps, args.threads))
    base = {k: statistics.median(r[k] for r in runs["native"]) for k in ("train", "sample")}
    for setting, results in runs.items():
        hashes = {r["hash"] for r in results}
        med = {k: statistics.median(r[k] for r in results) for k in ("train", "sample")}
        print(
            f"{setting:10s} ATen {results[0]['capability']:8s} train step {med['train'] * 1e3:6.1f} ms"
            f" ({med['train'] / base['train']:.2f}x native), sampling step "
            f"{med['sample'] * 1e3:5.2f} ms ({med['sample'] / base['sample']:.2f}x native), "
            f"weights after {args.steps} steps {'/'.join(sorted(hashes))}"
        )


if __name__ == "__main__":
    main()
