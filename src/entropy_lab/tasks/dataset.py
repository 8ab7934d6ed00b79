"""The `tasks` stage: records -> a Hugging Face DatasetDict with an explicit schema and a card."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from entropy_lab.tasks import FAMILIES
from entropy_lab.tasks.builder import (
    SPLITS,
    Builder,
    TasksSection,
    apply_paraphrases,
    family_counts,
    records_fingerprint,
)

log = logging.getLogger(__name__)
OUT = Path("data/tasks")
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
    paraphraser, inputs = None, {}
    read = flatten(section, "tasks")
    if section.paraphrase.model:
        from entropy_lab.models import load_profile
        from entropy_lab.tasks.paraphrase import HFParaphraser

        model, tokenizer, resolved = load_profile(section.paraphrase.model, params.models)
        paraphraser = HFParaphraser(model, tokenizer, section.paraphrase.max_new_tokens)
        read |= flatten(params.models, "models")
        inputs["paraphrase_model"] = resolved.path
    records = build(section, paraphraser)
    with atomic_dir(out) as tmp:
        to_dataset_dict(records).save_to_disk(str(tmp))
        (tmp / "README.md").write_text(card(section, records))
        fingerprints = {s: records_fingerprint(r) for s, r in records.items()}
        manifest = build_manifest(
            "tasks",
            read,
            inputs,
            tmp,
            seeds={"tasks": section.seed},
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
