"""Experiment records: a run outside the default profile, kept as an artefact `verify` checks.

A record is a folder `reports/experiments/<name>/` written by `entropy-lab record-experiment`
in the repository where `dvc exp run` ran: the exact command, the commit it ran on, the run
record of each stage it ran (where and how long), its params.yaml and dvc.lock, and the report
it produced (metrics.json, headline.json, provenance.json, report.md and its figures). Its
adapters and data stay in the DVC cache (and a remote or bundle) under the hashes its dvc.lock
records.

`check` is what `verify` does with each record. Every file of the record is checked:
- its form: regular files only (no link, no device), each of bounded size, nothing unknown;
- record.json: the name is the folder's, the command a `dvc exp run` whose `-S` overrides of
  the commit's params.yaml give the record's params.yaml, the commit in this repository;
- dvc.lock: each stage's code hashes are the commit's files (the run ran that commit's code),
  its params are the record's params.yaml, and its report outputs are the record's files;
- runs/: one run record per stage the experiment ran (its lock entry differs from the
  commit's), each at the record's commit with no uncommitted code, its seconds record.json's;
- report.md links only files the record holds.

Then the numbers, where they can be recomputed here: the teaching numbers from the evaluation
records and the seeding study from the A/B metric tables (found by their lock hashes in the
workspace, the DVC cache or a bundle), when the stage code is unchanged since the commit. The
rest is reported as "hash-checked only", never as reproduced.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from entropy_lab.checks import Verification
from entropy_lab.errors import UserError
from entropy_lab.store import (
    Store,
    dir_md5,
    listing_of,
    lock_outs,
    md5_file,
    read_bounded,
    regular_file,
)

RECORDS = Path("reports/experiments")
REPORT_FILES = ("metrics.json", "headline.json", "provenance.json", "report.md")
TOP_FILES = ("record.json", "params.yaml", "dvc.lock", *REPORT_FILES)
# A record's files are its run's and never change; where its words were wrong (not its
# numbers), errata.md quotes each wrong phrase and says what is right, as a journal would.
ERRATA = "errata.md"
ERRATUM = re.compile(r'^- "([^"\n]{8,300})": \S.*$', re.MULTILINE)
SUBDIRS = ("runs", "figures")
MAX_FILE = 16 * 2**20  # no file of a record is larger (a lock is ~100 KB, a figure ~200 KB)
MAX_NAME = 64
MACHINE_KEYS = ("cpu_vendor", "cpu_model", "cpu_capability", "torch_threads", "torch")
LINK = re.compile(r"\]\(([^)\s]+)")


def overrides(command: str) -> list[tuple[str, Any]]:
    """The `-S key=value` (or `--set-param`) overrides of a `dvc exp run` command, values parsed
    as DVC parses them (YAML); a leading `+` (add a key) is dropped. Anything but a
    `dvc exp run` command line is refused."""
    try:
        args = shlex.split(command)
    except ValueError as exc:
        raise UserError(f"--command {command!r}: not a shell command line ({exc})") from None
    if args[:3] != ["dvc", "exp", "run"]:
        raise UserError(f"--command {command[:80]!r}: not a `dvc exp run ...` command")
    out = []
    for flag, value in itertools.pairwise(args):
        if flag in ("-S", "--set-param"):
            key, sep, raw = value.partition("=")
            if not sep or not key.lstrip("+"):
                raise UserError(f"--command: -S {value!r} is not key=value")
            try:
                out.append((key.lstrip("+"), yaml.safe_load(raw)))
            except (yaml.YAMLError, ValueError) as exc:  # ValueError: an integer too long to read
                reason = str(exc).splitlines()[0][:120]
                raise UserError(
                    f"--command: -S {value[:80]!r}: not a YAML value ({reason})"
                ) from None
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
    return subprocess.run(
        ["git", "--no-optional-locks", *args], cwd=repo, capture_output=True, encoding="utf-8",
        errors="replace",
    )  # fmt: skip


def yaml_at(repo: Path, rev: str, path: str) -> Any:
    shown = git(repo, "show", f"{rev}:{path}")
    return None if shown.returncode else yaml.safe_load(shown.stdout)


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


def stages_run(lock: dict[str, Any], baseline: dict[str, Any] | None) -> list[str]:
    """The stages an experiment ran: those whose lock entry differs from its commit's."""
    before = (baseline or {}).get("stages") or {}
    return sorted(s for s, entry in lock["stages"].items() if entry != before.get(s))


def run_record(path: Path) -> dict[str, Any]:
    """A stage's run record, checked: its machine, commit and (finite, >= 0) seconds."""
    try:
        r = json.loads(read_bounded(path, MAX_FILE))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not readable JSON ({type(exc).__name__})") from None
    machine = r.get("machine") if isinstance(r, dict) else None
    if not isinstance(machine, dict) or not set(MACHINE_KEYS) <= set(machine):
        raise UserError(f"{path}: not a run record (its machine lacks {', '.join(MACHINE_KEYS)})")
    s = r.get("seconds")
    if isinstance(s, bool) or not isinstance(s, int | float) or not math.isfinite(s) or s < 0:
        raise UserError(f"{path}: seconds {s!r} is not a duration")
    if not isinstance(r.get("commit"), str) or not isinstance(r.get("code_changed"), bool):
        raise UserError(f"{path}: not a run record (no commit or code_changed)")
    return r


def read_lock(path: Path) -> dict[str, Any]:
    try:
        lock = yaml.safe_load(read_bounded(path, MAX_FILE))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not readable YAML ({type(exc).__name__})") from None
    if not isinstance(lock, dict) or not isinstance(lock.get("stages"), dict):
        raise UserError(f"{path}: not a DVC lock file")
    return lock


def code_problems(repo: Path, commit: str, lock: dict[str, Any], ran: list[str]) -> list[str]:
    """The code dependencies (under src/) of each stage the experiment ran must hash as the
    lock says at `commit`: it ran that commit's code. (The stages it did not run are the
    commit's own lock entries.)"""
    files, out = source_md5s(repo, commit), []
    for stage in ran:
        for dep in (lock["stages"][stage] or {}).get("deps") or []:
            path, md5 = str(dep.get("path", "")), str(dep.get("md5", ""))
            if not path.startswith("src/"):
                continue  # data: its hash is DVC's to check
            if md5.endswith(".dir"):
                prefix = path.rstrip("/") + "/"
                got = dir_md5([{"md5": h, "relpath": p[len(prefix):]}
                               for p, h in files.items() if p.startswith(prefix)])  # fmt: skip
            else:
                got = files.get(path)
            if got != md5:
                out.append(f"dvc.lock: stage {stage}'s {path} is not commit {commit[:10]}'s "
                           "(it ran on other code)")  # fmt: skip
    return out


def source_md5s(repo: Path, commit: str) -> dict[str, str]:
    """md5 of every file under src/ at `commit` (what dvc.lock records for code)."""
    import hashlib

    tree = git(repo, "ls-tree", "-r", "-z", commit, "--", "src/").stdout
    entries = [line.split("\t", 1) for line in tree.split("\0") if line]
    oids = [meta.split()[2] for meta, _ in entries]
    batch = subprocess.run(["git", "cat-file", "--batch"], cwd=repo, capture_output=True,
                           input="\n".join(oids).encode() + b"\n").stdout  # fmt: skip
    out, at = {}, 0
    for (_meta, path), _oid in zip(entries, oids, strict=True):
        header_end = batch.index(b"\n", at)
        size = int(batch[at:header_end].split()[2])
        out[path] = hashlib.md5(batch[header_end + 1 : header_end + 1 + size]).hexdigest()
        at = header_end + 1 + size + 1
    return out


def dotted(params: dict[str, Any], key: str) -> Any:
    node: Any = params
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return KeyError
        node = node[part]
    return node


def same(a: Any, b: Any) -> bool:
    """A param as dvc.lock recorded it and as params.yaml gives it: DVC writes some floats as
    strings (`tail: '1e-09'`), so a number and its string are the same value."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, str) != isinstance(b, str) and not isinstance(a, bool | None) \
            and not isinstance(b, bool | None):  # fmt: skip
        try:
            return float(a) == float(b)
        except (TypeError, ValueError):
            return False
    return a == b


def lock_param_problems(lock: dict[str, Any], params: dict[str, Any]) -> list[str]:
    """Every param a stage's lock entry recorded must be the params.yaml value."""
    out = []
    for stage, entry in lock["stages"].items():
        for key, value in ((entry or {}).get("params") or {}).get("params.yaml", {}).items():
            if not same(dotted(params, key), value):
                out.append(f"dvc.lock: stage {stage} ran with {key} = {repr(value)[:60]}, "
                           f"params.yaml says {repr(dotted(params, key))[:60]}")  # fmt: skip
    return out


def record(
    name: str, command: str, source: Path, root: Path = Path("."), replace: bool = False
) -> Path:
    """Write the record of the experiment whose outputs are in the repository `source` (where
    `dvc exp run` ran), into `root`'s reports/experiments/<name>/. Everything is checked
    before anything is written."""
    from entropy_lab.provenance import atomic_dir, write_json
    from entropy_lab.schema import NAME_PATTERN

    if len(name) > MAX_NAME or not re.fullmatch(NAME_PATTERN, name):
        raise UserError(f"experiment name {name[:80]!r}: letters, digits, '.', '_' and '-', "
                        f"at most {MAX_NAME} characters")  # fmt: skip
    target = root / RECORDS / name
    if target.exists() and not replace:
        raise UserError(f"{target} exists; pass --replace to replace the committed record")
    changes = overrides(command)
    head = git(source, "rev-parse", "HEAD").stdout.strip()
    if not head:
        raise UserError(f"{source}: not a git repository (the experiment's baseline commit)")
    if git(root, "cat-file", "-e", f"{head}^{{commit}}").returncode:
        raise UserError(f"--from {source}: its commit {head[:10]} is not in this repository")
    for f in (*REPORT_FILES, "figures", "../params.yaml", "../dvc.lock"):
        if not (source / "reports" / f).exists():
            raise UserError(f"no {source / 'reports' / f}; run the experiment first")
    params = yaml.safe_load(read_bounded(source / "params.yaml", MAX_FILE))
    if apply_overrides(yaml_at(source, "HEAD", "params.yaml") or {}, changes) != params:
        raise UserError(
            f"--command: its -S overrides of the commit's params.yaml do not give {source}/params.yaml"
        )
    lock = pipeline_lock(source)
    ran = stages_run(lock, yaml_at(source, "HEAD", "dvc.lock"))
    problems = code_problems(source, head, lock, ran) + lock_param_problems(lock, params)
    problems += output_problems(lock, source / "reports", {f: f for f in REPORT_FILES})
    if problems:
        raise UserError(
            f"{source}: {problems[0]}; run `dvc exp run` to completion on a clean commit"
        )
    runs = {}
    for stage in ran:
        r = run_record(source / "runs" / f"{stage}.json")
        if r["commit"] != head or r["code_changed"]:
            raise UserError(f"{source}/runs/{stage}.json: ran on {r['commit'][:10]}"
                            f"{' with uncommitted code' if r['code_changed'] else ''}, "
                            f"not on {head[:10]}; rerun the stage")  # fmt: skip
        runs[stage] = r
    if not runs:
        raise UserError(f"{source}: its dvc.lock is the commit's; no stage of an experiment ran")
    baseline = metrics_at(source, "HEAD")
    if baseline is None:
        raise UserError(f"{source}: its commit has no reports/metrics.json to compare the run with")
    metrics = json.loads(read_bounded(source / "reports" / "metrics.json", MAX_FILE))
    with atomic_dir(target) as tmp:
        for f in REPORT_FILES:
            shutil.copy(source / "reports" / f, tmp / f)
        shutil.copytree(source / "reports" / "figures", tmp / "figures", symlinks=True)
        shutil.copy(source / "params.yaml", tmp / "params.yaml")
        (tmp / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False), encoding="utf-8")
        (tmp / "runs").mkdir()
        for stage in runs:
            shutil.copy(source / "runs" / f"{stage}.json", tmp / "runs" / f"{stage}.json")
        first = next(iter(runs.values()))["machine"]
        write_json(
            tmp / "record.json",
            {
                "name": name,
                "command": command,
                "commit": head,
                "recorded": time.strftime("%Y-%m-%d", time.gmtime()),
                "machine": {k: first[k] for k in MACHINE_KEYS},
                "seconds": {stage: r["seconds"] for stage, r in runs.items()},
                "changed": changed_strands(metrics, baseline),
            },
        )
        if problems := structure_problems(tmp):
            raise UserError(f"{source}: {problems[0]}")
    return target


def pipeline_lock(source: Path) -> dict[str, Any]:
    """The experiment's dvc.lock, its stages only: DVC keeps the entries of stages a run's
    params removed (`ab.models` changed: the old model's A/B stages), which are not the run's."""
    import logging

    from dvc.repo import Repo

    lock = read_lock(source / "dvc.lock")
    if not (source / "dvc.yaml").is_file():
        return lock  # no pipeline to read the stages from (a hand-made repository)
    logging.getLogger("dvc").setLevel(logging.ERROR)
    try:
        with Repo(str(source)) as repo:
            stages = {s.name for s in repo.index.stages}
    except Exception as exc:  # DVC's own errors about its files, as one line
        raise UserError(f"{source}: DVC cannot read its pipeline ({str(exc)[:120]})") from None
    return lock | {"stages": {k: v for k, v in lock["stages"].items() if k in stages}}


def output_problems(lock: dict[str, Any], directory: Path, files: dict[str, str]) -> list[str]:
    """The report files in `directory` (record name -> name under reports/) and its figures
    must be the outputs the lock recorded."""
    outs, out = lock_outs(lock), []
    for here, there in files.items():
        want = outs.get(f"reports/{there}", ("",))[0]
        if md5_file(directory / here) != want:
            out.append(f"{here} is not the file its dvc.lock recorded")
    figures = directory / "figures"
    if figures.is_dir() and dir_md5(listing_of(figures)) != outs.get("reports/figures", ("",))[0]:
        out.append("figures/ is not the folder its dvc.lock recorded")
    return out


def structure_problems(directory: Path) -> list[str]:
    """A record holds its known files and folders only, each a regular file (no link, FIFO or
    device) of at most MAX_FILE bytes, and report.md links only files it holds."""
    out = []
    for p in sorted(directory.rglob("*")):
        rel = p.relative_to(directory)
        if p.is_symlink():
            out.append(f"{rel} is a link; a record holds regular files only")
        elif p.is_dir():
            if rel.as_posix() not in SUBDIRS:
                out.append(f"{rel}/: not part of a record")
        elif rel.as_posix() not in (*TOP_FILES, ERRATA) and rel.parts[0] not in SUBDIRS:
            out.append(f"{rel}: not part of a record")
        else:
            try:
                regular_file(p, MAX_FILE)
            except UserError as exc:
                out.append(str(exc))
    out += [f"{f}: missing" for f in TOP_FILES if not (directory / f).is_file()]
    if not any((directory / "runs").glob("*.json")):
        out.append("runs/: no run record")
    if not out and (directory / ERRATA).exists():
        out += [f"{ERRATA}: {p}" for p in errata_problems(directory)]
    if not out:
        text = read_bounded(directory / "report.md", MAX_FILE).decode("utf-8", "replace")
        for target in LINK.findall(text):
            if target.startswith(("http://", "https://", "#")):
                continue
            file = target.split("#")[0]
            inside = not file.startswith("/") and ".." not in Path(file).parts
            if not inside or not (directory / file).is_file():
                out.append(f"report.md links {target}, which the record does not hold")
    return out


def errata(directory: Path) -> list[str]:
    """The phrases of report.md that errata.md corrects (none without errata.md)."""
    if not (directory / ERRATA).is_file():
        return []
    return ERRATUM.findall(read_bounded(directory / ERRATA, MAX_FILE).decode("utf-8", "replace"))


def errata_problems(directory: Path) -> list[str]:
    """errata.md corrects at least one phrase, and each phrase it quotes is in report.md."""
    quoted = errata(directory)
    if not quoted:
        return ['no erratum; each is a line `- "<phrase of report.md>": <correction>`']
    text = read_bounded(directory / "report.md", MAX_FILE).decode("utf-8", "replace")
    return [f"quotes {q[:60]!r}, which report.md does not hold" for q in quoted if q not in text]


def record_json(directory: Path) -> dict[str, Any]:
    try:
        rec = json.loads(read_bounded(directory / "record.json", MAX_FILE))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"record.json: not readable JSON ({type(exc).__name__})") from None
    want = {"name": str, "command": str, "commit": str, "recorded": str, "machine": dict,
            "seconds": dict, "changed": list}  # fmt: skip
    if not isinstance(rec, dict) or any(not isinstance(rec.get(k), t) for k, t in want.items()):
        raise UserError("record.json: " + ", ".join(want) + " are required")
    if rec["name"] != directory.name:
        raise UserError(f"record.json: name {rec['name'][:80]!r} is not the folder's")
    if not re.fullmatch(r"[0-9a-f]{40}", rec["commit"]):
        raise UserError("record.json: commit is not a 40-digit git hash")
    return rec


def check(
    directory: Path, root: Path = Path("."), caches: list[Path] | None = None
) -> Verification:
    """Every problem with one record, what of it was recomputed, and what only hash-checked."""
    from entropy_lab.config import parse_params

    name = directory.name
    tag = f"experiment {name}"
    if problems := structure_problems(directory):
        return Verification(problems=[f"{tag}: {p}" for p in problems])
    rec = record_json(directory)
    if git(root, "cat-file", "-e", f"{rec['commit']}^{{commit}}").returncode:
        return Verification(problems=[f"{tag}: commit {rec['commit']} is not in this repository"])
    lock = read_lock(directory / "dvc.lock")
    params = yaml.safe_load(read_bounded(directory / "params.yaml", MAX_FILE))
    problems = []
    if apply_overrides(yaml_at(root, rec["commit"], "params.yaml") or {},
                       overrides(rec["command"])) != params:  # fmt: skip
        problems.append("params.yaml is not the commit's params with the command's -S overrides")
    ran = stages_run(lock, yaml_at(root, rec["commit"], "dvc.lock"))
    problems += code_problems(root, rec["commit"], lock, ran) + lock_param_problems(lock, params)
    problems += output_problems(lock, directory, {f: f for f in REPORT_FILES})
    problems += run_problems(directory, rec, ran)
    metrics = json.loads(read_bounded(directory / "metrics.json", MAX_FILE))
    if not problems and rec["changed"] != changed_strands(
        metrics, metrics_at(root, rec["commit"]) or {}
    ):
        problems.append(
            "`changed` in record.json is not what its metrics changed from the commit's"
        )
    if problems:
        return Verification(problems=[f"{tag}: {p}" for p in problems])
    try:
        typed = parse_params(params, str(directory / "params.yaml"))
    except UserError as exc:  # params of an older schema: today's code cannot recompute them
        out = Verification(unchecked=[
            f"{tag}: its numbers hash-checked only (today's params schema does not read its "
            f"params.yaml: {str(exc).split(': ', 1)[-1]}; check out {rec['commit'][:10]} to "
            "recompute them)"])  # fmt: skip
    else:
        out = recompute(
            tag, rec["commit"], metrics, typed, Store(root, lock, list(caches or [])), root
        )
    out.checked.insert(0, f"{tag}: every file against its dvc.lock, commit, params and command")
    if quoted := errata(directory):
        out.checked.insert(1, f"{tag}: {ERRATA} corrects {len(quoted)} phrase(s) of report.md")
    return out


def run_problems(directory: Path, rec: dict[str, Any], ran: list[str]) -> list[str]:
    """runs/ holds one run record per stage the experiment ran, each at the record's commit
    on committed code, with the seconds record.json gives."""
    out = []
    have = sorted(p.stem for p in (directory / "runs").glob("*.json"))
    if have != ran:
        out.append(f"runs/ holds {have}, the stages it ran are {ran}")
    for stage in set(have) & set(ran):
        try:
            r = run_record(directory / "runs" / f"{stage}.json")
        except UserError as exc:
            out.append(str(exc))
            continue
        if r["commit"] != rec["commit"] or r["code_changed"]:
            out.append(f"runs/{stage}.json did not run on the record's commit's code")
        if rec["seconds"].get(stage) != r["seconds"]:
            out.append(f"record.json's seconds for {stage} are not its run record's")
    if set(rec["seconds"]) != set(ran):
        out.append("record.json's seconds are not those of the stages it ran")
    return out


def unchanged_since(root: Path, commit: str, module: str) -> bool:
    """Whether every file of a stage's closure is as it was at `commit` (then today's code
    recomputes what that commit's did)."""
    from entropy_lab.closure import SRC, closure

    files = [p.relative_to(SRC.parent).as_posix() for p in closure(module)]
    return git(root, "diff", "--quiet", commit, "--", *files).returncode == 0


def recompute(
    tag: str, commit: str, metrics: dict, params, store: Store, root: Path
) -> Verification:
    """The record's numbers that can be recomputed here; the rest, hash-checked only."""
    from entropy_lab.report.numbers import ab_tables, diff, recompute_ab, recompute_teaching

    out = Verification()

    def attempt(part: str, module: str, files: list[str], again) -> None:
        if not unchanged_since(root, commit, module):
            out.unchecked.append(f"{tag}: {part} hash-checked only ({module} changed since "
                                 f"{commit[:10]}; check it out there to recompute)")  # fmt: skip
            return
        found = {rel: store.find(rel) for rel in files}
        if missing := [rel for rel, p in found.items() if p is None]:
            out.unchecked.append(f"{tag}: {part} hash-checked only; recomputing it needs "
                                 + "; ".join(store.needs(r) for r in missing))  # fmt: skip
            return
        out.problems += [f"{tag}: {d}" for d in again(found)]
        out.checked.append(f"{tag}: {part} recomputed")

    for model in metrics.get("teaching", {}):
        rel, seeded = f"data/eval/{model}/records.parquet", f"data/eval/{model}/seeded.parquet"
        files = [rel] + ([seeded] if store.expected(seeded) else [])
        attempt(f"teaching/{model}", "entropy_lab.stages.evaluate", files,
                lambda f, m=model, rel=rel, s=seeded: diff(metrics["teaching"][m],
                    recompute_teaching(params, m, f[rel], f.get(s)), f"teaching.{m}"))  # fmt: skip
    tables = ab_tables(params)
    attempt("seeding", "entropy_lab.stages.ab_analyze", [r for pair in tables for r in pair],
            lambda f: diff(metrics["ab"], recompute_ab(params, [(f[s], f[g]) for s, g in tables]),
                           "ab"))  # fmt: skip
    return out


def check_all(root: Path = Path("."), caches: list[Path] | None = None) -> Verification:
    """Every record's check; a record that cannot be read is one problem, not a traceback."""
    out = Verification()
    for d in sorted((root / RECORDS).glob("*")):
        if d.is_symlink() or not d.is_dir():
            out.problems.append(f"experiment {d.name}: not a record folder")
            continue
        try:
            out.add(check(d, root, caches))
        except (UserError, ValueError, TypeError, KeyError, AttributeError) as exc:
            out.problems.append(f"experiment {d.name}: unreadable record ({exc})")
    return out
