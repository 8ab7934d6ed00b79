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

from entropy_lab.evaluation import distribution as dist
from entropy_lab.evaluation.common import (
    answer_budget,
    decode_shared,
    is_ordinal,
    mean_ci,
    stream_key,
)
from entropy_lab.evaluation.params import EvaluateSection
from entropy_lab.progress import progress
from entropy_lab.stats.inference import binomial_interval, keyed_rng

if TYPE_CHECKING:
    import pandas as pd

    from entropy_lab.tasks.base import Family

log = logging.getLogger(__name__)

EVAL_DIR = Path("data/eval")
SPLITS = ("validation", "test_template", "test_family")  # seen; held-out template; held-out family
SWEEP_SPLIT = "validation"  # the records the temperature sweep samples
ZHAO_2026_MEDIAN_PASS_RATE = 0.07  # "LLMs Are Bad Dice Players": frontier models, N = 1000


def sample_answers(
    model,
    tokenizer,
    records,
    budgets,
    settings: EvaluateSection,
    key: str,
    max_prompt,
    temperature=1.0,
):
    """N sampled answer texts per record (None where the model did not stop within the
    record's budget, EOS included). Answer j of a record reads its own keyed uniform stream,
    the same at every temperature (common random numbers); a record's N answers share one
    run of its prompt (`evaluate.batch_size` answers per step at most)."""
    from entropy_lab.generation.sampler import Sampling, inverse_cdf, prng_uniforms, warp
    from entropy_lab.models import end_of_answer, prompt_ids

    out = []
    for r, budget in progress(list(zip(records, budgets, strict=True)), desc=f"sample {key}"):
        prompt = prompt_ids(tokenizer, r["prompt"], max_prompt, suffix="\nAnswer: ")
        s = Sampling(temperature, 0, 1.0, budget)
        texts: list[str | None] = []
        for start in range(0, settings.samples, settings.batch_size):
            n = min(settings.batch_size, settings.samples - start)
            keys = (f"{settings.seed}/{key}/{r['id']}/{start + j}" for j in range(n))
            u = torch.from_numpy(np.stack([prng_uniforms(k, budget) for k in keys]))

            def pick(logits, step, u=u, s=s):  # the A/B strand's inverse-CDF step
                return inverse_cdf(warp(logits, s), u[:, step].to(logits.device))

            eos = end_of_answer(tokenizer)
            for ids in decode_shared(model, prompt, [[]] * n, budget, pick, eos):
                texts.append(None if ids is None else tokenizer.decode(ids))
        out.append(texts)
    return out


def evaluate_records(
    model,
    tokenizer,
    records,
    families: dict[str, Family],
    settings: EvaluateSection,
    key: str,
    max_prompt: int,
    max_support: int,
    temperature: float = 1.0,
    sampled: bool = True,
) -> list[dict[str, Any]]:
    """One row per record at one sampling temperature: what the stage stores (distributions,
    answers) and its statistics; `sampled=False`: the exact view alone (no answers)."""
    from entropy_lab.training.scoring import exact_distributions

    scored = exact_distributions(
        model, tokenizer, records, max_prompt, max_support, temperature=temperature
    )
    exact = {i: rest for i, *rest in scored}
    if sampled:
        budgets = [answer_budget(tokenizer, r, families[r["family"]]) for r in records]
        answers = sample_answers(
            model, tokenizer, records, budgets, settings, key, max_prompt, temperature
        )
    else:
        answers = [[] for _ in records]
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
        rows.append(stored | record_stats(stored, families[r["family"]], settings, key))
    return rows


def record_stats(
    r: dict[str, Any], family: Family, settings: EvaluateSection, key: str
) -> dict[str, Any]:
    """Every statistic of one record, from its stored distributions and answers and its family's
    parser alone (so `verify` can recompute them without a model). Monte Carlo draws are keyed
    by (seed, stream key, record, temperature)."""
    rng = keyed_rng(settings.seed, "gof", key, r["id"], r["temperature"])
    inst = json.loads(r["instance"])
    answers = list(r["answers"])
    n = len(answers)
    if n == 0:  # the exact view alone: nothing sampled, so no validity and no test
        nan = float("nan")
        return {"samples": 0, "parsed_rate": nan, "accuracy": nan, "support_size": len(r["target"]),
                "counts": [], "tvd_empirical": nan, "tvd_sampled": nan, "valid": 0,
                "valid_rate": nan, "gof_test": "", "gof_p": nan, "gof_pass": False,
                "gof_p_valid": nan, "gof_pass_valid": False} | exact_stats(
                    r, None, settings.monte_carlo, rng)  # fmt: skip
    parsed = [a is not None and family.parse(a, inst) is not None for a in answers]
    nan = float("nan")
    row: dict[str, Any] = {"samples": n, "parsed_rate": sum(parsed) / n, "accuracy": nan}
    p = np.asarray(r["target"], float)
    if len(p):  # an enumerable support
        c, _invalid = dist.counts(answers, r["support"])
        valid = int(c.sum())
        values = np.array(r["support"], float) if is_ordinal(r["support"]) else None
        test, gof_p = dist.gof(c, p, values, settings.monte_carlo, rng)
        row |= {
            "support_size": len(p),
            "counts": c.tolist(),
            "tvd_empirical": dist.tvd(p, c / valid) if valid else nan,
            # the sampled answers over the whole output space (an invalid one: target 0); at N
            # answers it exceeds the exact TVD by the sampling noise, about sqrt(K / N)
            "tvd_sampled": dist.tvd(np.r_[p, 0.0], np.r_[c, n - valid] / n),
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
            counts, [np.array(m.probs, float) for m in marginals], settings.monte_carlo, rng
        )
        row |= {"support_size": 0, "counts": [], "tvd_empirical": nan, "tvd_sampled": nan}
    full_p = dist.full_space_p(gof_p, n - valid)
    row |= {
        "valid": valid,
        "valid_rate": valid / n,
        "gof_test": test,
        "gof_p": full_p,  # over the whole output space: what a user sampling the model gets
        "gof_pass": bool(full_p >= settings.alpha),
        "gof_p_valid": gof_p,  # the valid answers alone: a diagnostic, never the result
        "gof_pass_valid": bool(np.isfinite(gof_p) and gof_p >= settings.alpha),
    }
    agreement = keyed_rng(settings.seed, "agreement", key, r["id"], r["temperature"])
    row |= exact_stats(r, row, settings.monte_carlo, agreement)
    return row


def exact_stats(
    r: dict[str, Any], sampled: dict[str, Any] | None, n_sim: int, rng: np.random.Generator
) -> dict[str, float]:
    """The exact view's distances (NaN where the support could not be scored): full space first,
    then renormalised over the support; and the sampled cells against the exact view (chi-square,
    Monte Carlo where an expected count is small, as the pass-rate test)."""
    nan = float("nan")
    keys = ("tvd", "kl", "tvd_conditional", "kl_conditional", "entropy_ratio", "agreement_p")
    if not len(r["model"]):
        return dict.fromkeys(keys, nan)
    p, q, mass = np.asarray(r["target"], float), np.asarray(r["model"], float), r["support_mass"]
    p_full, q_full = dist.full_space(p, q, mass)
    h_p = dist.entropy(p)
    agreement = nan
    if sampled is not None:
        invalid = sampled["samples"] - sampled["valid"]
        agreement = dist.gof(np.r_[sampled["counts"], invalid], q_full, None, n_sim, rng)[1]
    return {
        "tvd": dist.tvd(p_full, q_full),
        "kl": dist.kl(p_full, q_full),
        "tvd_conditional": dist.tvd(p, q),
        "kl_conditional": dist.kl(p, q),
        "entropy_ratio": dist.entropy(q) / h_p if h_p > 0 else nan,
        "agreement_p": agreement,
    }


def rescore(
    records: pd.DataFrame, families: dict[str, Family], settings: EvaluateSection, model_name: str
) -> list[dict[str, Any]]:
    """`records.parquet` rows with every statistic recomputed from the stored columns."""
    rows = []
    for r in records.to_dict("records"):
        r = r | {k: list(r[k]) for k in ("support", "target", "model", "answers")}
        key = stream_key(model_name, r["variant"])
        rows.append(r | record_stats(r, families[r["family"]], settings, key))
    return rows


def group_summary(d: pd.DataFrame, settings: EvaluateSection, key: tuple) -> dict[str, Any]:
    """The summary of a set of records (a variant and split, or one family within it): full-space
    figures first, each with its 95% CI; the conditional (valid answers only) ones labelled."""
    tested = d[d.samples > 0]  # the sampled view (none for an exact-only evaluation)
    passes, passes_valid = int(tested.gof_pass.sum()), int(tested.gof_pass_valid.sum())
    tvd = mean_ci(d.tvd.to_numpy(float), settings, (*key, "tvd"))
    median = mean_ci(d.tvd.to_numpy(float), settings, (*key, "tvd_median"), np.median)
    sampled = mean_ci(d.tvd_sampled.to_numpy(float), settings, (*key, "tvd_sampled"))
    exact = d.tvd.to_numpy(float)
    exact = exact[np.isfinite(exact)]
    close = int((exact <= settings.close_tvd).sum())
    valid = mean_ci(d.valid_rate.to_numpy(float), settings, (*key, "valid"))
    kl = d.kl.to_numpy(float)
    scored = kl[~np.isnan(kl)]  # NaN: no exact view; inf: a support answer the model never gives
    kl_ci = mean_ci(scored, settings, (*key, "kl"))
    out = {
        "records": len(d),
        "tvd": tvd["mean"],
        "tvd_ci": tvd["ci"],
        "exact_records": tvd["n"],
        "tvd_median": median["mean"],
        "tvd_median_ci": median["ci"],
        "close_rate": close / len(exact) if len(exact) else None,  # the graded criterion
        "close_ci": list(binomial_interval(close, len(exact))) if len(exact) else None,
        "tvd_sampled": sampled["mean"],
        "tvd_sampled_ci": sampled["ci"],
        "kl": kl_ci["mean"],
        "kl_ci": kl_ci["ci"],
        "kl_infinite_share": float(np.isinf(scored).mean()) if len(scored) else None,
        **diagnostics(d, settings, key),
        "valid_rate": valid["mean"],
        "valid_rate_ci": valid["ci"],
        "parsed_rate": _finite_mean(d.parsed_rate),
        "sampled_records": len(tested),
        "gof_pass_rate": passes / len(tested) if len(tested) else None,
        "gof_pass_ci": list(binomial_interval(passes, len(tested))) if len(tested) else None,
        "gof_pass_valid_rate": passes_valid / len(tested) if len(tested) else None,
        "gof_pass_valid_ci": list(binomial_interval(passes_valid, len(tested)))
        if len(tested)
        else None,
        "gof_tested": int(np.isfinite(d.gof_p_valid.to_numpy(float)).sum()),
    }
    agreement = d.agreement_p.to_numpy(float)
    tested, rejected = int(np.isfinite(agreement).sum()), int((agreement < settings.alpha).sum())
    out["agreement_reject_rate"] = rejected / tested if tested else None
    out["agreement_reject_ci"] = list(binomial_interval(rejected, tested)) if tested else None
    acc = d.accuracy.to_numpy(float)
    if np.isfinite(acc).any():
        out["accuracy"] = _finite_mean(d.accuracy)
    return out


DIAGNOSTICS = ("support_mass", "tvd_conditional", "kl_conditional", "entropy_ratio")


def diagnostics(d: pd.DataFrame, settings: EvaluateSection, key: tuple) -> dict[str, Any]:
    """The exact view's diagnostics, each a mean over the records that have it, with its CI:
    the support mass, and the distances given a valid answer (renormalised over the support)."""
    out: dict[str, Any] = {}
    for name in DIAGNOSTICS:
        m = mean_ci(d[name].to_numpy(float), settings, (*key, name))
        out |= {name: m["mean"], f"{name}_ci": m["ci"]}
    return out


def _finite_mean(values: pd.Series) -> float | None:
    """Mean over the records where the values are finite; None if none."""
    ok = np.isfinite(values.to_numpy(float))
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


REFERENCES_FIRST = ("base", "ce_multisample")  # the order pairs are named in: b - a, a first
PAIRED_METRICS = ("tvd", "kl", "valid_rate")  # KL: records where both are finite


def paired(df: pd.DataFrame, settings: EvaluateSection) -> dict[str, Any]:
    """Per split, every pair of variants on the same records at T = 1: the mean per-record
    difference (the later variant minus the earlier, base and ce_multisample first) of
    full-space TVD, of full-space KL (over the records where both are finite: `n` says how
    many) and of validity, with a bootstrap CI over records. Pairing removes the records'
    difficulty, which dominates each variant's own CI, so two overlapping CIs can still differ
    here; "closest" is said only where these CIs say it."""
    out: dict[str, Any] = {}
    for split, d in df[df.temperature == 1.0].groupby("split", sort=True):
        wide = {m: d.pivot(index="id", columns="variant", values=m) for m in PAIRED_METRICS}
        present = list(wide["tvd"].columns)
        order = [v for v in REFERENCES_FIRST if v in present] + sorted(
            v for v in present if v not in REFERENCES_FIRST
        )
        for i, ref in enumerate(order):
            for v in order[i + 1 :]:
                out.setdefault(split, {})[f"{v} - {ref}"] = {
                    m: mean_ci(
                        (w[v] - w[ref]).to_numpy(float), settings, ("paired", split, v, ref, m)
                    )
                    for m, w in wide.items()
                }
    return out


def primary(df: pd.DataFrame, settings: EvaluateSection) -> dict[str, Any]:
    """The primary teaching comparison (`evaluate.primary`: variant - reference), per split
    at T = 1: the mean per-record difference in exact full-space TVD with its bootstrap CI, a
    paired sign-flip permutation p-value, and Holm's adjustment over the splits. Every other
    comparison in the report is exploratory."""
    from entropy_lab.stats.inference import adjust

    variant, reference = settings.primary
    out: dict[str, Any] = {}
    d = df[(df.temperature == 1.0) & df.variant.isin(settings.primary)]
    for split, g in d.groupby("split", sort=True):
        wide = g.pivot(index="id", columns="variant", values="tvd")
        if not {variant, reference} <= set(wide.columns):
            continue
        diff = (wide[variant] - wide[reference]).to_numpy(float)
        diff = diff[np.isfinite(diff)]
        rng = keyed_rng(settings.seed, "primary", split)
        out[split] = mean_ci(diff, settings, ("primary", split)) | {
            "p": sign_flip_p(diff, settings.bootstrap, rng)}  # fmt: skip
    adjusted = adjust(np.array([x["p"] for x in out.values()]), "holm")
    for x, p in zip(out.values(), adjusted, strict=True):
        x["p_holm"] = float(p)
        x["verdict"] = ("lower" if x["mean"] < 0 else "higher") if p < settings.alpha else \
            "no difference shown"  # fmt: skip
    return {"variant": variant, "reference": reference, "splits": out}


def sign_flip_p(diff: np.ndarray, n: int, rng: np.random.Generator) -> float:
    """Two-sided paired permutation p-value of a mean difference (signs flipped at random)."""
    if len(diff) == 0 or not np.any(diff):
        return 1.0
    signs = rng.choice([-1.0, 1.0], size=(n, len(diff)))
    null = np.abs((signs * diff).mean(axis=1))
    return float((1 + (null >= abs(diff.mean()) - 1e-12).sum()) / (n + 1))


def transfer(df: pd.DataFrame, settings: EvaluateSection) -> dict[str, Any]:
    """Per held-out family (test_family, T = 1): each trained variant's exact TVD minus base's,
    and the primary comparison's difference, paired over the family's records."""
    out: dict[str, Any] = {}
    d = df[(df.temperature == 1.0) & (df.split == "test_family")]
    for family, g in d.groupby("family", sort=True):
        wide = g.pivot(index="id", columns="variant", values="tvd")
        pairs = [(v, "base") for v in wide.columns if v != "base"]
        if set(settings.primary) <= set(wide.columns):
            pairs.append(tuple(settings.primary))
        out[family] = {
            f"{a} - {b}": mean_ci((wide[a] - wide[b]).to_numpy(float), settings,
                                  ("transfer", family, a, b))
            for a, b in pairs
        }  # fmt: skip
    return out


def summarize(rows: list[dict[str, Any]], settings: EvaluateSection) -> dict[str, Any]:
    """At temperature 1, per variant and split and per family within, and against answer
    length; each variant against the references on the same records; and the temperature
    sweep, per variant and temperature, over the validation records."""
    import pandas as pd

    df = pd.DataFrame(rows)
    out: dict[str, Any] = {"variants": {}, "temperature": {}, "paired": paired(df, settings),
                           "primary": primary(df, settings), "transfer": transfer(df, settings)}  # fmt: skip
    for (variant, split), d in df[df.temperature == 1.0].groupby(["variant", "split"], sort=True):
        # CIs keyed by the data (variant, split, temperature): the sweep's T = 1 cell is this one
        entry = group_summary(d, settings, (variant, split, 1.0))
        entry["families"] = {
            f: group_summary(g, settings, (variant, split, 1.0, f))
            for f, g in d.groupby("family", sort=True)
        }
        entry["answer_length"] = by_answer_length(d)
        out["variants"].setdefault(variant, {})[split] = entry
    at_one = df[df.temperature == 1.0].groupby(["split", "family"]).id.nunique()
    out["short"] = {
        s: {f: int(k) for (s2, f), k in at_one.items()
            if s2 == s and k < getattr(settings.records_per_family, s)}
        for s in SPLITS if s in set(df.split)
    }  # fmt: skip
    sweep = df[df.split == SWEEP_SPLIT]
    for (variant, temp), d in sweep.groupby(["variant", "temperature"], sort=True):
        out["temperature"].setdefault(variant, {})[f"{temp:g}"] = group_summary(
            d, settings, (variant, SWEEP_SPLIT, float(temp))
        )
    return out


def evaluation_records(ds, settings: EvaluateSection) -> list[dict[str, Any]]:
    """Each split's first `records_per_family` records of every family, in split order (all
    of a family's records where it has fewer). The tasks stage puts a few records of every
    family of a split's pool first, so every split holds each of its families."""
    from collections import Counter

    out = []
    for split in SPLITS:
        quota, taken = getattr(settings.records_per_family, split), Counter()
        for r in ds[split]:
            if taken[r["family"]] < quota:
                taken[r["family"]] += 1
                out.append(r)
    return out


def evaluate_variant(
    model,
    tokenizer,
    records,
    families: dict[str, Family],
    params,
    key: str,
    variant: str,
    sampled: bool = True,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(rows, seeded rows) of one variant (`base` or an adapter): the entropy-driven mode's
    greedy answers where `seeded` is trained (for `base` and `seeded`), and the exact and
    sampled views at every temperature (every split at T = 1, validation in the sweep);
    `sampled=False` (an untaught model, `evaluate.untaught`): the exact view at T = 1 alone."""
    from entropy_lab.evaluation.seeded import evaluate_seeded

    settings, training = params.evaluate, params.training
    rows, seeded_rows = [], []
    if sampled and variant in ("base", "seeded") and "seeded" in training.variants:  # u given
        found = evaluate_seeded(
            model, tokenizer, records, families, settings, key, training.max_prompt_tokens
        )
        seeded_rows = [{"variant": variant} | r for r in found]
    if variant == "seeded":
        return rows, seeded_rows  # trained for prompts that carry u only
    sweep = [r for r in records if r["split"] == SWEEP_SPLIT]
    for temperature in sorted(settings.temperatures) if sampled else [1.0]:
        found = evaluate_records(
            model,
            tokenizer,
            records if temperature == 1.0 else sweep,
            families,
            settings,
            key,
            training.max_prompt_tokens,
            training.max_support_tokens,
            temperature,
            sampled,
        )
        rows += [{"variant": variant} | r for r in found]
        log.info("%s at temperature %g: %d records evaluated", key, temperature, len(found))
    return rows, seeded_rows
