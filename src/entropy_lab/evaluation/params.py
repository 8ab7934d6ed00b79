"""The `evaluate` params section (kept free of torch so that validating params stays fast)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from entropy_lab.generation.params import Declaration
from entropy_lab.schema import Section, Seed, bad_value


class PerSplit(Section):
    validation: Annotated[int, Field(ge=1, le=10_000)]
    test_template: Annotated[int, Field(ge=1, le=10_000)]
    test_family: Annotated[int, Field(ge=1, le=10_000)]


class EvaluateSection(Section):
    # the first records of each family in each split (every family of the split's pool)
    records_per_family: PerSplit
    min_records_ci: Annotated[int, Field(ge=2, le=10_000)]  # no bootstrap CI from fewer records
    # the graded criterion: the share of prompts whose exact full-space TVD is at most this
    close_tvd: Annotated[float, Field(gt=0, lt=1)]
    # the primary teaching comparison, per split (Holm over the splits): [variant, reference]
    primary: Annotated[list[str], Field(min_length=2, max_length=2)]
    declared: Declaration | None = None  # when primary, close_tvd and alpha were fixed
    # models evaluated untaught (base only, exact view at T = 1: no samples, so no validity or
    # GOF): a real model's "bad dice player" baseline within the default profile's budget
    untaught: Annotated[list[str], Field(max_length=100)]
    samples: Annotated[int, Field(ge=10, le=100_000)]  # sampled answers per record
    monte_carlo: Annotated[int, Field(ge=99, le=100_000)]  # draws per Monte Carlo p-value
    batch_size: Annotated[int, Field(ge=1, le=65_536)]
    alpha: Annotated[float, Field(gt=0, lt=0.5)]
    bootstrap: Annotated[int, Field(ge=100, le=1_000_000)]
    seed: Seed
    # the temperature sweep: validation records at each (temperature 1: every split)
    temperatures: Annotated[list[Annotated[float, Field(ge=0.05, le=5)]], Field(min_length=1)]

    def claim(self) -> dict:
        """The declared fields, whose sha256 `declared.digest` holds."""
        return {"primary": self.primary, "close_tvd": self.close_tvd, "alpha": self.alpha}

    @model_validator(mode="after")
    def _sweep(self) -> EvaluateSection:
        if len(set(self.temperatures)) != len(self.temperatures):
            raise bad_value("temperatures", self.temperatures, "each temperature at most once")
        if 1.0 not in self.temperatures:
            raise bad_value("temperatures", self.temperatures, "must include 1.0")
        return self
