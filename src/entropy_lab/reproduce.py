"""`entropy-lab reproduce-check`: does a fresh clone of this commit reproduce what it claims?

It clones the current commit into a temporary directory and runs `make repro` there with the
clone's own code (its `src/` first on PYTHONPATH, never the caller's working tree or
environment) and this environment's installed packages. Then, two answers:

- bytes: every committed file whose bytes changed (`git status`) and every DVC output that no
  longer matches `dvc.lock` (`dvc status`). Empty on a machine whose numerics match the
  committing one's (docs/reproducibility.md);
- claims: every verdict and estimate of the committed report, checked against the re-run's
  (`report.claims`): whether the findings hold where the bytes do not.

The clone is removed afterwards unless `--keep` names a directory for it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from entropy_lab.errors import UserError
from entropy_lab.report.claims import Claim, claims

RUN_RECORDS = "runs/"  # where each stage says where it ran: differs on every machine by design


@dataclass(frozen=True)
class Check:
    bytes_differ: list[str]
    claims: list[Claim]


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-20:]
        raise UserError(f"`{' '.join(cmd)}` failed in {cwd}:\n" + "\n".join(tail))
    return proc.stdout


def changed_files(clone: Path, dvc: Path) -> list[str]:
    """Committed files whose bytes differ in `clone` (run records aside), and DVC outputs that
    differ from dvc.lock."""
    out = []
    for line in _run(["git", "status", "--porcelain", "--untracked-files=no"], clone).splitlines():
        if not line[3:].startswith(RUN_RECORDS):
            out.append(f"git: {line[3:]} ({line[:2].strip()})")
    status = _run([str(dvc), "status", "--json"], clone)
    for stage, changes in sorted(json.loads(status or "{}").items()):
        for change in changes:
            entries = change.get("changed outs", {}) if isinstance(change, dict) else {}
            out += [f"dvc: {stage}: {path} {state}" for path, state in entries.items()]
    return out


def this_machine() -> str:
    """What decides bit-identity here: the CPU's vendor and model, its vector ISA, torch and
    the thread count (the run records' `machine`)."""
    from entropy_lab.stages.common import machine

    m = machine()
    return (
        f"{m['cpu_vendor']} {m['cpu_model']}; torch {m['torch']}, {m['cpu_capability']}, "
        f"{m['torch_threads']} threads, {m['blas']}"
    )


def clone_env(clone: Path, venv: Path) -> dict[str, str]:
    """The environment `make repro` runs in: this venv's tools, the clone's code first."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"
    env["PYTHONPATH"] = str(clone / "src")  # ahead of the venv's editable install
    return env


def reproduce_check(repo: Path, keep: Path | None = None) -> Check:
    """Clone HEAD of `repo`, `make repro` in the clone, compare bytes and claims."""
    repo = repo.resolve()  # git runs from the temporary directory
    head = _run(["git", "rev-parse", "HEAD"], repo).strip()
    committed = json.loads(_run(["git", "show", f"{head}:reports/metrics.json"], repo))
    venv = Path(sys.prefix)
    work = keep or Path(tempfile.mkdtemp(prefix="entropy-lab-reproduce-"))
    try:
        clone = work / "clone"
        _run(["git", "clone", "--quiet", "--no-local", str(repo), str(clone)], work)
        _run(["git", "checkout", "--quiet", head], clone)
        # `-o install`: this environment's packages (the lock's), no new venv
        _run(["make", "-o", "install", "repro", f"VENV={venv}"], clone, clone_env(clone, venv))
        rerun = json.loads((clone / "reports" / "metrics.json").read_text())
        return Check(changed_files(clone, venv / "bin" / "dvc"), claims(committed, rerun))
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)
