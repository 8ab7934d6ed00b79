"""Combinatorial (level 2): shuffles, k of n without replacement (unordered and ordered)."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction
from typing import Annotated

from pydantic import Field, model_validator

from entropy_lab.schema import PositiveInt, Section, bad_value
from entropy_lab.tasks.base import Family, Target, check_n_k, parse_choice, parse_list, pick
from entropy_lab.tasks.basic import draw_words

MAX_OUTCOMES = 720  # 6! : beyond this a support is too large to score exactly


class ShuffleConfig(Section):
    sizes: Annotated[list[Annotated[int, Field(ge=2, le=6)]], Field(min_length=1)]


class Shuffle(Family):
    name, category, level = "shuffle", "combinatorial", 2
    Config = ShuffleConfig
    answer_format = "Answer with all the items in your order, separated by commas."
    templates = (
        "[Shuffle|Randomly shuffle] this list: {items}.",
        "Put {items} in a [uniformly |]random order.",
        "Give a random permutation of {items}.",
        "Mix up the order of these items at random: {items}.",
    )

    def instance(self, rng):
        n = pick(rng, self.config.sizes)
        return {"items": draw_words(rng, self.words, n)}

    def target(self, inst):
        outcomes = [", ".join(p) for p in itertools.permutations(inst["items"])]
        return Target(tuple(outcomes), (Fraction(1, len(outcomes)),) * len(outcomes))

    def slots(self, inst):
        return {"items": ", ".join(inst["items"])}

    def parse(self, text, inst):
        picked = [parse_choice(p, inst["items"]) for p in parse_list(text)]
        if None in picked or sorted(picked) != sorted(inst["items"]):
            return None
        return ", ".join(picked)


class KOfNConfig(Section):
    pairs: Annotated[
        list[Annotated[list[PositiveInt], Field(min_length=2, max_length=2)]], Field(min_length=1)
    ]

    @model_validator(mode="after")
    def _k_le_n(self) -> KOfNConfig:
        check_n_k("pairs", self.pairs)
        for i, (n, k) in enumerate(self.pairs):
            if math.perm(n, k) > MAX_OUTCOMES:
                raise bad_value(f"pairs[{i}]", [n, k], f"more than {MAX_OUTCOMES} ordered outcomes")
        return self


class KOfN(Family):
    """k distinct items, order irrelevant: the canonical answer lists them in the prompt's order."""

    name, category, level = "k_of_n", "combinatorial", 2
    Config = KOfNConfig
    # the one canonical answer per subset, said in the prompt (as lottery lines say ascending)
    answer_format = "Answer with the chosen items in the list's order, separated by commas."
    ordered = False
    templates = (
        "[Pick|Choose|Select] {k} different items at random from: {items}.",
        "Draw {k} of these without replacement: {items}.",
        "From {items}, randomly choose {k} distinct ones.",
        "Sample {k} items without replacement from the list {items}.",
    )

    def instance(self, rng):
        n, k = pick(rng, self.config.pairs)
        return {"items": draw_words(rng, self.words, n), "k": k}

    def target(self, inst):
        pick = itertools.permutations if self.ordered else itertools.combinations
        outcomes = [", ".join(c) for c in pick(inst["items"], inst["k"])]
        return Target(tuple(outcomes), (Fraction(1, len(outcomes)),) * len(outcomes))

    def slots(self, inst):
        return {"items": ", ".join(inst["items"]), "k": str(inst["k"])}

    def parse(self, text, inst):
        picked = [parse_choice(p, inst["items"]) for p in parse_list(text)]
        if None in picked or len(picked) != inst["k"] or len(set(picked)) != inst["k"]:
            return None
        if not self.ordered:
            picked.sort(key=inst["items"].index)
        return ", ".join(picked)


class Permutation(KOfN):
    """k distinct items in the order drawn (k-permutations of n)."""

    name = "permutation"
    ordered = True
    answer_format = "Answer with the items in the order drawn, separated by commas."
    templates = (
        "Draw {k} items one after another, without replacement, from: {items}.",
        "Randomly pick a first, second[, and so on| and so on] up to {k} distinct items from {items}.",
        "Deal {k} of these in random order: {items}.",
        "Choose an ordered random sequence of {k} different items from {items}.",
    )
