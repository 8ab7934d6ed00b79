"""bf16 against the portable fp32 path on SmolLM2-135M-Instruct (CPU): what `models.dtype:
bfloat16` saves in time, and what it costs in numbers and in bit-identity.

Three settings, each in its own process (`models.numerics` is read when torch loads), in
interleaved rounds: fp32 under `portable` (the default), bf16 under `portable`, and bf16 under
`native`. Each times a prefill (64 rows x 64 tokens) and 32 greedy decoding steps of those rows
(KV cache), and hashes its last-position logits. Against fp32 it reports the largest logit
difference and the share of rows whose greedy 32 tokens are the same. Two hashes of one dtype
that differ between settings mean its bytes depend on the CPU's kernels.

    python benchmarks/bench_bf16.py [--rounds 3]

Needs `entropy-lab convert --model smollm2-135m-instruct` (prints a skip line where not).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import numpy as np

from settings_child import run_child

MODEL = Path("models/smollm2-135m-instruct")
RUNS = (("float32", "portable"), ("bfloat16", "portable"), ("bfloat16", "native"))

CHILD = r"""
import hashlib, json, sys, time
import numpy as np
import torch
from transformers import AutoModelForCausalLM
model_dir, dtype, threads, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
torch.set_num_threads(threads)
model = AutoModelForCausalLM.from_pretrained(
    model_dir, dtype=getattr(torch, dtype), use_safetensors=True, trust_remote_code=False
).eval()
ids = torch.randint(0, 10000, (64, 64), generator=torch.Generator().manual_seed(0))
with torch.inference_mode():
    model(input_ids=ids[:4, :8])  # warm-up
    t0 = time.perf_counter()
    logits = model(input_ids=ids).logits[:, -1].float()
    prefill = time.perf_counter() - t0
    t0 = time.perf_counter()
    greedy = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                            max_new_tokens=32, min_new_tokens=32, pad_token_id=0)[:, 64:]
    decode = (time.perf_counter() - t0) / 32
np.savez(out, logits=logits.numpy(), greedy=greedy.numpy())
print(json.dumps({"prefill": prefill, "decode": decode,
                  "hash": hashlib.sha256(logits.numpy().tobytes()).hexdigest()[:16],
                  "capability": torch.backends.cpu.get_cpu_capability()}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if not MODEL.is_dir():
        print(f"skipped: bf16 vs fp32 on {MODEL}: not there (`make gguf && entropy-lab convert`)")
        return
    runs: dict[tuple, list[dict]] = {key: [] for key in RUNS}
    with tempfile.TemporaryDirectory() as tmp:
        outputs = {key: Path(tmp) / f"{key[0]}-{key[1]}.npz" for key in RUNS}
        for _ in range(args.rounds):  # interleaved: a burst of other load hits every setting
            for key in RUNS:
                dtype, setting = key
                runs[key].append(
                    run_child(CHILD, setting, MODEL, dtype, args.threads, outputs[key])
                )
        arrays = {key: dict(np.load(path)) for key, path in outputs.items()}
    base = {k: statistics.median(r[k] for r in runs[RUNS[0]]) for k in ("prefill", "decode")}
    ref = arrays[RUNS[0]]
    print(f"{MODEL.name}, {args.threads} threads, {args.rounds} interleaved rounds")
    for key, results in runs.items():
        med = {k: statistics.median(r[k] for r in results) for k in ("prefill", "decode")}
        diff = np.abs(arrays[key]["logits"] - ref["logits"]).max()
        same = (arrays[key]["greedy"] == ref["greedy"]).all(axis=1).mean()
        hashes = "/".join(sorted({r["hash"] for r in results}))
        print(
            f"{key[0]:8s} {key[1]:8s} ATen {results[0]['capability']:7s} "
            f"prefill {med['prefill'] * 1e3:7.1f} ms ({med['prefill'] / base['prefill']:.2f}x), "
            f"decode step {med['decode'] * 1e3:6.1f} ms ({med['decode'] / base['decode']:.2f}x); "
            f"max |logit - fp32| {diff:.3f}, greedy 32 tokens = fp32 in {100 * same:.0f}% of rows; "
            f"logits {hashes}"
        )


if __name__ == "__main__":
    main()
