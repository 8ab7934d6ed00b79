"""The `training` params section (kept free of torch so validating params.yaml stays fast)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from entropy_lab.schema import PositiveInt, Section


class LoraSection(Section):
    r: PositiveInt
    alpha: Annotated[float, Field(gt=0)]
    dropout: Annotated[float, Field(ge=0, lt=1)]
    target_modules: list[str] | Literal["auto"]


class TrainingSection(Section):
    models: Annotated[list[str], Field(min_length=1)]  # profiles in models.use
    variants: Annotated[list[Literal["ce_multisample", "ce_kl", "kl"]], Field(min_length=1)]
    lambda_kl: Annotated[float, Field(ge=0)]
    lora: LoraSection
    seed: Annotated[int, Field(ge=0)]
    steps: PositiveInt
    batch_size: PositiveInt
    lr: Annotated[float, Field(gt=0, le=1)]
    warmup_steps: Annotated[int, Field(ge=0)]
    eval_every: PositiveInt
    eval_records: PositiveInt
    checkpoint_every: PositiveInt
    max_prompt_tokens: Annotated[int, Field(ge=8)]
    max_support_tokens: Annotated[int, Field(ge=1)]
    gradient_checkpointing: Literal["auto", "on", "off"]
