"""Contextual tasks (level 4): answers that must be deterministic, and structured random strings.

Passwords, UUIDs and lottery lines have supports far too large to enumerate; their targets
are exact per-position marginals (counted, not sampled) plus a strict validity check.
"""

from __future__ import annotations

import math
import re
import string
import uuid
from fractions import Fraction

from entropy_lab.tasks.base import (
    Family,
    Marginal,
    Target,
    parse_choice,
    parse_integer,
    parse_list,
    pick,
)
from entropy_lab.tasks.params import DeterministicConfig, LotteryConfig, PasswordConfig, UUIDConfig


class Deterministic(Family):
    """Randomness vocabulary around a draw with one possible outcome, readable from the prompt
    (a die with the same number on every face, a list of one item): when not to be random,
    without arithmetic. The target is a point mass."""

    name, category, level = "deterministic", "contextual", 4
    Config = DeterministicConfig
    answer_format = "Answer with the outcome only."
    templates = (
        "[Draw|Pick] one outcome at random from {source}.",
        "Randomness cannot change this one: sample once from {source}.",
        "[Simulate|Make] a random draw from {source}. What comes out?",
        "What does a fair random draw from {source} give?",
    )

    def instance(self, rng):
        if rng.integers(2):
            return {"items": [pick(rng, self.words)]}  # "items": paraphrases must keep it
        low, high = self.config.values
        return {"value": int(rng.integers(low, high + 1))}

    def answer(self, inst) -> str:
        return inst["items"][0] if "items" in inst else str(inst["value"])

    def target(self, inst):
        return Target((self.answer(inst),), (Fraction(1),))

    def slots(self, inst):
        if "items" in inst:
            return {"source": f"a list with one item: {inst['items'][0]}"}
        # one number in the prompt: the answer cannot be confused with a die's size
        return {"source": f"a die with {inst['value']} on every face"}

    def format_hint(self, inst):
        return "Answer with the item only." if "items" in inst else "Answer with the number only."

    def parse(self, text, inst):
        if "items" in inst:
            return parse_choice(text, inst["items"])
        n = parse_integer(text)
        return None if n is None else str(n)


PASSWORD_ALPHABET = string.ascii_lowercase + string.digits


class Password(Family):
    """Lowercase letters and digits, at least one digit, uniform over all valid strings."""

    name, category, level = "password", "contextual", 4
    Config = PasswordConfig
    answer_format = "Answer with the password only."
    templates = (
        "Generate a random {n}-character password using lowercase letters and digits, with at least one digit.",
        "Make up a password of length {n}: only a-z and 0-9, and it must contain a digit. Every valid one equally likely.",
        "Create a uniformly random {n}-character password (lowercase letters and digits, one digit at least).",
        "I need a fresh random password: {n} characters from a-z0-9, including at least one number.",
    )

    def instance(self, rng):
        return {"n": pick(rng, self.config.lengths)}

    def target(self, inst):
        n = inst["n"]
        total = 36**n - 26**n
        digit = Fraction(36 ** (n - 1), total)
        letter = Fraction(36 ** (n - 1) - 26 ** (n - 1), total)
        probs = tuple(letter if c.isalpha() else digit for c in PASSWORD_ALPHABET)
        return Target(
            marginals=tuple(
                Marginal(f"char[{i}]", tuple(PASSWORD_ALPHABET), probs) for i in range(n)
            )
        )

    def slots(self, inst):
        return {"n": str(inst["n"])}

    def parse(self, text, inst):
        s = text.strip()
        ok = re.fullmatch(rf"[a-z0-9]{{{inst['n']}}}", s) and any(c.isdigit() for c in s)
        return s if ok else None

    def longest_answer(self, inst):
        return "a" * (inst["n"] - 1) + "0"

    def sample(self, inst, rng, k):
        """Uniform over valid passwords: uniform strings, rejecting those without a digit."""
        out: list[str] = []
        while len(out) < k:
            s = "".join(PASSWORD_ALPHABET[i] for i in rng.integers(0, 36, inst["n"]))
            if any(c.isdigit() for c in s):
                out.append(s)
        return out


UUID4_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
HEX = tuple("0123456789abcdef")


class UUID4(Family):
    """Random (version 4) UUIDs: 122 random bits; nibble 12 is 4, nibble 16 is one of 8, 9, a, b."""

    name, category, level = "uuid", "contextual", 4
    Config = UUIDConfig
    answer_format = "Answer with the UUID only, in the usual 8-4-4-4-12 lowercase hex form."
    templates = (
        "Generate a random UUID (version 4).",
        "Give me a fresh random v4 UUID.",
        "I need a new random identifier in UUID4 format.",
        "Create a version-4 UUID, as random as a proper generator would make it.",
    )

    def instance(self, rng):
        return {}

    def target(self, inst):
        uniform = (Fraction(1, 16),) * 16
        variant = tuple(Fraction(1, 4) if h in "89ab" else Fraction(0) for h in HEX)
        version = tuple(Fraction(int(h == "4")) for h in HEX)
        nibbles = [version if i == 12 else variant if i == 16 else uniform for i in range(32)]
        return Target(marginals=tuple(Marginal(f"hex[{i}]", HEX, p) for i, p in enumerate(nibbles)))

    def slots(self, inst):
        return {}

    def parse(self, text, inst):
        s = text.strip().lower()
        return s if UUID4_PATTERN.fullmatch(s) else None

    def longest_answer(self, inst):
        return str(uuid.UUID(int=0, version=4))

    def positions(self, answer, inst):
        return list(answer.replace("-", ""))

    def sample(self, inst, rng, k):
        return [str(uuid.UUID(bytes=rng.bytes(16), version=4)) for _ in range(k)]


class Lottery(Family):
    """k distinct numbers from 1..n, reported in ascending order; marginals of each sorted position."""

    name, category, level = "lottery", "contextual", 4
    Config = LotteryConfig
    answer_format = "Answer with the numbers in ascending order, separated by commas."
    templates = (
        "[Pick|Choose|Give me] a random lottery line: {k} different numbers from 1 to {n}.",
        "[Generate|Draw] {k} distinct random numbers between 1 and {n} for a lottery [ticket|draw].",
        "Quick pick: [choose|select] {k} of the numbers 1-{n} at random, no repeats.",
        "Fill in a lottery ticket with {k} random numbers from 1 to {n}, all different.",
    )

    def instance(self, rng):
        n, k = pick(rng, self.config.games)
        return {"n": n, "k": k}

    def target(self, inst):
        n, k = inst["n"], inst["k"]
        values = tuple(map(str, range(1, n + 1)))
        total = math.comb(n, k)
        marginals = tuple(
            Marginal(
                f"sorted[{j}]",
                values,
                tuple(
                    Fraction(math.comb(x - 1, j) * math.comb(n - x, k - 1 - j), total)
                    for x in range(1, n + 1)
                ),
            )
            for j in range(k)
        )
        return Target(marginals=marginals)

    def slots(self, inst):
        return {"n": str(inst["n"]), "k": str(inst["k"])}

    def parse(self, text, inst):
        nums = [parse_integer(p) for p in parse_list(text)]
        if None in nums or len(nums) != inst["k"] or len(set(nums)) != inst["k"]:
            return None
        if not all(1 <= x <= inst["n"] for x in nums):
            return None
        return ", ".join(map(str, sorted(nums)))

    def longest_answer(self, inst):
        return ", ".join(map(str, range(inst["n"] - inst["k"] + 1, inst["n"] + 1)))

    def positions(self, answer, inst):
        return answer.split(", ")

    def sample(self, inst, rng, k):
        return [
            ", ".join(map(str, sorted(rng.choice(inst["n"], inst["k"], replace=False) + 1)))
            for _ in range(k)
        ]
