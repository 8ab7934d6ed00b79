"""`entropy-lab reproduce-check`: does a fresh clone of this commit reproduce what it claims?

It clones the current commit and runs `make repro` there with the clone's own code (its
`src/` first on PYTHONPATH, never the caller's working tree or environment) and this
environment's installed packages, showing which stage runs. Then, two answers:

- bytes: every committed file whose bytes changed (`git status`) and every DVC output that no
  longer matches `dvc.lock` (`dvc status`). Empty on a machine whose numerics match the
  committing one's (docs/reproducibility.md);
- claims: every verdict and estimate of the committed report, checked against the re-run's
  (`report.claims`): whether the findings hold where the bytes do not.

The console gets a summary; the full claim table goes to a file. `--record` keeps the result
as `reports/reproductions/<vendor>-<isa>-<date>.json`: which machines reproduced the
committed outputs byte for byte, and which claim by claim. The clone is removed afterwards
unless `--keep` names a directory for it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from entropy_lab.errors import UserError
from entropy_lab.report.claims import Claim, claims

RUN_RECORDS = "runs/"  # where each stage says where it ran: differs on every machine by design
REPRODUCTIONS = Path("reports/reproductions")
STAGE = re.compile(r"^Running stage '([^']+)'")


@dataclass(frozen=True)
class Check:
    commit: str
    bytes_differ: list[str]
    claims: list[Claim]
    seconds: float


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, encoding="utf-8",
                          errors="replace")  # fmt: skip
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


def widest_isa() -> str:
    """The widest x86 vector ISA this CPU has (whatever numerics pins): avx512, avx2 or
    baseline; the machine's architecture elsewhere."""
    try:
        flags = next(
            (line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text(
                encoding="utf-8", errors="replace").splitlines() if line.startswith("flags")),
            [],
        )  # fmt: skip
    except OSError:
        flags = []
    if "avx512f" in flags:
        return "avx512"
    if "avx2" in flags:
        return "avx2"
    import platform

    return "baseline" if flags else platform.machine() or "unknown"


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


def keep_dir(keep: Path) -> Path:
    """`--keep`: an absolute, empty directory (created when it does not exist)."""
    keep = keep.expanduser().resolve()
    if keep.exists() and (not keep.is_dir() or any(keep.iterdir())):
        raise UserError(f"--keep {keep}: not an empty directory")
    try:
        keep.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--keep {keep}: cannot be created ({exc.strerror})") from None
    return keep


def repro(clone: Path, venv: Path, log: Path, stages: int, say: Callable[[str], None]) -> None:
    """`make repro` in the clone, its output to `log`, one progress line per stage."""
    cmd = ["make", "-o", "install", "repro", f"VENV={venv}"]  # this environment's packages
    done = 0
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen(cmd, cwd=clone, env=clone_env(clone, venv), encoding="utf-8",
                                errors="replace", stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)  # fmt: skip
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            if match := STAGE.match(line):
                done += 1
                say(f"[{done}/{stages}] {match[1]}")
        if proc.wait() != 0:
            raise UserError(f"`make repro` failed in {clone}; its output is in {log}")


def reproduce_check(
    repo: Path, keep: Path | None = None, say: Callable[[str], None] = print
) -> Check:
    """Clone HEAD of `repo`, `make repro` in the clone, compare bytes and claims."""
    import yaml

    started = time.time()
    repo = repo.resolve()  # git runs from the work directory
    head = _run(["git", "rev-parse", "HEAD"], repo).strip()
    committed = json.loads(_run(["git", "show", f"{head}:reports/metrics.json"], repo))
    stages = len((yaml.safe_load(_run(["git", "show", f"{head}:dvc.lock"], repo)) or {})
                 .get("stages", {}))  # fmt: skip
    venv = Path(sys.prefix)
    work = keep_dir(keep) if keep else Path(tempfile.mkdtemp(prefix="entropy-lab-reproduce-"))
    try:
        clone = work / "clone"
        _run(["git", "clone", "--quiet", "--no-local", str(repo), str(clone)], work)
        _run(["git", "checkout", "--quiet", head], clone)
        if (repo / "downloads").is_dir():  # what `make gguf` fetched: checked by hash again
            shutil.copytree(repo / "downloads", clone / "downloads", copy_function=os.link)
        say(f"reproduce-check: `make repro` of {head[:10]} in {clone} ({stages} stages)")
        repro(clone, venv, work / "repro.log", stages, say)
        rerun = json.loads((clone / "reports" / "metrics.json").read_text(encoding="utf-8"))
        differ = changed_files(clone, venv / "bin" / "dvc")
        return Check(head, differ, claims(committed, rerun), time.time() - started)
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)


def record(check: Check, root: Path = Path(".")) -> Path:
    """reports/reproductions/<vendor>-<isa>-<date>.json: where and how this check ran."""
    from entropy_lab.provenance import write_json
    from entropy_lab.stages.common import machine

    m = machine()
    date = time.strftime("%Y-%m-%d", time.gmtime())
    vendor = re.sub(r"[^A-Za-z0-9_-]", "_", str(m["cpu_vendor"]))
    path = root / REPRODUCTIONS / f"{vendor}-{widest_isa()}-{date}.json"
    failed = [c.name for c in check.claims if not c.holds]
    write_json(path, {
        "date": date,
        "commit": check.commit,
        "machine": m | {"widest_isa": widest_isa()},
        "claims": {"held": len(check.claims) - len(failed), "failed": len(failed),
                   "failed_names": failed},
        "bytes": {"identical": not check.bytes_differ, "differ": check.bytes_differ},
        "wall_seconds": round(check.seconds, 1),
    })  # fmt: skip
    return path
