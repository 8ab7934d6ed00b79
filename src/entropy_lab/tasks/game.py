"""Game mechanics (level 2-3): dice notation (3d6, 2d6+3), coin sequences, cards, spinners."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np

from entropy_lab.tasks.base import Family, Target, normalise, parse_choice, parse_integer, pick
from entropy_lab.tasks.basic import ListItem, draw_words
from entropy_lab.tasks.params import CardsConfig, CoinsConfig, DiceConfig, SpinnerConfig


def dice_sum_counts(n: int, sides: int) -> dict[int, int]:
    """Exact number of ways n dice with `sides` faces reach each total (repeated convolution)."""
    counts = np.ones(1, dtype=object)  # object dtype: exact Python integers
    for _ in range(n):
        counts = np.convolve(counts, np.ones(sides, dtype=object))
    return {n + i: int(c) for i, c in enumerate(counts)}


class Dice(Family):
    name, category, level = "dice", "game", 3
    Config = DiceConfig
    answer_format = "Answer with the total only."
    templates = (
        "Roll {notation} and [give|report|tell me] the total.",
        "[Simulate|Make] a roll of {notation}. What is the result?",
        "In dice notation, roll {notation} and add everything up.",
        "I'm playing a tabletop game: roll {notation} for me.",
    )

    def instance(self, rng):
        c = self.config
        return {
            "n": int(rng.integers(1, c.max_dice + 1)),
            "sides": pick(rng, c.sides),
            "modifier": pick(rng, c.modifiers),
        }

    def target(self, inst):
        counts = dice_sum_counts(inst["n"], inst["sides"])
        total = inst["sides"] ** inst["n"]
        return Target(
            tuple(str(s + inst["modifier"]) for s in counts),
            tuple(Fraction(c, total) for c in counts.values()),
        )

    def slots(self, inst):
        mod = inst["modifier"]
        return {"notation": f"{inst['n']}d{inst['sides']}" + (f"{mod:+d}" if mod else "")}

    def parse(self, text, inst):
        n = parse_integer(text)
        lo = inst["n"] + inst["modifier"]
        return str(n) if n is not None and lo <= n <= lo + inst["n"] * (inst["sides"] - 1) else None


class Coins(Family):
    name, category, level = "coins", "game", 3
    Config = CoinsConfig
    answer_format = "Answer with one letter per flip, H or T, e.g. HTH."
    templates = (
        "Flip a coin that lands heads with probability {p} {times} and report the sequence.",
        "[Toss|Flip] a biased coin (P(heads) = {p}) {times}. What sequence do you get?",
        "A coin comes up heads {p} of the time. Flip it {times}.",
        "Simulate {flips} of a coin with heads probability {p}.",
    )

    def instance(self, rng):
        c = self.config
        return {
            "n": int(rng.integers(1, c.max_flips + 1)),
            "p": pick(rng, c.heads_probability),
        }

    def target(self, inst):
        p = Fraction(inst["p"])
        seqs = ["".join(s) for s in itertools.product("HT", repeat=inst["n"])]
        return Target(tuple(seqs), tuple(p ** s.count("H") * (1 - p) ** s.count("T") for s in seqs))

    def slots(self, inst):
        n = inst["n"]
        plural = "s" if n > 1 else ""
        return {"p": inst["p"], "times": f"{n} time{plural}", "flips": f"{n} flip{plural}"}

    def parse(self, text, inst):
        s = text.strip().removesuffix(".").strip().upper().replace(" ", "")
        return s if len(s) == inst["n"] and set(s) <= {"H", "T"} else None


RANKS = ("Ace", "2", "3", "4", "5", "6", "7", "8", "9", "10", "Jack", "Queen", "King")
SUITS = ("Hearts", "Diamonds", "Clubs", "Spades")
DECKS = {
    "full": [f"{r} of {s}" for s in SUITS for r in RANKS],
    "hearts": [f"{r} of Hearts" for r in RANKS],
    "faces": [f"{r} of {s}" for s in SUITS for r in ("Jack", "Queen", "King")],
    "aces": [f"Ace of {s}" for s in SUITS],
}
DECK_NAMES = {
    "full": "a standard 52-card deck",
    "hearts": "the thirteen hearts of a deck",
    "faces": "the twelve face cards (jacks, queens and kings)",
    "aces": "the four aces",
}


class Cards(Family):
    name, category, level = "cards", "game", 1
    Config = CardsConfig
    answer_format = "Answer with the card's name, e.g. Queen of Hearts."
    templates = (
        "Draw one card at random from {deck}.",
        "Shuffle {deck} well and turn over the top card. Which card is it?",
        "[Pick|Choose] a random card from {deck}.",
        "A card is dealt uniformly at random from {deck}. Name it.",
    )

    def instance(self, rng):
        return {"deck": pick(rng, self.config.decks)}

    def target(self, inst):
        return normalise({card: Fraction(1) for card in DECKS[inst["deck"]]})

    def slots(self, inst):
        return {"deck": DECK_NAMES[inst["deck"]]}

    def parse(self, text, inst):
        return parse_choice(text, DECKS[inst["deck"]])


class Spinner(ListItem):
    name, category, level = "spinner", "game", 2
    Config = SpinnerConfig
    answer_format = "Answer with the sector's name only."
    templates = (
        "A spinner has sectors {sectors}. Spin it once: where does it stop?",
        "Spin a wheel divided into {sectors}. Which sector comes up?",
        "[Give|Report] the result of one spin of a spinner with sectors {sectors}.",
        "A game spinner is split into {sectors}. Spin it.",
    )

    def instance(self, rng):
        angles = pick(rng, self.config.sectors)
        return {"items": draw_words(rng, self.words, len(angles)), "angles": list(angles)}

    def target(self, inst):
        return Target(tuple(inst["items"]), tuple(Fraction(a, 360) for a in inst["angles"]))

    def slots(self, inst):
        pairs = zip(inst["items"], inst["angles"], strict=True)
        return {"sectors": ", ".join(f"{w} ({a} degrees)" for w, a in pairs)}
