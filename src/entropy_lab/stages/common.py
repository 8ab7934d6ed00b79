"""What every stage does around its science, in the same order in each stage module:

1. `start` (the CLI calls it before it imports the stage module): read and validate params, pin
   the CPU numerics (before torch and numpy load) and the thread count, so that neither the
   machine's environment nor OMP_NUM_THREADS changes an output byte;
2. check the stage's arguments against params (`one_of`) and its output paths (`outputs`:
   inside the repository, never through a link), and read its inputs (`read_json`,
   `read_parquet`, `load_tasks`, `check_safetensors` from `artefacts`): each failure one line,
   before any work;
3. call the science (the strand packages: pure functions, no files);
4. write each output atomically with its manifest (`provenance`), then the run record
   (`Run.finish`): where and when it ran, outside every hashed output.
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from entropy_lab.config import Params, parse_params, read_params_data
from entropy_lab.errors import UserError
from entropy_lab.numerics import DEFAULT, NAMES, SETTINGS, apply
from entropy_lab.provenance import inside_repository, writable, write_json

RUNS = Path("runs")  # run records: one JSON per stage, in git, hashed by nothing


def one_of(option: str, value: Any, allowed: list, key: str) -> None:
    """A CLI argument that becomes part of an output path must be a value params declares."""
    if value not in allowed:
        listed = ", ".join(map(str, allowed)) or "none"
        raise UserError(f"{option} {value!r}: not in {key}; allowed: {listed}")


def outputs(*paths: Path) -> None:
    """Refuse, before any work, to write where a path leaves the repository or passes a link,
    where a file output (a name with a suffix) is a directory, or where its directory cannot
    be written: every output of a stage is checked before the first is written."""
    for path in paths:
        inside_repository(path)
        if Path(path).suffix and Path(path).is_dir():
            raise UserError(f"output {path} is a directory; remove it (a file goes there)")
        writable(path)


def set_threads(threads: int) -> None:
    """Every math library's thread count from params (`models.threads`): reductions split by
    thread, so the count decides the last bits of a float."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(limits=threads)


def start(params_path: Path) -> Params:
    """Params read and checked; the CPU numerics pinned (`models.numerics`) before torch and
    numpy load, and every library's thread count set from `models.threads`."""
    data = read_params_data(params_path)
    apply(numerics_setting(data))  # before validation: a validator may load numpy
    params = parse_params(data, str(params_path))
    set_threads(params.models.threads)
    return params


def numerics_setting(data: Any) -> str:
    """`models.numerics` as the file gives it (the default where it is absent or not one of
    the settings: validation then names the bad value)."""
    models = data.get("models") if isinstance(data, dict) else None
    value = models.get("numerics") if isinstance(models, dict) else None
    return value if isinstance(value, str) and value in SETTINGS else DEFAULT


def model_numerics(params: Params, device: bool = True) -> dict[str, Any]:
    """What decides a stage's float bytes beyond its params and inputs, as params pin it: the
    kernels (`models.numerics`), the thread count and, for model stages, device and dtype. The
    machine itself goes to the run record."""
    out: dict[str, Any] = {"setting": params.models.numerics, "threads": params.models.threads}
    if device:
        from entropy_lab.models import pick_device, pick_dtype

        where = pick_device(params.models.device)
        dtype = str(pick_dtype(params.models.dtype, where)).removeprefix("torch.")
        out |= {"device": where, "dtype": dtype}
    return out


def machine() -> dict[str, Any]:
    """Where a stage ran: what decides whether its float outputs repeat elsewhere."""
    import torch

    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
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
        "numerics_env": {k: os.environ.get(k) for k in NAMES},
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "platform": platform.platform(),
    }


def commit() -> dict[str, Any]:
    """The git commit the stage ran on, and whether the tree had changes (None outside git).
    `--no-optional-locks`: git status would otherwise rewrite .git/index (its stat cache)
    under whoever is working in the repository."""
    git = ["git", "--no-optional-locks"]
    try:
        head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no", "src"],
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

    def __post_init__(self) -> None:
        outputs(RUNS / f"{self.stage}.json")  # before the stage's work, as its outputs are

    def finish(self, root: Path = Path("."), earlier: Sequence[float] = (), **facts: Any) -> None:
        """`earlier`: the seconds of the earlier legs of a resumed run, each counted."""
        leg = round(time.time() - self.started, 1)
        record = {
            "stage": self.stage,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "seconds": round(sum(earlier) + leg, 1),
            **({"legs": [*earlier, leg]} if earlier else {}),
            "machine": machine(),
            **commit(),
            **facts,
        }
        write_json(root / RUNS / f"{self.stage}.json", record)
