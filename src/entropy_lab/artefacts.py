"""Reading what an earlier stage wrote: every missing, truncated or corrupt artefact is one
line naming the file and the stage to run, never a traceback."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

from entropy_lab.errors import UserError

REPRO = "run `dvc repro` (or `dvc pull`) first"
DTYPES = {"BOOL", "U8", "I8", "I16", "U16", "I32", "U32", "I64", "U64", "F16", "BF16", "F32", "F64",
          "F8_E4M3", "F8_E5M2"}  # fmt: skip


def require(path: Path, hint: str) -> Path:
    """An input that an earlier stage writes: one line naming the stage to run when absent,
    or when it is not a regular file (reading a FIFO or a device would wait forever)."""
    if not path.exists():
        raise UserError(f"no {path}; {hint}")
    if not path.is_file():
        raise UserError(f"{path}: not a regular file but {kind(path)}; {hint}")
    return path


def kind(path: Path) -> str:
    """What a path that is not a regular file is, for an error line."""
    mode = Path(path).stat().st_mode
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):  # fmt: skip
        if test(mode):
            return name
    return "not a file"


def regular_tree(directory: Path, hint: str) -> Path:
    """A directory input whose every entry is a regular file or a directory (links followed):
    the libraries that read it open whatever they find."""
    for path in sorted(Path(directory).rglob("*")):
        if not (path.is_file() or path.is_dir()):
            what = kind(path) if path.exists() else "a dangling link"
            raise UserError(f"{path}: not a regular file but {what}; {hint}")
    return directory


def read_json(path: Path, hint: str = REPRO) -> Any:
    require(path, hint)
    try:
        return json.loads(Path(path).read_bytes())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise UserError(f"{path}: not readable JSON ({type(exc).__name__}); {hint}") from None


def read_parquet(path: Path, hint: str):
    import pandas as pd
    import pyarrow as pa

    require(path, hint)
    try:
        return pd.read_parquet(path)
    except (OSError, pa.ArrowException, ValueError) as exc:
        raise UserError(
            f"{path}: not a readable parquet file ({type(exc).__name__}); {hint}"
        ) from None


def load_tasks(directory: Path):
    """The task dataset the `tasks` stage saved (a DatasetDict)."""
    import pyarrow as pa
    from datasets import load_from_disk

    hint = "run the tasks stage (`dvc repro tasks`) first"
    require(directory / "dataset_dict.json", hint)
    regular_tree(directory, hint)
    try:
        return load_from_disk(str(directory))
    except (OSError, pa.ArrowException, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UserError(
            f"{directory}: not a readable task dataset ({type(exc).__name__}); {hint}"
        ) from None


def check_safetensors(path: Path, hint: str) -> None:
    """A weights file whose header parses and whose tensors end where the file does: a
    truncated or corrupt file is one line here, not a traceback after the work."""
    require(path, hint)
    try:
        with open(path, "rb") as fh:
            size = int.from_bytes(fh.read(8), "little")
            if not 2 <= size <= 100_000_000:
                raise ValueError(f"header length {size}")
            header = json.loads(fh.read(size))
        tensors = [v for k, v in header.items() if k != "__metadata__"]
        if bad := {t["dtype"] for t in tensors} - DTYPES:
            raise ValueError(f"unknown dtype {sorted(bad)[0]!r}")
        end = max((v["data_offsets"][1] for v in tensors), default=0)
        if 8 + size + end != Path(path).stat().st_size:
            raise ValueError("its size does not match its header")
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise UserError(f"{path}: not a complete safetensors file ({exc}); {hint}") from None


def read_yaml(path: Path, hint: str = REPRO) -> Any:
    import yaml

    require(path, hint)
    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's: dvc.lock is large
        return yaml.load(Path(path).read_text(encoding="utf-8"), Loader=loader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ValueError, RecursionError) as exc:
        raise UserError(f"{path}: not readable YAML ({type(exc).__name__}); {hint}") from None


def read_json_object(path: Path, hint: str = REPRO) -> dict:
    """A JSON file that must hold an object (a report's numbers, a record)."""
    data = read_json(path, hint)
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object, got {type(data).__name__}; {hint}")
    return data


def read_columns(path: Path, columns: tuple[str, ...], hint: str):
    """A parquet table that must have `columns` and at least one row."""
    table = read_parquet(path, hint)
    if missing := [c for c in columns if c not in table.columns]:
        raise UserError(f"{path}: no column {missing[0]!r}; {hint}")
    if table.empty:
        raise UserError(f"{path}: no rows; {hint}")
    return table
