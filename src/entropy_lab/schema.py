"""The strict base every params section is built on (kept apart from config.py so that
strand packages can define their own sections without importing the whole config)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

PositiveInt = Annotated[int, Field(ge=1)]
Quantization = Literal["none", "8bit", "4bit"]
# Names become paths (models/<name>/, adapters/<model>/<variant>/, data/ab/<model>/...): one
# safe path component, never `..` or a separator.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=100)]
# Seeds key numpy and torch generators; torch takes at most 64 bits, and 32 are plenty.
Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]


def bad_value(key: str, value: Any, allowed: str) -> PydanticCustomError:
    """An error about `key` (relative to the section that raises it) that lists what is allowed."""
    return PydanticCustomError(
        "bad_value", "{allowed}", {"key": key, "value": value, "allowed": allowed}
    )


class Section(BaseModel):
    """A strict, immutable block of params; unknown keys are errors that list the known ones."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            allowed = sorted(cls.model_fields)
            for key in data:
                if key not in cls.model_fields:
                    raise bad_value(
                        str(key), data[key], f"unknown key; allowed: {', '.join(allowed)}"
                    )
        return data


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
