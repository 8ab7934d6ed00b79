"""Build the task dataset: records with exact targets, splits for generalisation, a card.

Splits:
  train, validation  seen families, seen templates (disjoint prompts)
  test_template      seen families, held-out templates (the last `heldout_templates` of each)
  test_family        held-out families, all their templates

Every record draws from its own generator, seeded by (seed, split, attempt), so a record
is reproducible from its own `seed` field. Near-duplicates (the same family and the same
prompt once case, punctuation and spacing are removed) are dropped across all splits, so
no evaluation prompt repeats a training prompt; the evaluation splits are built first, so
each holds every family of its pool, however few prompts a family has.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable
from fractions import Fraction
from typing import Any

import numpy as np

from entropy_lab.errors import UserError
from entropy_lab.tasks.base import Family, Target, pick
from entropy_lab.tasks.families import instantiate
from entropy_lab.tasks.grammar import expand, normalise
from entropy_lab.tasks.params import TasksSection

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test_template", "test_family")
MAX_ATTEMPTS_PER_RECORD = 20


def exact_string(p: Fraction | float) -> str:
    """'p/q' for an exact probability, '' for a float one."""
    return f"{p.numerator}/{p.denominator}" if isinstance(p, Fraction) else ""


def target_columns(t: Target) -> dict[str, Any]:
    return {
        "support": list(t.support),
        "probs": [float(p) for p in t.probs],
        "probs_exact": [exact_string(p) for p in t.probs],
        "marginals": [
            {
                "label": m.label,
                "values": list(m.values),
                "probs": [float(p) for p in m.probs],
                "probs_exact": [exact_string(p) for p in m.probs],
            }
            for m in t.marginals
        ],
    }


class Builder:
    """Generates the records of every split."""

    def __init__(self, section: TasksSection):
        self.section = section
        self.families = instantiate(section)
        self.seen_keys: set[tuple[str, str]] = set()
        self.attempts: dict[str, int] = {}  # per split: attempts so far (each seeds a record)

    def templates(self, family: Family, split: str) -> list[tuple[int, str]]:
        indexed = list(enumerate(family.templates))
        h = self.section.heldout_templates
        if split == "test_template":
            return indexed[-h:]
        return indexed if split == "test_family" else indexed[:-h]

    def pool(self, split: str) -> list[str]:
        held = set(self.section.heldout_families)
        return [n for n in self.families if (n in held) == (split == "test_family")]

    def record(self, split: str, attempt: int, name: str) -> dict[str, Any] | None:
        family = self.families[name]
        seed = [self.section.seed, SPLITS.index(split), attempt]
        rng = np.random.default_rng(seed)
        inst = family.instance(rng)
        templates = self.templates(family, split)
        t_index, template = pick(rng, templates)
        body = expand(template, family.slots(inst), rng)
        key = (name, normalise(body))
        if key in self.seen_keys:
            return None
        self.seen_keys.add(key)
        hint = family.format_hint(inst)
        return {
            "split": split,
            "family": name,
            "category": family.category,
            "level": family.level,
            "template_id": f"{name}/{t_index}",
            "prompt": f"{body} {hint}",
            "answer_format": hint,
            "instance": json.dumps(inst, sort_keys=True),
            **target_columns(family.target(inst)),
            "draws": family.sample(inst, rng, self.section.draws) if self.section.draws else [],
            "seed": seed,
            "paraphrased": False,
            "seeded_u": [],  # filled from the entropy pool by the tasks stage
            "seeded_answers": [],
        }

    def split(
        self, split: str, n: int, out: list | None = None, quota: int | None = None
    ) -> list[dict[str, Any]]:
        """Records of `split` (appended to `out`, continuing its attempts) until it holds `n`,
        or, with `quota`, until each family of its pool holds `quota` (as far as the family's
        distinct prompts allow)."""
        pool = self.pool(split)
        out = [] if out is None else out
        attempt = self.attempts.get(split, 0)
        start = attempt
        have = {f: sum(r["family"] == f for r in out) for f in pool}

        def done() -> bool:
            return all(v >= quota for v in have.values()) if quota else len(out) >= n

        while not done():
            if attempt - start >= MAX_ATTEMPTS_PER_RECORD * max(n, 1):
                if quota:
                    break  # a family out of distinct prompts: `build` names it if it has none
                raise UserError(
                    f"tasks.counts.{split} = {n}: only {len(out)} distinct prompts after "
                    f"{attempt} attempts; lower the count or widen the families' params"
                )
            name = pool[attempt % len(pool)]
            attempt += 1
            if quota and have[name] >= quota:
                continue
            rec = self.record(split, attempt - 1, name)
            if rec is not None:
                rec["id"] = f"{split}/{len(out):06d}"
                out.append(rec)
                have[name] += 1
        self.attempts[split] = attempt
        return out

    def build(self) -> dict[str, list[dict[str, Any]]]:
        """Every split. Each evaluation split first takes `eval_per_family` records of every
        family of its pool, before train takes its prompts; then train, then the rest of each
        evaluation split. An evaluation split that lacks a family is one line."""
        counts, q = self.section.counts, self.section.eval_per_family
        out: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
        for split in SPLITS[1:]:
            self.split(split, q * len(self.pool(split)), out[split], quota=q)
        for split in SPLITS:
            self.split(split, getattr(counts, split), out[split])
        for split in SPLITS[1:]:
            missing = sorted(set(self.pool(split)) - {r["family"] for r in out[split]})
            if missing:
                raise UserError(f"tasks.counts.{split}: no distinct prompt of {', '.join(missing)} "
                                "left for it; raise the families' variety")  # fmt: skip
        return out


# --- paraphrasing -------------------------------------------------------------------------

NUMBER = r"\d+(?:\.\d+)?(?:/\d+)?"


def entities(record: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(words, numbers) a paraphrase must keep: list items and every number in the prompt."""
    inst = json.loads(record["instance"])
    words = [w for w in inst.get("items", []) if isinstance(w, str)]
    return words, sorted(re.findall(NUMBER, record["prompt"]))


def keeps_entities(record: dict[str, Any], paraphrase: str) -> bool:
    """True iff every item survives verbatim and the numbers are exactly those of the original."""
    words, numbers = entities(record)
    if sorted(re.findall(NUMBER, paraphrase)) != numbers:
        return False
    return all(re.search(rf"\b{re.escape(w)}\b", paraphrase, re.IGNORECASE) for w in words)


Paraphraser = Callable[[list[str]], list[str]]


def apply_paraphrases(records: list[dict[str, Any]], paraphrase: Paraphraser) -> int:
    """Replace a record's prompt by its paraphrase where the paraphrase keeps every entity."""
    bodies = [r["prompt"].removesuffix(" " + r["answer_format"]) for r in records]
    kept = 0
    for record, body, new in zip(records, bodies, paraphrase(bodies), strict=True):
        new = " ".join(new.split())
        if new and new != body and keeps_entities({**record, "prompt": body}, new):
            record["prompt"] = f"{new} {record['answer_format']}"
            record["paraphrased"] = True
            kept += 1
    return kept


def family_counts(records: Iterable[dict[str, Any]]) -> dict[str, int]:
    return dict(sorted(Counter(r["family"] for r in records).items()))


def records_fingerprint(records: list[dict[str, Any]]) -> str:
    """A content hash of a split: identical across runs and machines for the same params."""
    h = hashlib.sha256()
    for r in records:
        h.update(json.dumps(r, sort_keys=True, ensure_ascii=False).encode())
    return h.hexdigest()[:16]
