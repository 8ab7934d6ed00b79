"""The `tasks` stage: records -> a Hugging Face DatasetDict with an explicit schema and a card."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from entropy_lab.entropy.pool import (
    POOL_DIR,
    POOL_FILE,
    Experiment,
    Pool,
    Segment,
    allocate,
    check_ledger,
    write_ledger,
)
from entropy_lab.errors import UserError
from entropy_lab.tasks import FAMILIES
from entropy_lab.tasks.builder import (
    SPLITS,
    Builder,
    TasksSection,
    apply_paraphrases,
    family_counts,
    records_fingerprint,
)
from entropy_lab.tasks.seeded import EVAL_SPLITS, WORD_BYTES, inverse_cdf, u_from_word, u_text

log = logging.getLogger(__name__)
OUT = Path("data/tasks")
SEEDED_TRAIN, SEEDED_EVAL = "tasks/seeded/train", "tasks/seeded/eval"
REPORTS = Path("reports/tasks")


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


def seeded_experiments(section: TasksSection) -> list[Experiment]:
    """The pool layout of the entropy-driven mode: u's for every train record, and for the
    first `eval_records` records of each evaluation split."""
    s = section.seeded
    return [
        Experiment(SEEDED_TRAIN, s.source, section.counts.train, 1, WORD_BYTES * s.train_draws),
        Experiment(
            SEEDED_EVAL, s.source, len(EVAL_SPLITS) * s.eval_records, 1, WORD_BYTES * s.eval_draws
        ),
    ]


def seeded_segments(section: TasksSection, pool) -> list[Segment]:
    """The part of the pool the seeded mode reads: the tail of its source's segment, as long as
    its layout needs. The A/B conditions lay out from the start of their source's segment, so
    the two meet only if a source is too small for both; the report checks every ledger
    together. A pool too small for the seeded mode alone fails here, before any work."""
    layout = seeded_experiments(section)
    need = sum(e.size for e in layout)
    seg = next((g for g in pool.segments if g.source == section.seeded.source), None)
    if seg is None or need > seg.end - seg.start:
        have = 0 if seg is None else seg.end - seg.start
        raise UserError(
            f"entropy pool source {section.seeded.source!r}: need {need} bytes, pool has {have}"
        )
    return [Segment(seg.source, seg.end - need, seg.end)]


def add_seeded(records: dict[str, list[dict[str, Any]]], section: TasksSection, pool) -> list:
    """Give each record with an enumerable support (all of train, the first `eval_records` of
    each evaluation split) its pool-drawn u's and their answers, the target's inverse CDF at
    u; returns the pool ranges read, for the ledger."""
    s, families = section.seeded, section.instantiate()
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


def run_stage(params, out: Path = OUT, reports: Path = REPORTS) -> None:
    """Stage `tasks`: build, save as a DatasetDict with card and manifest, write metrics."""
    from entropy_lab.provenance import MANIFEST, atomic_dir, build_manifest, write_json
    from entropy_lab.schema import flatten

    section: TasksSection = params.tasks
    pool = Pool.load(POOL_DIR)
    seeded_segments(section, pool)  # the pool is big enough
    paraphraser, inputs = None, {"pool": POOL_DIR / POOL_FILE}
    read = flatten(section, "tasks")
    if section.paraphrase.model:
        from entropy_lab.models import load_profile
        from entropy_lab.tasks.paraphrase import HFParaphraser

        model, tokenizer, resolved = load_profile(section.paraphrase.model, params.models)
        paraphraser = HFParaphraser(model, tokenizer, section.paraphrase.max_new_tokens)
        read |= flatten(params.models, "models")
        inputs["paraphrase_model"] = resolved.path
    records = build(section, paraphraser)
    ranges = add_seeded(records, section, pool)
    check_ledger(ranges)
    with atomic_dir(out) as tmp:
        to_dataset_dict(records).save_to_disk(str(tmp))
        (tmp / "README.md").write_text(card(section, records))
        write_ledger(tmp / "ledger.json", ranges)
        fingerprints = {s: records_fingerprint(r) for s, r in records.items()}
        manifest = build_manifest(
            "tasks",
            read,
            inputs,
            tmp,
            seeds={"tasks": section.seed},
            pool_ranges={
                "source": section.seeded.source,
                "pool_sha256": pool.sha256,
                "ranges": len(ranges),
                "bytes": sum(r.end - r.start for r in ranges),
            },
            extra={"fingerprints": fingerprints},
        )
        write_json(tmp / MANIFEST, manifest)
    write_json(
        reports / "metrics.json",
        {
            "records": {s: len(r) for s, r in records.items()},
            "families": {s: family_counts(r) for s, r in records.items()},
            "paraphrased": sum(r["paraphrased"] for r in records["train"]),
        },
    )
