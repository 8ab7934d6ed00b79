"""The reviewer's `verify`: recompute every number of the report from the stored artefacts
and compare it with `reports/metrics.json`, rebuild the provenance from `dvc.lock` and the
manifests, render `report.md` again, ask DVC whether every artefact still matches
`dvc.lock`, and check every experiment record (entropy_lab.experiments). Returns the list of
differences; empty means the report and the records are reproduced.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

from entropy_lab.artefacts import read_json_object, read_yaml
from entropy_lab.errors import UserError
from entropy_lab.experiments import check_all
from entropy_lab.report import markdown
from entropy_lab.report.numbers import check_ledgers, headline, provenance, recompute

REPORTS = Path("reports")
REL_TOL = 1e-6  # recomputation on another machine may differ in the last bits of a float


def diff(reported: Any, recomputed: Any, path: str = "") -> list[str]:
    """Every leaf where two JSON trees disagree (floats within REL_TOL agree)."""
    if isinstance(reported, dict) and isinstance(recomputed, dict):
        out = []
        for k in sorted(set(reported) | set(recomputed)):
            where = f"{path}.{k}" if path else k
            if k not in recomputed:
                out.append(f"{where}: reported, but not recomputed")
            elif k not in reported:
                out.append(f"{where}: recomputed, but missing from the report")
            else:
                out += diff(reported[k], recomputed[k], where)
        return out
    if isinstance(reported, list) and isinstance(recomputed, list):
        if len(reported) != len(recomputed):
            return [f"{path}: reported {len(reported)} values, recomputed {len(recomputed)}"]
        return [
            d
            for i, (a, b) in enumerate(zip(reported, recomputed, strict=True))
            for d in diff(a, b, f"{path}[{i}]")
        ]
    if isinstance(reported, bool) or isinstance(recomputed, bool):
        same = reported is recomputed
    elif isinstance(reported, int | float) and isinstance(recomputed, int | float):
        same = math.isclose(reported, recomputed, rel_tol=REL_TOL, abs_tol=1e-12)
    else:
        same = reported == recomputed
    return [] if same else [f"{path}: reported {reported!r}, recomputed {recomputed!r}"]


def dvc_changes(root: Path) -> list[str]:
    """Artefacts, code or params that no longer match `dvc.lock` (DVC's own `status`)."""
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            status = repo.status()
    except Exception as exc:  # DVC's own errors about its files, as one line
        return [f"dvc status failed: {str(exc).strip().splitlines()[0][:200]}"]
    out = []
    for stage, changes in sorted(status.items()):
        for change in changes:
            if isinstance(change, str):
                out.append(f"dvc status: {stage}: {change}")
                continue
            for kind, entries in change.items():
                for path, state in entries.items() if isinstance(entries, dict) else []:
                    out.append(f"dvc status: {stage}: {kind} {path} {state}")
    return out


def verify(params, root: Path = Path(".")) -> list[str]:
    out = root / REPORTS
    for name in ("metrics.json", "headline.json", "provenance.json", "report.md"):
        if not (out / name).is_file():
            raise UserError(f"no {out / name}; run `dvc pull` (or `dvc repro`) first")
    reported = read_json_object(out / "metrics.json")
    recorded_prov = read_json_object(out / "provenance.json")
    lock = read_yaml(root / "dvc.lock")
    if not isinstance(lock, dict) or not isinstance(lock.get("stages"), dict):
        raise UserError(f"{root / 'dvc.lock'}: not a DVC lock file; `git checkout dvc.lock`")
    problems = dvc_changes(root)
    try:
        check_ledgers(root)
    except UserError as exc:
        problems.append(str(exc))
    problems += diff(reported, recompute(params, root))
    problems += [f"provenance.{d}" for d in diff(recorded_prov, provenance(params, root))]
    recorded_headline = read_json_object(out / "headline.json")
    problems += [f"headline.{d}" for d in diff(recorded_headline, headline(reported))]
    on_disk = (out / "report.md").read_text().splitlines()
    rendered = markdown.render(reported, recorded_prov).splitlines()
    for i, (a, b) in enumerate(itertools.zip_longest(on_disk, rendered), 1):
        if a != b:
            problems.append(f"report.md line {i} is {a!r}; metrics.json renders {b!r}")
    return problems + check_all(root)
