"""`entropy-lab reproduce-check`: does a fresh clone of this commit reproduce it byte for byte?

It clones the current commit into a temporary directory, runs `make repro` there (with this
environment's virtualenv, so nothing is installed), and lists every committed file whose
bytes changed (`git status`) and every DVC-tracked output that no longer matches `dvc.lock`
(`dvc status`). With the harvest frozen and its pool in git, the list is empty on a machine
whose numerics match the one that committed (README: what is bit-identical across machines).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from entropy_lab.errors import UserError
from entropy_lab.provenance import numerics


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-20:]
        raise UserError(f"`{' '.join(cmd)}` failed in {cwd}:\n" + "\n".join(tail))
    return proc.stdout


def changed_files(clone: Path) -> list[str]:
    """Committed files whose bytes differ in `clone`, and DVC outputs that differ from dvc.lock."""
    out = []
    for line in _run(["git", "status", "--porcelain", "--untracked-files=no"], clone).splitlines():
        out.append(f"git: {line[3:]} ({line[:2].strip()})")
    status = _run([str(Path(sys.executable).parent / "dvc"), "status", "--json"], clone)
    for stage, changes in sorted(json.loads(status or "{}").items()):
        for change in changes:
            entries = change.get("changed outs", {}) if isinstance(change, dict) else {}
            out += [f"dvc: {stage}: {path} {state}" for path, state in entries.items()]
    return out


def this_machine() -> str:
    """What decides bit-identity here, for a reader of a failed check: the CPU's vendor and
    model (MKL picks its kernels by vendor) beside the manifests' `numerics`."""
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):  # Linux; elsewhere platform's name
        fields = (line.split(":", 1) for line in Path("/proc/cpuinfo").read_text().splitlines())
        info = {f[0].strip(): f[1].strip() for f in fields if len(f) == 2}
        cpu = " ".join(info.get(k, "") for k in ("vendor_id", "model name")).strip() or cpu
    n = numerics()
    return f"{cpu}; torch {torch.__version__}, {n['cpu_capability']}, {n['torch_threads']} threads"


def reproduce_check(repo: Path, keep: Path | None = None) -> list[str]:
    """Clone HEAD of `repo`, `make repro` in the clone, return what differs (empty: reproduced)."""
    repo = repo.resolve()  # git runs from the temporary directory
    head = _run(["git", "rev-parse", "HEAD"], repo).strip()
    venv = Path(sys.prefix)
    work = keep or Path(tempfile.mkdtemp(prefix="entropy-lab-reproduce-"))
    clone = work / "clone"
    _run(["git", "clone", "--quiet", "--no-local", str(repo), str(clone)], work)
    _run(["git", "checkout", "--quiet", head], clone)
    env = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}
    # `-o install`: use this environment's packages (the lock's), do not build a new venv
    _run(["make", "-o", "install", "repro", f"VENV={venv}"], clone, env)
    return changed_files(clone)
