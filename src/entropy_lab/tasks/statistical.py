"""Statistical distributions (level 4): binomial, Poisson, geometric, discretised normal and exponential.

Binomial and geometric probabilities are exact fractions. Poisson, normal and exponential
are irrational; they are computed in float64 from closed forms (scipy.stats CDFs) on a
support truncated where the tail beyond it has mass below `tail`, then renormalised:
the target is the distribution conditioned on that support, stated in the card.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

import numpy as np
from scipy import stats

from entropy_lab.tasks.base import Family, Target, parse_integer, pick
from entropy_lab.tasks.params import (
    BinomialConfig,
    ExponentialConfig,
    GeometricConfig,
    NormalConfig,
    PoissonConfig,
)


def int_family_parse(text: str, support: tuple[str, ...]) -> str | None:
    n = parse_integer(text)
    return str(n) if n is not None and str(n) in support else None


class Binomial(Family):
    name, category, level = "binomial", "statistical", 4
    Config = BinomialConfig
    answer_format = "Answer with the count only."
    templates = (
        "Sample from a binomial distribution with n = {n} and p = {p}.",
        "Run {n} independent trials, each succeeding with probability {p}. How many succeed?",
        "Draw one value of X ~ Binomial({n}, {p}).",
        "Each of {n} seeds sprouts with probability {p}, independently. How many sprout?",
    )

    def instance(self, rng):
        c = self.config
        return {"n": pick(rng, c.n), "p": pick(rng, c.p)}

    def target(self, inst):
        n, p = inst["n"], Fraction(inst["p"])
        probs = tuple(math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1))
        return Target(tuple(map(str, range(n + 1))), probs)

    def slots(self, inst):
        return {"n": str(inst["n"]), "p": inst["p"]}

    def parse(self, text, inst):
        return int_family_parse(text, self.target(inst).support)


class Poisson(Family):
    name, category, level = "poisson", "statistical", 4
    Config = PoissonConfig
    answer_format = "Answer with the count only."
    templates = (
        "Sample a count from a Poisson distribution with mean {rate}.",
        "Calls arrive at an average rate of {rate} per minute. How many arrive in a random minute?",
        "Draw X ~ Poisson({rate}).",
        "Give one random draw from a Poisson distribution whose rate is {rate}.",
    )

    def instance(self, rng):
        return {"rate": pick(rng, self.config.rates)}

    def target(self, inst):
        top = int(stats.poisson.isf(self.config.tail, inst["rate"]))
        pmf = stats.poisson.pmf(np.arange(top + 1), inst["rate"])
        return Target(tuple(map(str, range(top + 1))), tuple(float(x) for x in pmf / pmf.sum()))

    def slots(self, inst):
        return {"rate": f"{inst['rate']:g}"}

    def parse(self, text, inst):
        return int_family_parse(text, self.target(inst).support)


class Geometric(Family):
    """Trials up to and including the first success: P(k) = (1-p)^(k-1) p, k >= 1, exact."""

    name, category, level = "geometric", "statistical", 4
    Config = GeometricConfig
    answer_format = "Answer with the number of trials only."
    templates = (
        "Each [attempt|try] succeeds with probability {p}. How many [attempts|tries] until the first success ([counting it|including it])?",
        "[Sample|Draw a value] from a geometric distribution with success probability {p} (support 1, 2, 3, ...).",
        "[Roll|Keep trying] until success, where success has probability {p}; report the number of [rolls|tries].",
        "[Draw|Simulate] the trial number of the first success when each trial succeeds with [chance|probability] {p}.",
    )

    def instance(self, rng):
        return {"p": pick(rng, self.config.p)}

    def target(self, inst):
        p = Fraction(inst["p"])
        top = math.ceil(math.log(self.config.tail) / math.log(1 - float(p)))
        kept = 1 - (1 - p) ** top  # exact mass of 1..top, the renormaliser
        probs = tuple((1 - p) ** (k - 1) * p / kept for k in range(1, top + 1))
        return Target(tuple(map(str, range(1, top + 1))), probs)

    def slots(self, inst):
        return {"p": inst["p"]}

    def parse(self, text, inst):
        return int_family_parse(text, self.target(inst).support)


def discretised(dist, lo: float, hi: float, decimals: int) -> Target:
    """P(round(X, decimals) = x) on the grid lo..hi, renormalised over it."""
    h = 10.0**-decimals
    grid = np.round(np.arange(round(lo / h), round(hi / h) + 1) * h, decimals)
    mass = dist.cdf(grid + h / 2) - dist.cdf(grid - h / 2)
    return Target(
        tuple(f"{x:.{decimals}f}" for x in grid), tuple(float(m) for m in mass / mass.sum())
    )


def parse_decimal(text: str, decimals: int, support: tuple[str, ...]) -> str | None:
    """A number written with exactly `decimals` places (as the prompt states), in the support."""
    s = text.strip().removesuffix(".")
    if not re.fullmatch(r"[+-]?\d+" + (rf"\.\d{{{decimals}}}" if decimals else ""), s):
        return None
    canon = f"{abs(float(s)) if float(s) == 0 else float(s):.{decimals}f}"  # no "-0"
    return canon if canon in support else None


def decimals_phrase(decimals: int) -> str:
    return "a whole number" if decimals == 0 else "one decimal place"


class Normal(Family):
    name, category, level = "normal", "statistical", 4
    Config = NormalConfig
    answer_format = "Answer with the number only."
    templates = (
        "Sample from a normal distribution with mean {mean} and standard deviation {sd}, rounded to {precision}.",
        "Draw X ~ N({mean}, {sd}^2) and round it to {precision}.",
        "Heights here are normally distributed, mean {mean}, sd {sd}. Give a random one rounded to {precision}.",
        "Generate a Gaussian random value (mean {mean}, standard deviation {sd}), rounded to {precision}.",
    )

    def instance(self, rng):
        c = self.config
        return {
            "mean": pick(rng, c.means),
            "sd": pick(rng, c.sds),
            "decimals": c.decimals,
        }

    def target(self, inst):
        z = stats.norm.isf(self.config.tail / 2)
        m, s, d = inst["mean"], inst["sd"], inst["decimals"]
        return discretised(stats.norm(m, s), round(m - z * s, d), round(m + z * s, d), d)

    def slots(self, inst):
        return {
            "mean": f"{inst['mean']:g}",
            "sd": f"{inst['sd']:g}",
            "precision": decimals_phrase(inst["decimals"]),
        }

    def parse(self, text, inst):
        return parse_decimal(text, inst["decimals"], self.target(inst).support)


class Exponential(Family):
    name, category, level = "exponential", "statistical", 4
    Config = ExponentialConfig
    answer_format = "Answer with the number only."
    templates = (
        "Sample from an exponential distribution with mean {mean}, rounded to {precision}.",
        "Waiting times are exponential with mean {mean} minutes. Give a random wait, rounded to {precision}.",
        "Draw X ~ Exponential(mean = {mean}) and round to {precision}.",
        "Generate an exponentially distributed random value with mean {mean}, rounded to {precision}.",
    )

    def instance(self, rng):
        c = self.config
        return {"mean": pick(rng, c.means), "decimals": c.decimals}

    def target(self, inst):
        m, d = inst["mean"], inst["decimals"]
        return discretised(
            stats.expon(scale=m), 0.0, round(stats.expon.isf(self.config.tail, scale=m), d), d
        )

    def slots(self, inst):
        return {"mean": f"{inst['mean']:g}", "precision": decimals_phrase(inst["decimals"])}

    def parse(self, text, inst):
        return parse_decimal(text, inst["decimals"], self.target(inst).support)
