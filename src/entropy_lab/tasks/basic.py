"""Basic sampling (level 1-2): an integer from a range, an item from a list, a weighted choice."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from entropy_lab.tasks.base import Family, Target, normalise, parse_choice, parse_integer, pick
from entropy_lab.tasks.params import IntegerRangeConfig, ListItemConfig, WeightedChoiceConfig


def draw_words(rng: np.random.Generator, words: tuple[str, ...], n: int) -> list[str]:
    return [words[i] for i in rng.choice(len(words), size=n, replace=False)]


class IntegerRange(Family):
    name, category, level = "integer_range", "basic", 1
    Config = IntegerRangeConfig
    answer_format = "Answer with the number only."
    templates = (
        "[Pick|Choose|Select|Give me] a [random |][number|integer] [from|between] {low} [to|and] {high}[ inclusive|].",
        "[Generate|Produce] a [random|uniformly random] integer in the range {low} to {high}.",
        "I need a random whole number between {low} and {high}, [both ends included|inclusive].",
        "Think of a number from {low} to {high}, each equally likely.",
    )

    def instance(self, rng):
        low = int(rng.integers(self.config.low[0], self.config.low[1] + 1))
        return {"low": low, "high": low + int(rng.integers(1, self.config.max_width + 1))}

    def target(self, inst):
        values = range(inst["low"], inst["high"] + 1)
        return Target(tuple(map(str, values)), (Fraction(1, len(values)),) * len(values))

    def slots(self, inst):
        return {"low": str(inst["low"]), "high": str(inst["high"])}

    def parse(self, text, inst):
        n = parse_integer(text)
        return str(n) if n is not None and inst["low"] <= n <= inst["high"] else None


class ListItem(Family):
    name, category, level = "list_item", "basic", 1
    Config = ListItemConfig
    answer_format = "Answer with the item only."
    templates = (
        "[Pick|Choose|Select] one [item|word] at random from this list: {items}.",
        "From {items}, [choose|pick] one uniformly at random.",
        "Randomly select one of the following: {items}.",
        "Here are some options: {items}. Which one does a fair random draw give?",
    )

    def instance(self, rng):
        n = int(rng.integers(self.config.size[0], self.config.size[1] + 1))
        return {"items": draw_words(rng, self.words, n)}

    def target(self, inst):
        return normalise({w: Fraction(1) for w in inst["items"]})

    def slots(self, inst):
        return {"items": ", ".join(inst["items"])}

    def parse(self, text, inst):
        return parse_choice(text, inst["items"])


class WeightedChoice(ListItem):
    name, category, level = "weighted_choice", "basic", 2
    Config = WeightedChoiceConfig
    templates = (
        "[Pick|Choose] one item at random, with probability proportional to its weight: {items}.",
        "Make a weighted random choice among {items}.",
        "Sample one option according to these weights: {items}.",
        "Draw one of {items}, where each is chosen in proportion to its weight.",
    )

    def instance(self, rng):
        weights = pick(rng, self.config.weights)
        return {"items": draw_words(rng, self.words, len(weights)), "weights": list(weights)}

    def target(self, inst):
        return normalise(
            {w: Fraction(k) for w, k in zip(inst["items"], inst["weights"], strict=True)}
        )

    def slots(self, inst):
        pairs = zip(inst["items"], inst["weights"], strict=True)
        return {"items": ", ".join(f"{w} (weight {k})" for w, k in pairs)}
