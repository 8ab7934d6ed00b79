"""Exact vs sampled evaluation of one model on a fixed record set, side by side in one run.

The exact view scores every valid answer by teacher forcing (one packed forward pass per batch
of records); the sampled view draws K answers per record. For K in {64, 256, 1024}: wall time,
forward passes, and the error of the sampled full-space distribution (support + invalid)
against the exact one, as mean TVD over records. Prints the time ratio sampled / exact at the
first K whose error is below 0.05.

    python benchmarks/bench_eval.py [--records 24] [--variant ce_kl]

Uses models/kjv-tiny (and its adapter when --variant names one) and data/tasks.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from entropy_lab.cli import quiet_libraries
from entropy_lab.config import load_params
from entropy_lab.evaluation import distribution as dist
from entropy_lab.evaluation.common import answer_budget
from entropy_lab.evaluation.evaluate import sample_answers
from entropy_lab.models import load_profile, peft_quietly
from entropy_lab.training.scoring import exact_distributions

KS = (64, 256, 1024)
ERROR_TARGET = 0.05


class Counter:
    """Counts the model's forward passes (a `generate` step is one)."""

    def __init__(self, model):
        self.n = 0
        model.register_forward_pre_hook(self.hook)

    def hook(self, *_):
        self.n += 1


def main() -> None:
    quiet_libraries()  # as the stages do, before transformers and datasets import
    from datasets import load_from_disk

    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=24)
    ap.add_argument("--variant", default="ce_kl", help="an adapter under adapters/, or 'base'")
    args = ap.parse_args()
    params = load_params()
    t, e = params.training, params.evaluate
    name = t.models[0]
    model, tok, _ = load_profile(name, params.models)
    adapter = Path("adapters", name, args.variant)
    if args.variant != "base":
        from peft import PeftModel

        with peft_quietly():  # the one warning the evaluate stage filters too
            model = PeftModel.from_pretrained(model, adapter, is_trainable=False).eval()
    counter = Counter(model)
    records = [r for r in load_from_disk("data/tasks")["validation"] if r["support"]]
    records = records[: args.records]
    families = params.tasks.instantiate()

    t0, counter.n = time.perf_counter(), 0
    exact = exact_distributions(model, tok, records, t.max_prompt_tokens, t.max_support_tokens)
    exact_s, exact_fwd = time.perf_counter() - t0, counter.n
    scored = [records[i] for i, *_ in exact]
    truth = [dist.full_space(p.numpy(), lq.exp().numpy(), float(m.exp())) for _, p, lq, m in exact]
    print(f"{name}/{args.variant}, {len(scored)} validation records with an exact view")
    print(f"exact:  {exact_s:8.2f} s, {exact_fwd:6d} forward passes")

    budgets = [answer_budget(tok, r, families[r["family"]]) for r in scored]
    rows = {}
    for k in KS:
        ek = e.model_copy(update={"samples": k})
        t0, counter.n = time.perf_counter(), 0
        answers = sample_answers(model, tok, scored, budgets, ek, "bench", t.max_prompt_tokens)
        seconds, fwd = time.perf_counter() - t0, counter.n
        errors = []
        for r, texts, (_, q_full) in zip(scored, answers, truth, strict=True):
            c, invalid = dist.counts(texts, r["support"])
            errors.append(dist.tvd(np.r_[c, invalid] / k, q_full))
        rows[k] = (seconds, float(np.mean(errors)))
        print(
            f"K={k:5d}: {seconds:8.2f} s, {fwd:6d} forward passes, mean TVD(sampled, exact) "
            f"{rows[k][1]:.3f}, time ratio sampled/exact {seconds / exact_s:6.1f}x"
        )
    good = [k for k in KS if rows[k][1] < ERROR_TARGET]
    if good:
        k = good[0]
        print(
            f"sampling reaches error < {ERROR_TARGET} at K = {k}: "
            f"{rows[k][0] / exact_s:.1f}x the exact view's time"
        )
    else:
        print(f"no K in {KS} reaches error < {ERROR_TARGET}; the exact view has none")


if __name__ == "__main__":
    main()
