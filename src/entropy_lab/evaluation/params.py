"""The `evaluate` params section (kept free of torch so that validating params stays fast)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from entropy_lab.schema import PositiveInt, Section


class EvaluateSection(Section):
    records: PositiveInt  # per split (validation, test_template, test_family)
    samples: Annotated[int, Field(ge=10)]  # sampled answers per record (the empirical view)
    batch_size: PositiveInt
    alpha: Annotated[float, Field(gt=0, lt=0.5)]
    bootstrap: Annotated[int, Field(ge=100)]
    seed: Annotated[int, Field(ge=0)]
