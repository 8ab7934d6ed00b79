"""Combinatorial (level 2): shuffles, k of n without replacement (unordered and ordered)."""

from __future__ import annotations

import itertools
from fractions import Fraction

from entropy_lab.tasks.base import Family, Target, parse_choice, parse_list, pick
from entropy_lab.tasks.basic import draw_words
from entropy_lab.tasks.params import KOfNConfig, ShuffleConfig


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
