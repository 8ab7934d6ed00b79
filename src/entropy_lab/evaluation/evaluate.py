"""The `evaluate@<model>` stage: the base model and every trained adapter, on seen and
held-out families and templates, as a user who samples the model would meet them.

- Exact view (records whose support fits `training.max_support_tokens`): the model's
  probability of every valid answer by teacher forcing (`training.scoring`), with the rest of
  its mass on one "invalid" outcome. The primary distances are over that full output space
  (TVD, KL); the same distances renormalised over the support are labelled `_conditional`:
  how close the model is *given* a valid answer.
- Sampled view (every record): N answers sampled at temperature 1 (one keyed uniform stream
  per answer). Validity (an answer is valid when it is exactly a support element, or for
  passwords, UUIDs and lottery lines a canonical answer the family's parser accepts), and a
  goodness-of-fit test of the valid answers against the target (`distribution.gof`: KS for
  ordinal answers, chi-square or its Monte Carlo version otherwise; per-position marginals
  with Bonferroni for the structured families). A record passes when that test does not
  reject at alpha; a record with no valid answer has no test and does not pass. For
  `deterministic` (one right answer) the figure is accuracy. A chi-square of the sampled
  cells (support + invalid) against the exact view checks the two views agree.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from entropy_lab.errors import UserError
from entropy_lab.evaluation import distribution as dist
from entropy_lab.evaluation.params import EvaluateSection
from entropy_lab.progress import progress
from entropy_lab.stats.inference import bca_interval, binomial_interval, keyed_rng

if TYPE_CHECKING:
    import pandas as pd

    from entropy_lab.tasks.base import Family

log = logging.getLogger(__name__)

EVAL_DIR = Path("data/eval")
SPLITS = ("validation", "test_template", "test_family")  # seen; held-out template; held-out family
SWEEP_SPLIT = "validation"  # the records the temperature sweep samples
ZHAO_2026_MEDIAN_PASS_RATE = 0.07  # "LLMs Are Bad Dice Players": frontier models, N = 1000


def stream_key(model_name: str, variant: str) -> str:
    """What keys a variant's sampled answers and Monte Carlo tests (with the record id)."""
    return f"{model_name}/{variant}"


def is_ordinal(support: list[str]) -> bool:
    try:
        [float(a) for a in support]
    except ValueError:
        return False
    return True


def answer_budget(tokenizer, record: dict[str, Any], family: Family) -> int:
    """Tokens a sampled answer may take before it counts as not stopping: the longest valid
    answer's (its UTF-8 bytes where the support is too large to list), plus EOS."""
    from entropy_lab.training.scoring import answer_ids

    if record["support"]:
        return max(map(len, answer_ids(tokenizer, record["support"]))) + 1
    return len(family.longest_answer(json.loads(record["instance"])).encode()) + 1


@torch.inference_mode()
def decode_shared(model, prefix: list[int], suffixes: list[list[int]], steps: int, pick, eos: int):
    """Continue `prefix + suffixes[row]` for every row (suffixes of one length): the prefix is run
    once and its KV cache repeated for the rows, then each step takes `pick(logits, step)` (one
    token per row). Returns each row's tokens before EOS, or None where no EOS came within
    `steps`. Sampling N answers to one prompt (empty suffixes) costs N answers' tokens, not N
    prompts'."""
    rows = len(suffixes)
    ids = torch.tensor([prefix], device=model.device)
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=True)
    cache, logits = out.past_key_values, out.logits[:, -1].expand(rows, -1)
    cache.batch_repeat_interleave(rows)
    seen = len(prefix)

    def step_in(tokens: torch.Tensor):
        nonlocal cache, logits, seen
        seen += tokens.shape[1]
        mask = torch.ones(rows, seen, dtype=torch.long, device=model.device)
        out = model(input_ids=tokens.to(model.device), attention_mask=mask, past_key_values=cache,
                    use_cache=True)  # fmt: skip
        cache, logits = out.past_key_values, out.logits[:, -1]

    if suffixes[0]:
        step_in(torch.tensor(suffixes))
    tokens = torch.full((rows, steps), eos, dtype=torch.long)
    done = torch.zeros(rows, dtype=torch.bool)
    for step in range(steps):
        chosen = pick(logits, step).cpu()
        tokens[:, step] = torch.where(done, eos, chosen)
        done |= chosen == eos
        if bool(done.all()) or step + 1 == steps:
            break
        step_in(chosen[:, None])
    answers: list[list[int] | None] = []
    for row in tokens.tolist():
        answers.append(row[: row.index(eos)] if eos in row else None)
    return answers


def sample_answers(
    model, tokenizer, records, budgets, e: EvaluateSection, key: str, max_prompt, temperature=1.0
):
    """N sampled answer texts per record (None where the model did not stop within the
    record's budget, EOS included). Answer j of a record reads its own keyed uniform stream,
    the same at every temperature (common random numbers); a record's N answers share one
    run of its prompt (`evaluate.batch_size` answers per step at most)."""
    from entropy_lab.generation.sampler import Sampling, inverse_cdf, prng_uniforms, warp
    from entropy_lab.models import prompt_ids

    out = []
    for r, budget in progress(list(zip(records, budgets, strict=True)), desc=f"sample {key}"):
        prompt = prompt_ids(tokenizer, r["prompt"], max_prompt, suffix="\nAnswer: ")
        s = Sampling(temperature, 0, 1.0, budget)
        texts: list[str | None] = []
        for start in range(0, e.samples, e.batch_size):
            n = min(e.batch_size, e.samples - start)
            keys = (f"{e.seed}/{key}/{r['id']}/{start + j}" for j in range(n))
            u = torch.from_numpy(np.stack([prng_uniforms(k, budget) for k in keys]))

            def pick(logits, step, u=u, s=s):  # the A/B strand's inverse-CDF step
                return inverse_cdf(warp(logits, s), u[:, step].to(logits.device))

            eos = tokenizer.eos_token_id
            for ids in decode_shared(model, prompt, [[]] * n, budget, pick, eos):
                texts.append(None if ids is None else tokenizer.decode(ids))
        out.append(texts)
    return out


def evaluate_records(
    model,
    tokenizer,
    records,
    families: dict[str, Family],
    e: EvaluateSection,
    key: str,
    max_prompt: int,
    max_support: int,
    temperature: float = 1.0,
) -> list[dict[str, Any]]:
    """One row per record at one sampling temperature: what the stage stores (distributions,
    answers) and its statistics."""
    from entropy_lab.training.scoring import exact_distributions

    scored = exact_distributions(
        model, tokenizer, records, max_prompt, max_support, temperature=temperature
    )
    exact = {i: rest for i, *rest in scored}
    budgets = [answer_budget(tokenizer, r, families[r["family"]]) for r in records]
    answers = sample_answers(model, tokenizer, records, budgets, e, key, max_prompt, temperature)
    rows = []
    for i, (r, texts) in enumerate(zip(records, answers, strict=True)):
        _target, log_q, log_mass = exact.get(i, (None, None, None))
        stored = {
            "id": r["id"],
            "temperature": temperature,
            "split": r["split"],
            "family": r["family"],
            "instance": r["instance"],
            "support": list(r["support"]),
            "target": list(r["probs"]),
            "model": [] if log_q is None else log_q.double().exp().tolist(),
            "support_mass": float("nan") if log_mass is None else float(log_mass.exp()),
            "answers": texts,
        }
        rows.append(stored | record_stats(stored, families[r["family"]], e, key))
    return rows


def record_stats(r: dict[str, Any], family: Family, e: EvaluateSection, key: str) -> dict[str, Any]:
    """Every statistic of one record, from its stored distributions and answers and its family's
    parser alone (so `verify` can recompute them without a model). Monte Carlo draws are keyed
    by (seed, stream key, record, temperature)."""
    rng = keyed_rng(e.seed, "gof", key, r["id"], r["temperature"])
    inst = json.loads(r["instance"])
    answers = list(r["answers"])
    n = len(answers)
    parsed = [a is not None and family.parse(a, inst) is not None for a in answers]
    nan = float("nan")
    row: dict[str, Any] = {"samples": n, "parsed_rate": sum(parsed) / n, "accuracy": nan}
    p = np.asarray(r["target"], float)
    if len(p):  # an enumerable support
        c, _invalid = dist.counts(answers, r["support"])
        valid = int(c.sum())
        values = np.array(r["support"], float) if is_ordinal(r["support"]) else None
        test, gof_p = dist.gof(c, p, values, e.monte_carlo, rng)
        row |= {
            "support_size": len(p),
            "counts": c.tolist(),
            "tvd_empirical": dist.tvd(p, c / valid) if valid else nan,
        }
        if family.name == "deterministic":
            row["accuracy"] = valid / n
    else:  # passwords, UUIDs, lottery lines: canonical answers, per-position marginals
        canonical = [
            a for a, ok in zip(answers, parsed, strict=True) if ok and family.parse(a, inst) == a
        ]
        valid = len(canonical)
        marginals = family.target(inst).marginals
        spots = [family.positions(a, inst) for a in canonical]
        counts = [
            np.array([sum(s[j] == v for s in spots) for v in m.values])
            for j, m in enumerate(marginals)
        ]
        test = "marginals"
        gof_p = dist.marginal_gof(
            counts, [np.array(m.probs, float) for m in marginals], e.monte_carlo, rng
        )
        row |= {"support_size": 0, "counts": [], "tvd_empirical": nan}
    row |= {
        "valid": valid,
        "valid_rate": valid / n,
        "gof_test": test,
        "gof_p": gof_p,
        "gof_pass": bool(np.isfinite(gof_p) and gof_p >= e.alpha),
    }
    row |= exact_stats(r, row)
    return row


def exact_stats(r: dict[str, Any], sampled: dict[str, Any]) -> dict[str, float]:
    """The exact view's distances (NaN where the support could not be scored): full space first,
    then renormalised over the support; and the sampled cells against the exact view."""
    nan = float("nan")
    keys = ("tvd", "kl", "tvd_conditional", "kl_conditional", "entropy_ratio", "agreement_p")
    if not len(r["model"]):
        return dict.fromkeys(keys, nan)
    p, q, mass = np.asarray(r["target"], float), np.asarray(r["model"], float), r["support_mass"]
    p_full, q_full = dist.full_space(p, q, mass)
    h_p = dist.entropy(p)
    invalid = sampled["samples"] - sampled["valid"]
    return {
        "tvd": dist.tvd(p_full, q_full),
        "kl": dist.kl(p_full, q_full),
        "tvd_conditional": dist.tvd(p, q),
        "kl_conditional": dist.kl(p, q),
        "entropy_ratio": dist.entropy(q) / h_p if h_p > 0 else nan,
        "agreement_p": dist.gof_p(np.r_[sampled["counts"], invalid], q_full),
    }


def rescore(
    records: pd.DataFrame, families: dict[str, Family], e: EvaluateSection, model_name: str
) -> list[dict[str, Any]]:
    """`records.parquet` rows with every statistic recomputed from the stored columns."""
    rows = []
    for r in records.to_dict("records"):
        r = r | {k: list(r[k]) for k in ("support", "target", "model", "answers")}
        key = stream_key(model_name, r["variant"])
        rows.append(r | record_stats(r, families[r["family"]], e, key))
    return rows


def mean_ci(x: np.ndarray, e: EvaluateSection, key: tuple) -> dict[str, Any]:
    """Mean with a bootstrap 95% CI over records; no interval from fewer than two records (or
    no variation), where it would mean nothing."""
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return {"mean": None, "ci": None, "n": 0}
    if len(x) < 2 or np.ptp(x) == 0:
        return {"mean": float(x.mean()), "ci": None, "n": len(x)}
    rng = keyed_rng(e.seed, "ci", *key)
    lo, hi = bca_interval((x,), np.mean, e.bootstrap, 0.05, rng)
    return {"mean": float(x.mean()), "ci": [lo, hi], "n": len(x)}


def block(d: pd.DataFrame, e: EvaluateSection, key: tuple) -> dict[str, Any]:
    """The summary of a set of records (a variant and split, or one family within it)."""
    passes = int(d.gof_pass.sum())
    tvd = mean_ci(d.tvd.to_numpy(float), e, (*key, "tvd"))
    valid = mean_ci(d.valid_rate.to_numpy(float), e, (*key, "valid"))
    out = {
        "records": len(d),
        "tvd": tvd["mean"],
        "tvd_ci": tvd["ci"],
        "exact_records": tvd["n"],
        "kl": _finite_mean(d.kl),
        "tvd_conditional": _finite_mean(d.tvd_conditional),
        "kl_conditional": _finite_mean(d.kl_conditional),
        "entropy_ratio": _finite_mean(d.entropy_ratio),
        "support_mass": _finite_mean(d.support_mass),
        "valid_rate": valid["mean"],
        "valid_rate_ci": valid["ci"],
        "parsed_rate": float(d.parsed_rate.mean()),
        "gof_pass_rate": passes / len(d),
        "gof_pass_ci": list(binomial_interval(passes, len(d))),
        "gof_tested": int(np.isfinite(d.gof_p.to_numpy(float)).sum()),
        "agreement_reject_rate": _finite_mean(d.agreement_p < e.alpha, d.agreement_p),
    }
    acc = d.accuracy.to_numpy(float)
    if np.isfinite(acc).any():
        out["accuracy"] = _finite_mean(d.accuracy)
    return out


def _finite_mean(values: pd.Series, where: pd.Series | None = None) -> float | None:
    """Mean over the records where `where` (default: the values) is finite; None if none."""
    ok = np.isfinite((values if where is None else where).to_numpy(float))
    return float(values.to_numpy(float)[ok].mean()) if ok.any() else None


LENGTH_BINS = (1, 3, 6, 11, 21, 41)  # lower edges, in bytes, of the answer-length bins


def answer_length(support: list[str], target: list[float]) -> float:
    """A record's expected answer length under its target, in UTF-8 bytes (EOS not counted)."""
    return float(np.dot(target, [len(a.encode()) for a in support]))


def by_answer_length(d: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Support mass and sampled validity against the expected answer length (records with an
    enumerable support), one entry per non-empty length bin, labelled by its byte range."""
    d = d[d.support.map(len) > 0]
    lengths = np.array([answer_length(s, p) for s, p in zip(d.support, d.target, strict=True)])
    out = {}
    for lo, hi in zip(LENGTH_BINS, (*LENGTH_BINS[1:], None), strict=True):
        g = d[(lengths >= lo) & ((lengths < hi) if hi else True)]
        if len(g):
            out[f"{lo}-{hi - 1}" if hi else f"{lo}+"] = {
                "records": len(g),
                "support_mass": _finite_mean(g.support_mass),
                "valid_rate": float(g.valid_rate.mean()),
            }
    return out


PAIRED_REFERENCES = ("base", "ce_multisample")  # each variant is compared with these
PAIRED_METRICS = ("tvd", "valid_rate")


def paired(df: pd.DataFrame, e: EvaluateSection) -> dict[str, Any]:
    """Per split, each variant against each reference on the same records at T = 1: the mean
    per-record difference (variant minus reference) of full-space TVD and of validity, with a
    bootstrap CI over records. Pairing removes the records' difficulty, which dominates each
    variant's own CI, so two overlapping CIs can still differ here."""
    out: dict[str, Any] = {}
    for split, d in df[df.temperature == 1.0].groupby("split", sort=True):
        wide = {m: d.pivot(index="id", columns="variant", values=m) for m in PAIRED_METRICS}
        present = list(wide["tvd"].columns)
        for k, ref in enumerate(PAIRED_REFERENCES):
            if ref not in present:
                continue
            for v in (v for v in present if v not in PAIRED_REFERENCES[: k + 1]):
                out.setdefault(split, {})[f"{v} - {ref}"] = {
                    m: mean_ci((w[v] - w[ref]).to_numpy(float), e, ("paired", split, v, ref, m))
                    for m, w in wide.items()
                }
    return out


def summarize(rows: list[dict[str, Any]], e: EvaluateSection) -> dict[str, Any]:
    """At temperature 1, per variant and split and per family within, and against answer
    length; each variant against the references on the same records; and the temperature
    sweep, per variant and temperature, over the validation records."""
    import pandas as pd

    df = pd.DataFrame(rows)
    out: dict[str, Any] = {"variants": {}, "temperature": {}, "paired": paired(df, e)}
    for (variant, split), d in df[df.temperature == 1.0].groupby(["variant", "split"], sort=True):
        entry = block(d, e, (variant, split))
        entry["families"] = {
            f: block(g, e, (variant, split, f)) for f, g in d.groupby("family", sort=True)
        }
        entry["answer_length"] = by_answer_length(d)
        out["variants"].setdefault(variant, {})[split] = entry
    sweep = df[df.split == SWEEP_SPLIT]
    for (variant, temp), d in sweep.groupby(["variant", "temperature"], sort=True):
        out["temperature"].setdefault(variant, {})[f"{temp:g}"] = block(d, e, (variant, temp))
    return out


def run_stage(params, model_name: str, root: Path = Path(".")) -> None:
    """Stage `evaluate@<model>`: base model and each adapter in training.variants."""
    import pandas as pd
    from datasets import load_from_disk
    from peft import PeftModel

    from entropy_lab.evaluation.seeded import evaluate_seeded, summarize_seeded
    from entropy_lab.models import load_profile, peft_quietly
    from entropy_lab.provenance import MANIFEST, atomic_dir, build_manifest, json_safe, write_json
    from entropy_lab.schema import flatten

    e: EvaluateSection = params.evaluate
    t = params.training
    if model_name not in t.models:
        raise UserError(
            f"--model {model_name!r}: not in training.models; allowed: {', '.join(t.models)}"
        )
    tasks_dir = root / "data" / "tasks"
    adapters = {v: root / "adapters" / model_name / v for v in t.variants}
    for v, path in adapters.items():
        if not (path / "adapter_config.json").is_file():
            raise UserError(f"no adapter at {path}; run train@{model_name}-{v} first")
    if not (tasks_dir / "dataset_dict.json").is_file():
        raise UserError(f"no task dataset at {tasks_dir}; run the tasks stage first")
    ds = load_from_disk(str(tasks_dir))
    records = [
        r for split in SPLITS for r in list(ds[split].select(range(min(e.records, len(ds[split])))))
    ]
    families = params.tasks.instantiate()

    model, tokenizer, resolved = load_profile(model_name, params.models, root / "models")
    rows, seeded_rows = [], []
    sweep = [r for r in records if r["split"] == SWEEP_SPLIT]

    def run(m, variant: str) -> None:
        key = stream_key(model_name, variant)
        if variant in ("base", "seeded") and "seeded" in t.variants:  # u in the prompt, greedy
            found = evaluate_seeded(m, tokenizer, records, families, e, key, t.max_prompt_tokens)
            seeded_rows.extend({"variant": variant} | r for r in found)
        if variant == "seeded":
            return  # trained for prompts that carry u only
        for temp in sorted(e.temperatures):
            found = evaluate_records(
                m,
                tokenizer,
                records if temp == 1.0 else sweep,
                families,
                e,
                key,
                t.max_prompt_tokens,
                t.max_support_tokens,
                temp,
            )
            rows.extend({"variant": variant} | r for r in found)
            log.info("%s at temperature %g: %d records evaluated", key, temp, len(found))

    run(model, "base")
    for v, path in adapters.items():
        with peft_quietly():
            peft = PeftModel.from_pretrained(model, path, is_trainable=False)
        run(peft.eval(), v)
        model = peft.unload()

    read = flatten(e, "evaluate") | {
        "models.threads": params.models.threads,
        "training.variants": t.variants,
        "training.max_prompt_tokens": t.max_prompt_tokens,
        "training.max_support_tokens": t.max_support_tokens,
    }
    inputs = {"tasks": tasks_dir, "base_model": resolved.path} | {
        f"adapter/{v}": p for v, p in adapters.items()
    }
    with atomic_dir(root / EVAL_DIR / model_name) as tmp:
        pd.DataFrame(rows).to_parquet(tmp / "records.parquet", index=False)
        if seeded_rows:
            pd.DataFrame(seeded_rows).to_parquet(tmp / "seeded.parquet", index=False)
        write_json(
            tmp / MANIFEST,
            build_manifest("evaluate", read, inputs, tmp, seeds={"evaluate": e.seed}),
        )
    summary = summarize(rows, e) | {"seeded": summarize_seeded(seeded_rows, e)}
    write_json(root / "reports" / "eval" / model_name / "metrics.json", json_safe(summary))
