"""Experiment records: a run outside the default profile, kept as an artefact `verify` checks.

A record is a folder `reports/experiments/<name>/` written by `entropy-lab record-experiment`
in the repository where `dvc exp run` ran: the exact command, the commit it ran on, the machine
each stage ran on (its run records), its params.yaml and dvc.lock, and the report it produced
(metrics.json, headline.json, provenance.json, report.md). Its adapters and data stay in the
DVC cache (and remote) under the hashes its dvc.lock records.

`check` is what `verify` does with each record: the commit exists; the params are the
commit's params with the command's `-S` overrides applied, nothing else; its metrics.json is
the file its dvc.lock recorded; and, where its evaluation records are in the DVC cache and the
evaluation code is the commit's, the teaching numbers recompute from them.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from entropy_lab.artefacts import read_json, read_yaml, require
from entropy_lab.errors import UserError

RECORDS = Path("reports/experiments")
REPORT_FILES = ("metrics.json", "headline.json", "provenance.json", "report.md")


def overrides(command: str) -> list[tuple[str, Any]]:
    """The `-S key=value` (or `--set-param`) overrides of a `dvc exp run` command, values parsed
    as DVC parses them (YAML); a leading `+` (add a key) is dropped."""
    try:
        args, out = shlex.split(command), []
    except ValueError as exc:
        raise UserError(f"--command {command!r}: not a shell command line ({exc})") from None
    for flag, value in itertools.pairwise(args):
        if flag in ("-S", "--set-param"):
            key, _, raw = value.partition("=")
            out.append((key.lstrip("+"), yaml.safe_load(raw)))
    return out


def apply_overrides(params: dict[str, Any], changes: list[tuple[str, Any]]) -> dict[str, Any]:
    out = json.loads(json.dumps(params))
    for key, value in changes:
        node, *path, last = [out, *key.split(".")]
        for part in path:
            node = node.setdefault(part, {}) if isinstance(node, dict) else None
            if not isinstance(node, dict):
                raise UserError(f"-S {key}: {part!r} is not a section of params.yaml")
        node[last] = value
    return out


def git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)


def record(name: str, command: str, source: Path, root: Path = Path(".")) -> Path:
    """Write the record of the experiment whose outputs are in the repository `source` (where
    `dvc exp run` ran), into `root`'s reports/experiments/<name>/."""
    from entropy_lab.provenance import atomic_dir, write_json
    from entropy_lab.schema import NAME_PATTERN

    if not re.fullmatch(NAME_PATTERN, name):
        raise UserError(f"experiment name {name!r}: letters, digits, '.', '_' and '-' only")
    head = git(source, "rev-parse", "HEAD")
    if head.returncode:
        raise UserError(f"{source}: not a git repository (the experiment's baseline commit)")
    runs = sorted((source / "runs").glob("*.json"))
    if not runs:
        raise UserError(f"{source}/runs: no run records; run the experiment first")
    machines = {p.stem: read_json(p) for p in runs}
    for stage, r in machines.items():
        if not isinstance(r, dict) or not {"machine", "seconds"} <= set(r):
            raise UserError(f"{source}/runs/{stage}.json: not a run record; rerun the stage")
    for f in (*REPORT_FILES, "../params.yaml", "../dvc.lock"):
        require(source / "reports" / f, "run the experiment first (`dvc exp run ...`)")
    base = yaml.safe_load(git(source, "show", "HEAD:params.yaml").stdout or "{}")
    if apply_overrides(base, overrides(command)) != read_yaml(source / "params.yaml"):
        raise UserError(
            f"--command: its -S overrides of the commit's params.yaml do not give {source}/params.yaml"
        )
    baseline = metrics_at(source, "HEAD")
    if baseline is None:
        raise UserError(f"{source}: its commit has no reports/metrics.json to compare the run with")
    changed = changed_strands(read_json(source / "reports" / "metrics.json"), baseline)
    with atomic_dir(root / RECORDS / name) as tmp:
        for f in REPORT_FILES:
            shutil.copy(source / "reports" / f, tmp / f)
        shutil.copy(source / "params.yaml", tmp / "params.yaml")
        shutil.copy(source / "dvc.lock", tmp / "dvc.lock")
        (tmp / "runs").mkdir()
        for p in runs:
            shutil.copy(p, tmp / "runs" / p.name)
        first = next(iter(machines.values()))["machine"]
        write_json(
            tmp / "record.json",
            {
                "name": name,
                "command": command,
                "commit": head.stdout.strip(),
                "recorded": time.strftime("%Y-%m-%d", time.gmtime()),
                "machine": {
                    k: first[k]
                    for k in ("cpu_vendor", "cpu_model", "cpu_capability", "torch_threads", "torch")
                },
                "seconds": {stage: r["seconds"] for stage, r in machines.items()},
                "changed": changed,
            },
        )
    return root / RECORDS / name


def metrics_at(repo: Path, rev: str) -> dict[str, Any] | None:
    """The default profile's reports/metrics.json as commit `rev` holds it (None: it has none)."""
    shown = git(repo, "show", f"{rev}:reports/metrics.json")
    return None if shown.returncode else json.loads(shown.stdout)


def changed_strands(metrics: dict[str, Any], baseline: dict[str, Any]) -> list[str]:
    """The strands whose results a run changed from the default profile's `baseline` metrics
    at its commit: `teaching/<model>` for each taught model, `seeding` for the primary claim."""
    out = [
        f"teaching/{model}"
        for model, evaluated in metrics.get("teaching", {}).items()
        if evaluated != baseline.get("teaching", {}).get(model)
    ]
    primary = metrics.get("ab", {}).get("primary")
    if primary and primary != baseline.get("ab", {}).get("primary"):
        out.append("seeding")
    return out


def md5(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def lock_outs(lock: dict[str, Any]) -> dict[str, str]:
    """Output path -> md5, every stage of a dvc.lock."""
    return {o["path"]: o["md5"] for s in lock.get("stages", {}).values() for o in s.get("outs", [])}


def check(directory: Path, root: Path = Path(".")) -> list[str]:
    """Every problem with one record (empty: it holds)."""
    from entropy_lab.config import parse_params

    name, problems = directory.name, []
    rec = read_json(directory / "record.json")
    if git(root, "cat-file", "-e", f"{rec['commit']}^{{commit}}").returncode:
        problems.append(f"experiment {name}: commit {rec['commit']} is not in this repository")
    else:
        base = yaml.safe_load(git(root, "show", f"{rec['commit']}:params.yaml").stdout)
        want = apply_overrides(base, overrides(rec["command"]))
        if want != read_yaml(directory / "params.yaml"):
            problems.append(f"experiment {name}: params.yaml is not the commit's params with "
                            "the command's -S overrides")  # fmt: skip
    metrics = read_json(directory / "metrics.json")
    lock = read_yaml(directory / "dvc.lock")
    if lock_outs(lock).get("reports/metrics.json") != md5(directory / "metrics.json"):
        problems.append(f"experiment {name}: metrics.json is not the file its dvc.lock recorded")
    if not problems and rec.get("changed") != changed_strands(
        metrics, metrics_at(root, rec["commit"]) or {}
    ):
        problems.append(f"experiment {name}: `changed` in record.json is not what its metrics "
                        "changed from the commit's")  # fmt: skip
    params = parse_params(read_yaml(directory / "params.yaml"), str(directory / "params.yaml"))
    if not problems and unchanged_since(root, rec["commit"], "entropy_lab.stages.evaluate"):
        problems += recompute_teaching(name, metrics, params, lock, root)
    return problems


def unchanged_since(root: Path, commit: str, module: str) -> bool:
    """Whether every file of a stage's closure is as it was at `commit` (then today's code
    recomputes what that commit's did)."""
    from entropy_lab.closure import SRC, closure

    files = [p.relative_to(SRC.parent).as_posix() for p in closure(module)]
    return git(root, "diff", "--quiet", commit, "--", *files).returncode == 0


def cached(root: Path, md5_hash: str) -> Path:
    return root / ".dvc" / "cache" / "files" / "md5" / md5_hash[:2] / md5_hash[2:]


def recompute_teaching(name: str, metrics: dict, params, lock: dict, root: Path) -> list[str]:
    """Each taught model's teaching numbers again, from its evaluation records in the DVC cache
    (where they are: a clone without them checks the rest)."""
    import pandas as pd

    from entropy_lab.evaluation.evaluate import rescore, summarize
    from entropy_lab.report.numbers import normalise
    from entropy_lab.report.verify import diff
    from entropy_lab.tasks.families import instantiate

    outs, problems = lock_outs(lock), []
    for model, reported in metrics["teaching"].items():
        listing = cached(root, outs.get(f"data/eval/{model}", "").removesuffix(".dir") + ".dir")
        if not listing.is_file():
            continue
        files = {e["relpath"]: e["md5"] for e in json.loads(listing.read_text())}
        parquet = cached(root, files.get("records.parquet", ""))
        if not parquet.is_file():
            continue
        rows = rescore(pd.read_parquet(parquet), instantiate(params.tasks), params.evaluate, model)
        again = normalise(summarize(rows, params.evaluate))
        kept = {k: v for k, v in reported.items() if k != "seeded"}
        problems += [f"experiment {name}: teaching.{model}.{d}" for d in diff(kept, again)]
    return problems


def check_all(root: Path = Path(".")) -> list[str]:
    """Every record's problems; a record that cannot be read is one problem, not a traceback."""
    out = []
    for d in sorted(p for p in (root / RECORDS).glob("*") if p.is_dir()):
        try:
            out += check(d, root)
        except (UserError, ValueError, TypeError, KeyError) as exc:
            out.append(f"experiment {d.name}: unreadable record ({exc})")
    return out
