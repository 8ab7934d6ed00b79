"""Evaluation of the entropy-driven mode: a model that maps the pool's u to the answer at u.

For every evaluation record with u's (`tasks.seeded`), the model answers each seeded prompt by
greedy decoding, so its answers are a deterministic function of the pool's bytes. Per record:
the accuracy of the mapping (answer == the target's inverse CDF at u), validity, and the
goodness of fit of the valid answers against the target (`distribution.gof`): a model that
maps every u right is a sampler from the target whose randomness is the pool's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from entropy_lab.evaluation import distribution as dist
from entropy_lab.evaluation.common import (
    answer_budget,
    decode_shared,
    is_ordinal,
    mean_ci,
    stream_key,
)
from entropy_lab.evaluation.params import EvaluateSection
from entropy_lab.stats.inference import keyed_rng
from entropy_lab.tasks.seeded import seeded_prompt

if TYPE_CHECKING:
    import pandas as pd

    from entropy_lab.tasks.base import Family


def greedy_answers(model, tokenizer, prompts: list[list[int]], budget: int, batch_size: int):
    """Greedy continuations (None where no EOS within `budget` tokens) of prompts that share a
    long prefix (one record's prompts differ only in u): the prefix runs once per batch of
    prompts with suffixes of one length."""
    from entropy_lab.models import end_of_answer

    columns = zip(*prompts, strict=False)  # up to the shortest prompt
    shared = next((i for i, col in enumerate(columns) if len(set(col)) > 1), None)
    shortest = min(map(len, prompts))
    prefix = prompts[0][: min(shortest if shared is None else shared, shortest - 1)]
    by_length: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        by_length.setdefault(len(p), []).append(i)
    out: list[str | None] = [None] * len(prompts)
    for rows in by_length.values():
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            suffixes = [prompts[i][len(prefix) :] for i in chunk]
            answers = decode_shared(
                model, prefix, suffixes, budget, lambda logits, _: logits.argmax(-1),
                end_of_answer(tokenizer),
            )  # fmt: skip
            for i, ids in zip(chunk, answers, strict=True):
                out[i] = None if ids is None else tokenizer.decode(ids)
    return out


def evaluate_seeded(
    model,
    tokenizer,
    records,
    families: dict[str, Family],
    settings: EvaluateSection,
    key: str,
    max_prompt: int,
) -> list[dict[str, Any]]:
    """One row per record with u's: its u's, expected answers, greedy answers and statistics."""
    from entropy_lab.models import prompt_ids

    rows = []
    for r in records:
        if not r["seeded_u"]:
            continue
        budget = answer_budget(tokenizer, r, families[r["family"]])
        prompts = [
            prompt_ids(tokenizer, seeded_prompt(r["prompt"], r["answer_format"], u), max_prompt,
                       suffix="\nAnswer: ")
            for u in r["seeded_u"]
        ]  # fmt: skip
        stored = {
            "id": r["id"],
            "split": r["split"],
            "family": r["family"],
            "instance": r["instance"],
            "support": list(r["support"]),
            "target": list(r["probs"]),
            "seeded_u": list(r["seeded_u"]),
            "expected": list(r["seeded_answers"]),
            "answers": greedy_answers(model, tokenizer, prompts, budget, settings.batch_size),
        }
        rows.append(stored | seeded_stats(stored, settings, key))
    return rows


def seeded_stats(r: dict[str, Any], settings: EvaluateSection, key: str) -> dict[str, Any]:
    """A record's statistics from its stored answers alone (what `verify` recomputes); the
    Monte Carlo draws are keyed by (seed, stream key, record)."""
    answers, expected = list(r["answers"]), list(r["expected"])
    n = len(answers)
    counts, _ = dist.counts(answers, list(r["support"]))
    values = np.array(r["support"], float) if is_ordinal(list(r["support"])) else None
    rng = keyed_rng(settings.seed, "seeded-gof", key, r["id"])
    test, p = dist.gof(counts, np.asarray(r["target"], float), values, settings.monte_carlo, rng)
    full = dist.full_space_p(p, n - int(counts.sum()))
    mode = r["support"][int(np.argmax(r["target"]))]
    return {
        "samples": n,
        "accuracy": sum(a == b for a, b in zip(answers, expected, strict=True)) / n,
        # a model that ignores u and always answers the most probable answer scores this
        "mode_accuracy": sum(b == mode for b in expected) / n,
        "valid": int(counts.sum()),
        "valid_rate": counts.sum() / n,
        "gof_test": test,
        "gof_p": full,  # over the whole output space (an invalid answer rejects)
        "gof_pass": bool(full >= settings.alpha),
        "gof_p_valid": p,  # the valid answers alone: a diagnostic
        "gof_pass_valid": bool(np.isfinite(p) and p >= settings.alpha),
    }


def rescore_seeded(records: pd.DataFrame, settings: EvaluateSection, model_name: str) -> list[dict]:
    """`seeded.parquet` rows with every statistic recomputed from the stored answers."""

    rows = []
    for r in records.to_dict("records"):
        r = r | {k: list(r[k]) for k in ("support", "target", "answers", "expected")}
        rows.append(r | seeded_stats(r, settings, stream_key(model_name, r["variant"])))
    return rows


def summarize_seeded(rows: list[dict[str, Any]], settings: EvaluateSection) -> dict[str, Any]:
    """Per variant and split, and per family within: accuracy, validity, GOF pass rate."""
    import pandas as pd

    from entropy_lab.stats.inference import binomial_interval

    def group_summary(d: pd.DataFrame, key: tuple) -> dict[str, Any]:
        acc = mean_ci(d.accuracy.to_numpy(float), settings, (*key, "accuracy"))
        passes, passes_valid = int(d.gof_pass.sum()), int(d.gof_pass_valid.sum())
        return {
            "records": len(d),
            "accuracy": acc["mean"],
            "accuracy_ci": acc["ci"],
            "mode_accuracy": float(d.mode_accuracy.mean()),
            "valid_rate": float(d.valid_rate.mean()),
            "gof_pass_rate": passes / len(d),
            "gof_pass_ci": list(binomial_interval(passes, len(d))),
            "gof_pass_valid_rate": passes_valid / len(d),
            "gof_pass_valid_ci": list(binomial_interval(passes_valid, len(d))),
        }

    out: dict[str, Any] = {}
    if not rows:
        return out
    df = pd.DataFrame(rows)
    for (variant, split), d in df.groupby(["variant", "split"], sort=True):
        entry = group_summary(d, ("seeded", variant, split))
        entry["families"] = {
            f: group_summary(g, ("seeded", variant, split, f))
            for f, g in d.groupby("family", sort=True)
        }
        out.setdefault(variant, {})[split] = entry
    return out
