"""The one interface every task family implements, and the exact-distribution type.

A family draws an *instance* (its parameters, JSON-able) from a seeded generator, states
the exact target distribution of the answer for that instance (enumeration or closed
form, exact `Fraction`s where cheap), renders prompts from its template grammar, and
parses model text strictly into a canonical support element or `None` (invalid).
Families whose support is too large to enumerate (passwords, UUIDs, lottery lines) give
per-position marginals and a validity check instead.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, ClassVar, TypeVar

import numpy as np

from entropy_lab.schema import Section

Prob = Fraction | float
T = TypeVar("T")


@dataclass(frozen=True)
class Marginal:
    """P(value) at one position of a structured answer (e.g. character 3 of a password)."""

    label: str
    values: tuple[str, ...]
    probs: tuple[Prob, ...]


@dataclass(frozen=True)
class Target:
    """An exact distribution over canonical answers, or marginals when the support is huge."""

    support: tuple[str, ...] = ()
    probs: tuple[Prob, ...] = ()
    marginals: tuple[Marginal, ...] = field(default=())

    def as_dict(self) -> dict[str, Prob]:
        return dict(zip(self.support, self.probs, strict=True))


def normalise(weights: dict[str, Prob]) -> Target:
    """Target from non-negative weights, in the given order; exact if the weights are."""
    total = sum(weights.values())
    return Target(tuple(weights), tuple(w / total for w in weights.values()))


def pick(rng: np.random.Generator, options: Sequence[T]) -> T:
    """One of `options`, uniformly, from the record's own generator."""
    return options[int(rng.integers(len(options)))]


INTEGER = re.compile(r"[+-]?\d+")


def parse_integer(text: str) -> int | None:
    """The whole answer must be one integer (surrounding whitespace and a final period allowed)."""
    s = text.strip().removesuffix(".").strip()
    return int(s) if INTEGER.fullmatch(s) else None


def parse_choice(text: str, options: list[str] | tuple[str, ...]) -> str | None:
    """Exactly one of `options`, case-insensitive; returns the canonical spelling."""
    s = text.strip().removesuffix(".").strip().lower()
    for option in options:
        if s == option.lower():
            return option
    return None


def parse_list(text: str) -> list[str]:
    """A comma-separated answer, items stripped (empty items kept, so they fail membership)."""
    return [part.strip() for part in text.strip().removesuffix(".").split(",")]


class Family(ABC):
    """A task family. Subclasses set the class attributes and the four abstract methods."""

    name: ClassVar[str]
    category: ClassVar[str]  # basic | combinatorial | game | statistical | contextual
    level: ClassVar[int]  # curriculum level 1-4
    templates: ClassVar[tuple[str, ...]]  # grammar strings (see tasks.grammar)
    answer_format: ClassVar[str]  # the format instruction appended to every prompt
    Config: ClassVar[type[Section]]

    def __init__(self, config: Section, words: tuple[str, ...]):
        self.config = config
        self.words = words  # the shared pool that list-based families draw items from

    @abstractmethod
    def instance(self, rng: np.random.Generator) -> dict[str, Any]:
        """Draw this family's parameters for one record."""

    @abstractmethod
    def target(self, inst: dict[str, Any]) -> Target:
        """The exact distribution of the answer (never estimated by sampling)."""

    @abstractmethod
    def slots(self, inst: dict[str, Any]) -> dict[str, str]:
        """Values for the template's `{slot}` placeholders; each one is an entity to preserve."""

    @abstractmethod
    def parse(self, text: str, inst: dict[str, Any]) -> str | None:
        """Model text -> canonical support element, or None if invalid."""

    def format_hint(self, inst: dict[str, Any]) -> str:
        return self.answer_format

    def longest_answer(self, inst: dict[str, Any]) -> str:
        """A longest valid answer: how many tokens a sampled answer may take, EOS aside."""
        return max(self.target(inst).support, key=len)

    def positions(self, answer: str, inst: dict[str, Any]) -> list[str]:
        """A valid answer's value at each position of the target's marginals."""
        return list(answer)

    def sample(self, inst: dict[str, Any], rng: np.random.Generator, k: int) -> list[str]:
        """k independent draws from the target (for multi-sample SFT)."""
        t = self.target(inst)
        p = np.array([float(x) for x in t.probs])
        return [t.support[i] for i in rng.choice(len(t.support), size=k, p=p / p.sum())]
