"""What every stage does around its science, in the same order in each stage module:

1. `start`: read and validate params, pin the CPU numerics (before torch loads) and the thread
   count, so that neither the machine's environment nor OMP_NUM_THREADS changes an output byte;
2. check the stage's arguments against params (`one_of`) and its output paths (`outputs`:
   inside the repository, never through a link), and read its inputs (`read_json`,
   `read_parquet`, `load_tasks`, `check_safetensors`): each failure one line, before any work;
3. call the science (the strand packages: pure functions, no files);
4. write each output atomically with its manifest (`provenance`), then the run record
   (`Run.finish`): where and when it ran, outside every hashed output.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from entropy_lab.config import Params, load_params
from entropy_lab.errors import UserError
from entropy_lab.numerics import SETTINGS, apply
from entropy_lab.provenance import inside_repository, write_json

RUNS = Path("runs")  # run records: one JSON per stage, in git, hashed by nothing


def one_of(option: str, value: Any, allowed: list, key: str) -> None:
    """A CLI argument that becomes part of an output path must be a value params declares."""
    if value not in allowed:
        listed = ", ".join(map(str, allowed)) or "none"
        raise UserError(f"{option} {value!r}: not in {key}; allowed: {listed}")


def outputs(*paths: Path) -> None:
    """Refuse, before any work, to write where a path leaves the repository or passes a link."""
    for path in paths:
        inside_repository(path)


def require(path: Path, hint: str) -> Path:
    """An input that an earlier stage writes: one line naming the stage to run when absent."""
    if not path.exists():
        raise UserError(f"no {path}; {hint}")
    return path


def read_json(path: Path, hint: str = "run `dvc repro` (or `dvc pull`) first") -> Any:
    require(path, hint)
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
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
    try:
        return load_from_disk(str(directory))
    except (OSError, pa.ArrowException, ValueError, KeyError) as exc:
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
        end = max((v["data_offsets"][1] for v in tensors), default=0)
        if 8 + size + end != Path(path).stat().st_size:
            raise ValueError("its size does not match its header")
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise UserError(f"{path}: not a complete safetensors file ({exc}); {hint}") from None


def set_threads(threads: int) -> None:
    """Every math library's thread count from params (`models.threads`): reductions split by
    thread, so the count decides the last bits of a float."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(limits=threads)


def start(params_path: Path, numerics: bool = True) -> Params:
    """Params read and checked; the CPU numerics pinned (`models.numerics`) before torch loads,
    and the thread count set, for every stage that computes with floats."""
    params = load_params(params_path)
    if numerics:
        apply(params.models.numerics)
        set_threads(params.models.threads)
    return params


def machine() -> dict[str, Any]:
    """Where a stage ran: what decides whether its float outputs repeat elsewhere."""
    import torch

    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    blas = "MKL" if torch.backends.mkl.is_available() else "other"
    return {
        "cpu_vendor": info.get("vendor_id", platform.processor() or "unknown"),
        "cpu_model": info.get("model name", platform.machine()),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "blas": blas,
        "numerics_env": {k: os.environ.get(k) for k in SETTINGS["compatible"]},
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "platform": platform.platform(),
    }


def commit() -> dict[str, Any]:
    """The git commit the stage ran on, and whether the tree had changes (None outside git)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "src"],
                               capture_output=True, text=True)  # fmt: skip
    except OSError:
        return {"commit": None, "code_changed": None}
    if head.returncode:
        return {"commit": None, "code_changed": None}
    return {"commit": head.stdout.strip(), "code_changed": bool(dirty.stdout.strip())}


@dataclass
class Run:
    """The run record of one stage: written after its outputs, to runs/<stage>.json."""

    stage: str
    started: float = field(default_factory=time.time)

    def finish(self, root: Path = Path("."), **facts: Any) -> None:
        record = {
            "stage": self.stage,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "seconds": round(time.time() - self.started, 1),
            "machine": machine(),
            **commit(),
            **facts,
        }
        write_json(root / RUNS / f"{self.stage}.json", record)
