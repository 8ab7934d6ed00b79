"""The `report` stage and the reviewer's `verify`.

The stage writes, under `reports/`: `metrics.json` (every number the report shows),
`provenance.json` (where each section came from), `report.md` (rendered from those two),
`teaching.csv` (a dvc plot) and `figures/` (PNG and SVG).

`verify` recomputes every number from the stored artefacts and compares it with
`reports/metrics.json`, rebuilds the provenance from `dvc.lock` and the manifests, renders
`report.md` again, and asks DVC whether every artefact still matches `dvc.lock`. It returns
the list of differences; empty means the report is reproduced.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

from entropy_lab.errors import UserError
from entropy_lab.report import figures, markdown
from entropy_lab.report.numbers import gather, headline, provenance, recompute, sft_curves

REPORTS = Path("reports")
REL_TOL = 1e-6  # recomputation on another machine may differ in the last bits of a float


def teaching_rows(teaching: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (model, variant, split, family): the `dvc plots` view of teaching."""
    return [
        {
            "label": f"{model}/{split}/{family} {variant}",
            "model": model,
            "variant": variant,
            "split": split,
            "family": family,
            "tvd": f["tvd"],
            "tvd_low": (f["tvd_ci"] or [f["tvd"]] * 2)[0],
            "tvd_high": (f["tvd_ci"] or [f["tvd"]] * 2)[1],
            "valid_rate": f["valid_rate"],
            "gof_pass_rate": f["gof_pass_rate"],
        }
        for model, evaluated in teaching.items()
        for variant, splits in evaluated["variants"].items()
        for split, s in splits.items()
        for family, f in s["families"].items()
    ]


def check_ledgers(root: Path) -> int:
    """Every stage's pool ranges together (A/B samples, the tasks' seeded u's): no byte is read
    by two of them. Returns how many ranges were checked."""
    from entropy_lab.entropy.pool import check_ledger, read_ledger

    ranges = [r for p in sorted((root / "data").glob("**/ledger.json")) for r in read_ledger(p)]
    check_ledger(ranges)
    return len(ranges)


def run_stage(params, root: Path = Path(".")) -> None:
    import pandas as pd

    from entropy_lab.evaluation.evaluate import EVAL_DIR
    from entropy_lab.provenance import atomic_dir, atomic_file, write_json

    check_ledgers(root)
    numbers, prov = gather(params, root), provenance(params, root)
    out = root / REPORTS
    with atomic_dir(out / "figures") as tmp:
        figures.save(figures.harvest(numbers["harvest"]), tmp, "harvest")
        margin = numbers["profile"]["ab"]["equivalence_margin_sd"]
        figures.save(figures.forest(numbers["ab"]["tests"], margin), tmp, "ab_forest")
        figures.save(figures.aa_pvalues(numbers["ab"]), tmp, "ab_aa_pvalues")
        for model, summary in numbers["teaching"].items():
            figures.save(figures.teaching_tvd(summary["variants"]), tmp, f"teaching_tvd_{model}")
            if summary["temperature"]:
                fig = figures.teaching_temperature(summary["temperature"])
                figures.save(fig, tmp, f"teaching_temperature_{model}")
            if summary["seeded"]:
                fig = figures.teaching_seeded(summary["seeded"])
                figures.save(fig, tmp, f"teaching_seeded_{model}")
            curves = sft_curves(numbers, model)
            if curves:
                figures.save(figures.teaching_curve(curves), tmp, f"teaching_curve_{model}")
            records = pd.read_parquet(root / EVAL_DIR / model / "records.parquet")
            figures.save(figures.teaching_samples(records), tmp, f"teaching_samples_{model}")
            figures.save(figures.teaching_probs(records), tmp, f"teaching_probs_{model}")
        if len(numbers["sizes"]) > 1:
            fig = figures.teaching_size(numbers["teaching"], numbers["sizes"])
            figures.save(fig, tmp, "teaching_size")
    with atomic_file(out / "teaching.csv") as tmp:
        pd.DataFrame(teaching_rows(numbers["teaching"])).to_csv(tmp, index=False)
    write_json(out / "metrics.json", numbers)
    write_json(out / "headline.json", headline(numbers))
    write_json(out / "provenance.json", prov)
    with atomic_file(out / "report.md") as tmp:
        tmp.write_text(markdown.render(numbers, prov))


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

    with Repo(str(root)) as repo:
        status = repo.status()
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
    reported = json.loads((out / "metrics.json").read_text())
    recorded_prov = json.loads((out / "provenance.json").read_text())
    problems = dvc_changes(root)
    try:
        check_ledgers(root)
    except UserError as exc:
        problems.append(str(exc))
    problems += diff(reported, recompute(params, root))
    problems += [f"provenance.{d}" for d in diff(recorded_prov, provenance(params, root))]
    recorded_headline = json.loads((out / "headline.json").read_text())
    problems += [f"headline.{d}" for d in diff(recorded_headline, headline(reported))]
    on_disk = (out / "report.md").read_text().splitlines()
    rendered = markdown.render(reported, recorded_prov).splitlines()
    for i, (a, b) in enumerate(itertools.zip_longest(on_disk, rendered), 1):
        if a != b:
            problems.append(f"report.md line {i} is {a!r}; metrics.json renders {b!r}")
    return problems
