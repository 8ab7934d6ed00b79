"""The `tasks` params section: the dataset's sizes and splits, the entropy-driven mode, and one
config per task family (its instance ranges), validated before any stage works.

Kept apart from the families' code (tasks.basic, ...) so that every stage can read params
without importing, and so without depending on, the families' prompts and parsers.
"""

from __future__ import annotations

import math
from fractions import Fraction
from statistics import NormalDist
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from entropy_lab.schema import Name, PositiveInt, Section, Seed, bad_value

MAX_OUTCOMES = 720  # 6! : beyond this a combinatorial support is too large to score exactly
MAX_SUPPORT = 400  # values of a statistical family's (truncated) support
MAX_VALUE = 10**6  # integers a prompt may name (range bounds, die faces)
Tail = Annotated[float, Field(ge=1e-12, lt=0.01)]  # below 1e-12: no float gain, and overflow
Bounded = Annotated[int, Field(ge=-MAX_VALUE, le=MAX_VALUE)]


def check_n_k(key: str, pairs: list[list[int]]) -> None:
    """Every [n, k] of a config draws k of n: k must not exceed n."""
    for i, (n, k) in enumerate(pairs):
        if k > n:
            raise bad_value(f"{key}[{i}]", [n, k], f"k = {k} > n = {n}; need [n, k] with k <= n")


def probability(text: str) -> str:
    """A probability written as a fraction 'p/q', strictly between 0 and 1."""
    try:
        p = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise ValueError("must be a fraction like '1/3'") from None
    if not 0 < p < 1:
        raise ValueError("must be strictly between 0 and 1")
    return text


Probability = Annotated[str, AfterValidator(probability)]


class IntegerRangeConfig(Section):
    low: Annotated[list[Bounded], Field(min_length=2, max_length=2)]  # range of the lower bound
    max_width: Annotated[int, Field(ge=1, le=1000)]

    @model_validator(mode="after")
    def _ordered(self) -> IntegerRangeConfig:
        if self.low[0] > self.low[1]:
            raise bad_value("low", self.low, "need [min, max] with min <= max")
        return self


class ListItemConfig(Section):
    size: Annotated[list[PositiveInt], Field(min_length=2, max_length=2)]  # [min, max] items

    @model_validator(mode="after")
    def _ordered(self) -> ListItemConfig:
        if not 2 <= self.size[0] <= self.size[1]:
            raise bad_value("size", self.size, "need [min, max] with 2 <= min <= max")
        return self


class WeightedChoiceConfig(Section):
    weights: Annotated[
        list[Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=2)]], Field(min_length=1)
    ]

    @model_validator(mode="after")
    def _some_weight(self) -> WeightedChoiceConfig:
        for i, w in enumerate(self.weights):
            if sum(w) == 0:
                raise bad_value(f"weights[{i}]", w, "at least one weight must be positive")
        return self


class ShuffleConfig(Section):
    sizes: Annotated[list[Annotated[int, Field(ge=2, le=6)]], Field(min_length=1)]


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


class DiceConfig(Section):
    sides: Annotated[list[Annotated[int, Field(ge=2, le=100)]], Field(min_length=1)]
    max_dice: Annotated[int, Field(ge=1, le=10)]
    modifiers: Annotated[list[Bounded], Field(min_length=1)]


class CoinsConfig(Section):
    max_flips: Annotated[int, Field(ge=1, le=8)]
    heads_probability: Annotated[list[Probability], Field(min_length=1)]


class CardsConfig(Section):
    decks: Annotated[list[Literal["full", "hearts", "faces", "aces"]], Field(min_length=1)]


class SpinnerConfig(Section):
    sectors: Annotated[
        list[Annotated[list[Annotated[int, Field(ge=1, le=359)]], Field(min_length=2)]],
        Field(min_length=1),
    ]

    @model_validator(mode="after")
    def _full_circle(self) -> SpinnerConfig:
        for i, angles in enumerate(self.sectors):
            if sum(angles) != 360:
                raise bad_value(
                    f"sectors[{i}]", angles, f"angles must sum to 360 (they sum to {sum(angles)})"
                )
        return self


class BinomialConfig(Section):
    n: Annotated[list[Annotated[int, Field(ge=1, le=MAX_SUPPORT - 1)]], Field(min_length=1)]
    p: Annotated[list[Probability], Field(min_length=1)]


class PoissonConfig(Section):
    rates: Annotated[list[Annotated[float, Field(gt=0, le=50)]], Field(min_length=1)]
    tail: Tail


class GeometricConfig(Section):
    p: Annotated[list[Probability], Field(min_length=1)]
    tail: Tail


class NormalConfig(Section):
    means: Annotated[
        list[Annotated[float, Field(ge=-MAX_VALUE, le=MAX_VALUE)]], Field(min_length=1)
    ]
    sds: Annotated[list[Annotated[float, Field(gt=0, le=MAX_VALUE)]], Field(min_length=1)]
    decimals: Literal[0, 1]
    tail: Tail

    @model_validator(mode="after")
    def _support_size(self) -> NormalConfig:
        z = NormalDist().inv_cdf(1 - self.tail / 2)  # the stdlib's: params load no numpy
        size = 2 * z * max(self.sds) * 10**self.decimals
        if size > MAX_SUPPORT:
            raise bad_value(
                "sds",
                self.sds,
                f"support of ~{size:.0f} values exceeds {MAX_SUPPORT}; use smaller sds or decimals",
            )
        return self


class ExponentialConfig(Section):
    means: Annotated[list[Annotated[float, Field(gt=0, le=MAX_VALUE)]], Field(min_length=1)]
    decimals: Literal[0, 1]
    tail: Tail

    @model_validator(mode="after")
    def _support_size(self) -> ExponentialConfig:
        size = -math.log(self.tail) * max(self.means) * 10**self.decimals
        if size > MAX_SUPPORT:
            raise bad_value(
                "means",
                self.means,
                f"support of ~{size:.0f} values exceeds {MAX_SUPPORT}; use smaller means or decimals",
            )
        return self


class DeterministicConfig(Section):
    values: Annotated[list[Bounded], Field(min_length=2, max_length=2)]  # [min, max] face value

    @model_validator(mode="after")
    def _ordered(self) -> DeterministicConfig:
        if not 0 <= self.values[0] <= self.values[1]:
            raise bad_value("values", self.values, "need [min, max] with 0 <= min <= max")
        return self


class PasswordConfig(Section):
    lengths: Annotated[list[Annotated[int, Field(ge=2, le=64)]], Field(min_length=1)]


class UUIDConfig(Section):
    pass


class LotteryConfig(Section):
    games: Annotated[
        list[
            Annotated[list[Annotated[int, Field(ge=1, le=100)]], Field(min_length=2, max_length=2)]
        ],
        Field(min_length=1),
    ]

    @model_validator(mode="after")
    def _k_le_n(self) -> LotteryConfig:
        check_n_k("games", self.games)
        return self


class FamiliesSection(Section):
    """One optional config per family (null or absent: the family is off), in FAMILIES' order."""

    integer_range: IntegerRangeConfig | None = None
    list_item: ListItemConfig | None = None
    weighted_choice: WeightedChoiceConfig | None = None
    shuffle: ShuffleConfig | None = None
    k_of_n: KOfNConfig | None = None
    permutation: KOfNConfig | None = None
    dice: DiceConfig | None = None
    coins: CoinsConfig | None = None
    cards: CardsConfig | None = None
    spinner: SpinnerConfig | None = None
    binomial: BinomialConfig | None = None
    poisson: PoissonConfig | None = None
    geometric: GeometricConfig | None = None
    normal: NormalConfig | None = None
    exponential: ExponentialConfig | None = None
    deterministic: DeterministicConfig | None = None
    password: PasswordConfig | None = None
    uuid: UUIDConfig | None = None
    lottery: LotteryConfig | None = None


Count = Annotated[int, Field(ge=1, le=1_000_000)]


class Counts(Section):
    train: Count
    validation: Count
    test_template: Count
    test_family: Count


class Paraphrase(Section):
    model: Name | None  # a profile in models.profiles, or null for no paraphrasing
    max_new_tokens: Annotated[int, Field(ge=8, le=512)]


class SeededSection(Section):
    source: Literal["kernel", "jitter", "external"]  # the pool source the u's come from
    digits: Annotated[int, Field(ge=1, le=6)]  # decimal digits of u in the prompt
    train_draws: Annotated[int, Field(ge=1, le=1000)]  # u's per train record
    eval_records: Annotated[int, Field(ge=1, le=100_000)]  # per evaluation split, from its start
    eval_draws: Annotated[int, Field(ge=10, le=100_000)]  # u's per evaluation record


class TasksSection(Section):
    seed: Seed
    counts: Counts
    draws: Annotated[int, Field(ge=0, le=1000)]  # samples from the target per record
    words: Annotated[list[Annotated[str, Field(pattern=r"^[a-z]+$")]], Field(min_length=6)]
    heldout_families: list[str]
    heldout_templates: Annotated[int, Field(ge=1, le=3)]
    # each evaluation split's first records: this many of every family of its pool, reserved
    # before train takes its prompts (families with few distinct prompts are in every split)
    eval_per_family: Annotated[int, Field(ge=1, le=1000)]
    paraphrase: Paraphrase
    seeded: SeededSection  # the entropy-driven mode: u from the pool in the prompt
    families: FamiliesSection

    @model_validator(mode="after")
    def _consistent(self) -> TasksSection:
        enabled = self.enabled()
        if not enabled:
            known = ", ".join(FamiliesSection.model_fields)
            raise bad_value("families", {}, f"enable at least one of: {known}")
        for i, name in enumerate(self.heldout_families):
            if name not in enabled:
                raise bad_value(
                    f"heldout_families[{i}]",
                    name,
                    f"not an enabled family; allowed: {', '.join(enabled)}",
                )
        if set(enabled) <= set(self.heldout_families) or not self.heldout_families:
            raise bad_value(
                "heldout_families",
                self.heldout_families,
                "hold out at least one family and keep at least one",
            )
        if len(set(self.words)) != len(self.words):
            raise bad_value("words", self.words, "words must be distinct")
        seen = len(enabled) - len(self.heldout_families)
        for split, families in (("validation", seen), ("test_template", seen),
                                ("test_family", len(self.heldout_families))):  # fmt: skip
            if getattr(self.counts, split) < self.eval_per_family * families:
                raise bad_value(f"counts.{split}", getattr(self.counts, split),
                                f"at least eval_per_family x its {families} families "
                                f"({self.eval_per_family * families})")  # fmt: skip
        return self

    def enabled(self) -> list[str]:
        """The families switched on, in the registry's order."""
        return [n for n in FamiliesSection.model_fields if getattr(self.families, n) is not None]
