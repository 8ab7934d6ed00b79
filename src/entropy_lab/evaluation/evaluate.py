"""The `evaluate@<model>` stage: the base model and every trained adapter, on seen and
held-out families and templates, in two views.

- Exact: the model's distribution over each record's support by teacher forcing
  (`training.scoring.exact_distributions`), with TVD, KL(target || model), the entropy
  ratio and the mass the model puts on valid answers. No sampling noise.
- Empirical: K answers sampled from the model (temperature 1, no truncation, one keyed
  uniform stream per answer): format validity, chi-square and G-tests against the target,
  KS for ordinal answers, TVD among valid answers, and a chi-square of the sampled cells
  (support + invalid) against the exact view, which should hold at rate 1 - alpha.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from entropy_lab.errors import UserError
from entropy_lab.evaluation import distribution as dist
from entropy_lab.evaluation.params import EvaluateSection
from entropy_lab.stats.inference import keyed_rng

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

EVAL_DIR = Path("data/eval")
SPLITS = ("validation", "test_template", "test_family")  # seen; held-out template; held-out family


def stream_key(model_name: str, variant: str) -> str:
    """What keys a variant's sampled answers and KS simulations (with the record id)."""
    return f"{model_name}/{variant}"


def is_ordinal(support: list[str]) -> bool:
    try:
        [float(a) for a in support]
    except ValueError:
        return False
    return True


def sample_answers(model, tokenizer, records, e: EvaluateSection, key: str, max_prompt: int):
    """K sampled answer texts per record (None where the model did not stop within the
    longest answer + 1 tokens)."""
    from entropy_lab.generation.sampler import Sampling, prng_uniforms, sample_streams
    from entropy_lab.models import prompt_ids
    from entropy_lab.training.scoring import answer_ids

    out = []
    for r in records:
        longest = max(map(len, answer_ids(tokenizer, r["support"])))
        s = Sampling(1.0, 0, 1.0, longest + 1)
        prompt = prompt_ids(tokenizer, r["prompt"], max_prompt, suffix="\nAnswer: ")
        texts: list[str | None] = []
        for start in range(0, e.samples, e.batch_size):
            n = min(e.batch_size, e.samples - start)
            keys = (f"{e.seed}/{key}/{r['id']}/{start + j}" for j in range(n))
            u = np.stack([prng_uniforms(k, s.max_new_tokens) for k in keys])
            for g in sample_streams(model, tokenizer, [prompt] * n, u, s):
                texts.append(tokenizer.decode(g.token_ids) if g.stopped else None)
        out.append(texts)
    return out


def evaluate_records(
    model,
    tokenizer,
    records,
    families,
    e: EvaluateSection,
    key: str,
    max_prompt: int,
    max_support: int,
) -> list[dict[str, Any]]:
    """One row per scorable record: both views and their tests."""
    from entropy_lab.training.scoring import exact_distributions

    exact = exact_distributions(model, tokenizer, records, max_prompt, max_support)
    scored = [records[i] for i, *_ in exact]
    answers = sample_answers(model, tokenizer, scored, e, key, max_prompt)
    rows = []
    for (i, target, log_q, log_mass), texts in zip(exact, answers, strict=True):
        r = records[i]
        c, invalid = dist.counts(texts, r["support"])
        fam = families[r["family"]]
        inst = json.loads(r["instance"])
        stored = {
            "id": r["id"],
            "split": r["split"],
            "family": r["family"],
            "support": list(r["support"]),
            "target": target.double().tolist(),
            "model": log_q.double().exp().tolist(),
            "support_mass": float(log_mass.exp()),
            "counts": c.tolist(),
            "invalid": invalid,
            "parsed": sum(t is not None and fam.parse(t, inst) is not None for t in texts),
        }
        rows.append(stored | record_stats(stored, keyed_rng(e.seed, "ks", key, r["id"])))
    return rows


def record_stats(r: dict[str, Any], ks_rng: np.random.Generator) -> dict[str, Any]:
    """Every statistic of one record, from its stored distributions and counts alone (so
    `verify` can recompute them without a model)."""
    p, q, mass = np.asarray(r["target"]), np.asarray(r["model"]), r["support_mass"]
    c, invalid = np.asarray(r["counts"], dtype=np.int64), r["invalid"]
    valid, samples = int(c.sum()), int(c.sum()) + invalid
    h_p = dist.entropy(p)
    row = {
        "support_size": len(p),
        "tvd": dist.tvd(p, q),
        "kl": dist.kl(p, q),
        "entropy_ratio": dist.entropy(q) / h_p if h_p > 0 else float("nan"),
        "samples": samples,
        "valid": valid,
        "format_valid": r["parsed"] / samples,
        # exact vs empirical: sampled cells (support + invalid) against the exact model
        "agreement_p": dist.gof_p(np.r_[c, invalid], np.r_[q * mass, max(0.0, 1 - mass)]),
        "tvd_empirical": dist.tvd(p, c / valid) if valid else float("nan"),
        "chi2_p": dist.gof_p(c, p) if valid else float("nan"),
        "g_p": dist.gof_p(c, p, "log-likelihood") if valid else float("nan"),
        "ks_d": float("nan"),
        "ks_p": float("nan"),
    }
    if valid and is_ordinal(r["support"]):
        values = np.array(r["support"], float)
        row["ks_d"], row["ks_p"] = dist.ks_discrete(c, values, p, 999, ks_rng)
    return row


def rescore(records: pd.DataFrame, e: EvaluateSection, model_name: str) -> list[dict[str, Any]]:
    """`records.parquet` rows with every statistic recomputed from the stored columns."""
    rows = []
    for r in records.to_dict("records"):
        rng = keyed_rng(e.seed, "ks", stream_key(model_name, r["variant"]), r["id"])
        rows.append(r | record_stats(r, rng))
    return rows


def summarize(rows: list[dict[str, Any]], e: EvaluateSection) -> dict[str, Any]:
    """Per variant and split, and per variant, split and family: means with bootstrap CIs."""
    import pandas as pd
    from scipy import stats

    df = pd.DataFrame(rows)

    def block(d: pd.DataFrame, key: tuple) -> dict[str, Any]:
        tv = d.tvd.to_numpy()
        if len(tv) > 1 and np.ptp(tv) > 0:
            ci = stats.bootstrap(
                (tv,), np.mean, n_resamples=e.bootstrap, rng=keyed_rng(e.seed, "ci", *key)
            )
            lo, hi = float(ci.confidence_interval.low), float(ci.confidence_interval.high)
        else:
            lo = hi = float(tv.mean())
        agree = d.agreement_p.to_numpy()
        return {
            "records": len(d),
            "tvd": float(tv.mean()),
            "tvd_ci": [lo, hi],
            "kl": float(d.kl.mean()),
            "entropy_ratio": float(d.entropy_ratio.mean()),
            "support_mass": float(d.support_mass.mean()),
            "valid_rate": float(d.valid.sum() / d.samples.sum()),
            "format_valid": float(d.format_valid.mean()),
            "agreement_reject_rate": float(np.mean(agree < e.alpha)),
        }

    out: dict[str, Any] = {}
    for (variant, split), d in df.groupby(["variant", "split"], sort=True):
        entry = block(d, (variant, split))
        entry["families"] = {
            f: block(g, (variant, split, f)) for f, g in d.groupby("family", sort=True)
        }
        out.setdefault(variant, {})[split] = entry
    return out


def run_stage(params, model_name: str, root: Path = Path(".")) -> None:
    """Stage `evaluate@<model>`: base model and each adapter in training.variants."""
    import pandas as pd
    from datasets import load_from_disk
    from peft import PeftModel

    from entropy_lab.config import flatten
    from entropy_lab.models import load_profile
    from entropy_lab.provenance import MANIFEST, atomic_dir, build_manifest, json_safe, write_json

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
    rows = []

    def run(m, variant: str) -> None:
        key = stream_key(model_name, variant)
        found = evaluate_records(
            m, tokenizer, records, families, e, key, t.max_prompt_tokens, t.max_support_tokens
        )
        rows.extend({"variant": variant} | r for r in found)
        log.info("%s: %d records evaluated", key, len(found))

    run(model, "base")
    for v, path in adapters.items():
        peft = PeftModel.from_pretrained(model, path, is_trainable=False)
        run(peft.eval(), v)
        model = peft.unload()

    read = flatten(e, "evaluate") | {
        "training.variants": t.variants,
        "training.max_prompt_tokens": t.max_prompt_tokens,
        "training.max_support_tokens": t.max_support_tokens,
    }
    inputs = {"tasks": tasks_dir, "base_model": resolved.path} | {
        f"adapter/{v}": p for v, p in adapters.items()
    }
    with atomic_dir(root / EVAL_DIR / model_name) as tmp:
        pd.DataFrame(rows).to_parquet(tmp / "records.parquet", index=False)
        write_json(
            tmp / MANIFEST,
            build_manifest("evaluate", read, inputs, tmp, seeds={"evaluate": e.seed}),
        )
    write_json(
        root / "reports" / "eval" / model_name / "metrics.json", json_safe(summarize(rows, e))
    )
