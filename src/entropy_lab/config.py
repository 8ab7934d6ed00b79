"""`params.yaml` parsed into typed, validated sections, one per stage.

Every error is one line naming the dotted key, the bad value and what is allowed,
raised as `UserError` before any stage does work. Types are strict: YAML's
`steps: "100"` or `lr: 3e-3` (a string in YAML 1.1) are rejected, not coerced.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from entropy_lab.entropy.harvest import HarvestSection
from entropy_lab.errors import UserError
from entropy_lab.evaluation.params import EvaluateSection
from entropy_lab.generation.params import ABSection
from entropy_lab.schema import PositiveInt, Quantization, Section, bad_value
from entropy_lab.tasks.builder import TasksSection
from entropy_lab.training.params import TrainingSection

PARAMS_FILE = Path("params.yaml")


class ModelProfile(Section):
    """A model users can select: a Hugging Face repo id, or null for a model built by a stage."""

    repo: str | None = None
    revision: str | None = None
    quantization: Quantization = "none"


class TinyLM(Section):
    """The offline default: a small GPT-2-style byte-level LM trained on the King James Bible.

    No defaults: params.yaml is the one place these values live.
    """

    name: str
    seed: Annotated[int, Field(ge=0)]
    n_layer: Annotated[int, Field(ge=1, le=48)]
    n_head: PositiveInt
    n_embd: Annotated[int, Field(ge=8, le=4096)]
    context: Annotated[int, Field(ge=8, le=4096)]
    steps: PositiveInt
    batch_size: PositiveInt
    lr: Annotated[float, Field(gt=0, le=1)]
    warmup_steps: Annotated[int, Field(ge=0)]
    weight_decay: Annotated[float, Field(ge=0)]
    eval_every: PositiveInt
    eval_batches: PositiveInt
    val_fraction: Annotated[float, Field(gt=0, lt=0.5)]
    threads: Annotated[int, Field(ge=1, le=256)]

    @model_validator(mode="after")
    def _heads_divide_width(self) -> TinyLM:
        if self.n_embd % self.n_head:
            raise bad_value("n_embd", self.n_embd, f"must be a multiple of n_head ({self.n_head})")
        if self.warmup_steps >= self.steps:
            raise bad_value("warmup_steps", self.warmup_steps, f"must be < steps ({self.steps})")
        return self


class ModelsSection(Section):
    """Which models the pipeline prepares and uses, and how they are loaded."""

    use: Annotated[list[str], Field(min_length=1)]
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    profiles: dict[str, ModelProfile]
    tiny: TinyLM

    @model_validator(mode="after")
    def _names_exist(self) -> ModelsSection:
        known = ", ".join(sorted(self.profiles))
        for i, name in enumerate(self.use):
            if name not in self.profiles:
                raise bad_value(f"use[{i}]", name, f"unknown model; allowed: {known}")
        built = [n for n, p in self.profiles.items() if p.repo is None]
        if built != [self.tiny.name]:
            raise bad_value(
                "profiles",
                built,
                f"exactly one profile may have repo: null, the built model {self.tiny.name!r}",
            )
        return self


class Params(Section):
    """The whole `params.yaml`."""

    harvest: HarvestSection
    models: ModelsSection
    tasks: TasksSection
    training: TrainingSection
    evaluate: EvaluateSection
    ab: ABSection

    @model_validator(mode="after")
    def _names_exist(self) -> Params:
        known = ", ".join(self.models.use)
        name = self.tasks.paraphrase.model
        if name is not None and name not in self.models.use:
            raise bad_value("tasks.paraphrase.model", name, f"not in models.use; allowed: {known}")
        for key, models in (
            ("training.models", self.training.models),
            ("ab.models", self.ab.models),
        ):
            for i, model in enumerate(models):
                if model not in self.models.use:
                    raise bad_value(f"{key}[{i}]", model, f"not in models.use; allowed: {known}")
        sources = [s.name for s in self.harvest.sources]
        if self.ab.generate.source not in sources:
            raise bad_value(
                "ab.generate.source",
                self.ab.generate.source,
                f"not in harvest.sources; allowed: {', '.join(sources)}",
            )
        return self


def _dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def format_error(source: str, err: dict[str, Any]) -> str:
    """One line: `source: dotted.key = value: what is allowed`."""
    loc = err["loc"]
    if err["type"] == "bad_value":
        ctx = err["ctx"]
        key = ".".join(filter(None, [_dotted(loc), ctx["key"]]))
        return f"{source}: {key} = {ctx['value']!r}: {ctx['allowed']}"
    if err["type"] == "missing":
        return f"{source}: {_dotted(loc)}: required key is missing"
    return f"{source}: {_dotted(loc)} = {err['input']!r}: {err['msg']}"


def parse_params(data: Any, source: str = str(PARAMS_FILE)) -> Params:
    """Validate already-loaded YAML data; the first error becomes a one-line `UserError`."""
    if not isinstance(data, dict):
        raise UserError(f"{source}: expected a mapping of sections, got {type(data).__name__}")
    try:
        return Params.model_validate(data)
    except ValidationError as exc:
        raise UserError(format_error(source, exc.errors()[0])) from None


def load_params(path: Path = PARAMS_FILE) -> Params:
    try:
        text = path.read_text()
    except OSError as exc:
        raise UserError(f"{path}: cannot read params ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return parse_params(data, str(path))


def flatten(section: BaseModel, prefix: str) -> dict[str, Any]:
    """Dotted key -> value for every leaf of a section: the params a stage read."""
    out: dict[str, Any] = {}

    def walk(value: Any, key: str) -> None:
        if isinstance(value, dict) and value:
            for k in sorted(value):
                walk(value[k], f"{key}.{k}")
        else:
            out[key] = value

    walk(section.model_dump(mode="json"), prefix)
    return out
