"""Template grammar: `[a|b|c]` picks one alternative, `{slot}` is filled from the instance.

    "[Pick|Choose] a [random |]number from {low} to {high}."

Alternatives do not nest. Every choice is drawn from the record's own generator.
"""

from __future__ import annotations

import re

import numpy as np

from entropy_lab.tasks.base import pick

ALTERNATIVES = re.compile(r"\[([^\[\]]*)\]")
SLOT = re.compile(r"\{(\w+)\}")


def expand(template: str, slots: dict[str, str], rng: np.random.Generator) -> str:
    """One surface form of `template`, with its slots filled."""

    def choose(match: re.Match) -> str:
        return pick(rng, match.group(1).split("|"))

    text = ALTERNATIVES.sub(choose, template)
    text = SLOT.sub(lambda m: slots[m.group(1)], text)
    return re.sub(r"\s+", " ", text).strip()


def surface_forms(template: str) -> int:
    """How many distinct texts the alternatives of `template` can produce."""
    n = 1
    for group in ALTERNATIVES.findall(template):
        n *= len(group.split("|"))
    return n


def normalise(text: str) -> str:
    """The key near-duplicates share: case, punctuation and spacing removed."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())
