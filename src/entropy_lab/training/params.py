"""The `training` params section (kept free of torch so validating params.yaml stays fast)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from entropy_lab.schema import Name, PositiveInt, Section, Seed, bad_value

Variant = Literal["ce_multisample", "soft_trie", "ce_kl", "kl", "seeded"]


class LoraSection(Section):
    r: Annotated[int, Field(ge=1, le=1024)]
    alpha: Annotated[float, Field(gt=0, le=10_000)]
    dropout: Annotated[float, Field(ge=0, lt=1)]
    target_modules: list[Name] | Literal["auto"]


class TrainingSection(Section):
    models: Annotated[list[Name], Field(min_length=1)]  # profiles in models.use
    variants: Annotated[list[Variant], Field(min_length=1)]
    lambda_kl: Annotated[float, Field(ge=0, le=1000)]
    # family -> relative chance of a train record being in a batch (1 where not listed)
    family_weights: dict[Name, Annotated[float, Field(gt=0, le=1000)]]
    lora: LoraSection
    seed: Seed
    steps: Annotated[int, Field(ge=1, le=1_000_000)]
    batch_size: Annotated[int, Field(ge=1, le=4096)]
    lr: Annotated[float, Field(gt=0, le=1)]
    warmup_steps: Annotated[int, Field(ge=0)]
    eval_every: PositiveInt
    eval_records: Annotated[int, Field(ge=1, le=100_000)]
    checkpoint_every: PositiveInt
    max_prompt_tokens: Annotated[int, Field(ge=8, le=131_072)]
    max_support_tokens: Annotated[int, Field(ge=1, le=131_072)]
    gradient_checkpointing: Literal["auto", "on", "off"]

    @model_validator(mode="after")
    def _unique(self) -> TrainingSection:
        if self.warmup_steps >= self.steps:
            raise bad_value("warmup_steps", self.warmup_steps, f"must be < steps ({self.steps})")
        for key in ("models", "variants"):
            names = getattr(self, key)
            if len(set(names)) != len(names):
                raise bad_value(key, names, "each at most once")
        return self
