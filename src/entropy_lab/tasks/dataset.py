"""The `tasks` stage: records -> a Hugging Face DatasetDict with an explicit schema and a card."""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np

from entropy_lab.entropy.layout import (
    EVAL_SPLITS,
    SEEDED_EVAL,
    SEEDED_TRAIN,
    seeded_experiments,
    seeded_segments,
)
from entropy_lab.entropy.pool import (
    allocate,
)
from entropy_lab.tasks.builder import (
    SPLITS,
    Builder,
    apply_paraphrases,
    records_fingerprint,
)
from entropy_lab.tasks.families import FAMILIES, instantiate
from entropy_lab.tasks.params import TasksSection
from entropy_lab.tasks.seeded import inverse_cdf, u_from_word, u_text

log = logging.getLogger(__name__)


def features():
    from datasets import Features, List, Value

    strings = List(Value("string"))
    return Features(
        {
            "id": Value("string"),
            "split": Value("string"),
            "family": Value("string"),
            "category": Value("string"),
            "level": Value("int8"),
            "template_id": Value("string"),
            "prompt": Value("string"),
            "answer_format": Value("string"),
            "instance": Value("string"),  # the family's parameters, JSON
            "support": strings,
            "probs": List(Value("float64")),
            "probs_exact": strings,  # "p/q", or "" where the probability is irrational
            "marginals": List(
                {
                    "label": Value("string"),
                    "values": strings,
                    "probs": List(Value("float64")),
                    "probs_exact": strings,
                }
            ),
            "draws": strings,
            "seed": List(Value("int64")),
            "paraphrased": Value("bool"),
            "seeded_u": strings,  # the entropy-driven mode: u's from the pool, as in the prompt
            "seeded_answers": strings,  # the target's inverse CDF at each u
        }
    )


def to_dataset_dict(records: dict[str, list[dict[str, Any]]]):
    """A DatasetDict whose fingerprints are content hashes (datasets' own are random here)."""
    from datasets import Dataset, DatasetDict, NamedSplit

    feats = features()
    out = {}
    for split, rows in records.items():
        ds = Dataset.from_list(rows, features=feats)
        out[split] = Dataset(
            ds.data, info=ds.info, split=NamedSplit(split), fingerprint=records_fingerprint(rows)
        )
    return DatasetDict(out)


def card(section: TasksSection, records: dict[str, list[dict[str, Any]]]) -> str:
    held = set(section.heldout_families)
    lines = [
        "# Randomness tasks",
        "",
        "Procedurally generated prompts that ask for a random draw, each with its exact target",
        "distribution. Built by `entropy-lab tasks` (stage `tasks`) from `params.yaml` `tasks`",
        f"(seed {section.seed}); every record carries the seed of its own generator.",
        "",
        "Targets are exact: enumeration or closed forms, with `probs_exact` as fractions where",
        "the probability is rational. Poisson, normal and exponential targets are float64 closed",
        "forms on a support truncated at the stated tail mass and renormalised over it.",
        "Passwords, UUIDs and lottery lines have `marginals` (exact, per position) instead of a",
        "support; a strict parser decides validity.",
        "",
        "| split | records | fingerprint |",
        "|---|---|---|",
        *(f"| {s} | {len(records[s])} | `{records_fingerprint(records[s])}` |" for s in SPLITS),
        "",
        "| family | category | level | templates | split |",
        "|---|---|---|---|---|",
    ]
    for name in section.enabled():
        fam = FAMILIES[name]
        where = "test_family (held out)" if name in held else "train / validation / test_template"
        lines.append(f"| {name} | {fam.category} | {fam.level} | {len(fam.templates)} | {where} |")
    lines += [
        "",
        f"The last {section.heldout_templates} template(s) of each seen family appear only in",
        "`test_template`. Near-duplicate prompts (same family, same text after removing case,",
        "punctuation and spacing) are dropped across all splits.",
        "",
    ]
    return "\n".join(lines)


def add_seeded(records: dict[str, list[dict[str, Any]]], section: TasksSection, pool) -> list:
    """Give each record with an enumerable support (all of train, the first `eval_records` of
    each evaluation split) its pool-drawn u's and their answers, the target's inverse CDF at
    u; returns the pool ranges read, for the ledger."""
    s, families = section.seeded, instantiate(section)
    layout, segments = seeded_experiments(section), seeded_segments(section, pool)
    jobs = [(SEEDED_TRAIN, i, r, s.train_draws) for i, r in enumerate(records["train"])]
    for k, split in enumerate(EVAL_SPLITS):
        first = records[split][: s.eval_records]
        jobs += [
            (SEEDED_EVAL, k * s.eval_records + i, r, s.eval_draws) for i, r in enumerate(first)
        ]
    ranges = []
    for experiment, index, r, _ in jobs:
        if not r["support"]:
            continue
        where = allocate(layout, segments, experiment, index, 0)
        us = [u_from_word(int(w), s.digits) for w in np.frombuffer(pool.read(where), "<u4")]
        target = families[r["family"]].target(json.loads(r["instance"]))
        r["seeded_u"] = [u_text(u, s.digits) for u in us]
        r["seeded_answers"] = [inverse_cdf(target, u) for u in us]
        ranges.append(where)
    return ranges


def build(section: TasksSection, paraphraser=None) -> dict[str, list[dict[str, Any]]]:
    records = Builder(section).build()
    if paraphraser is not None:
        kept = apply_paraphrases(records["train"], paraphraser)
        log.info("paraphrases kept: %d of %d train prompts", kept, len(records["train"]))
    return records
