"""The registry of task families, in the order params list them, and their instantiation."""

from __future__ import annotations

from entropy_lab.tasks.base import Family
from entropy_lab.tasks.basic import IntegerRange, ListItem, WeightedChoice
from entropy_lab.tasks.combinatorial import KOfN, Permutation, Shuffle
from entropy_lab.tasks.contextual import UUID4, Deterministic, Lottery, Password
from entropy_lab.tasks.game import Cards, Coins, Dice, Spinner
from entropy_lab.tasks.params import TasksSection
from entropy_lab.tasks.statistical import Binomial, Exponential, Geometric, Normal, Poisson

FAMILIES: dict[str, type[Family]] = {
    cls.name: cls
    for cls in (
        IntegerRange, ListItem, WeightedChoice,
        Shuffle, KOfN, Permutation,
        Dice, Coins, Cards, Spinner,
        Binomial, Poisson, Geometric, Normal, Exponential,
        Deterministic, Password, UUID4, Lottery,
    )
}  # fmt: skip


def instantiate(section: TasksSection) -> dict[str, Family]:
    """Every enabled family, configured from params, by name."""
    return {
        n: FAMILIES[n](getattr(section.families, n), tuple(section.words))
        for n in section.enabled()
    }
