"""The README's findings table and docs/experiments.md, generated from committed artefacts.

Every figure either page quotes comes from `reports/metrics.json` (the default profile) or an
experiment record's metrics.json (`reports/experiments/<name>/`); `python -m
entropy_lab.report.summary` rewrites the blocks between the `<!-- generated:... -->` markers,
and tests/test_summary.py fails when a committed page drifts from its artefacts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from entropy_lab.report import findings as f
from entropy_lab.report.format import fmt, mean_ci, pct_ci, table
from entropy_lab.report.numbers import by_run

REPORT = "reports/report.md"
SECTIONS = {
    "harvest": "#1-entropy-harvest",
    "seeding": "#the-primary-claim",
    "aa": "#secondary-comparisons-exploratory",
    "teaching": "#3-teaching-randomness",
}
PAGES = {"README.md": ("timing", "findings"), "docs/experiments.md": ("experiments",)}


def records(root: Path) -> dict[str, dict[str, Any]]:
    """Each committed experiment record: its record.json and metrics.json, by name."""
    out = {}
    for d in sorted((root / "reports" / "experiments").glob("*/record.json")):
        out[d.parent.name] = json.loads(d.read_text()) | {
            "metrics": json.loads((d.parent / "metrics.json").read_text())
        }
    return out


def changed(rec: dict[str, Any]) -> list[tuple[str, str]]:
    """(strand, figure) for each strand whose results the record changed from the default
    profile at its commit (record.json's `changed`, which `verify` checks): a strand it left as
    the default ran it is the default's row."""
    m, out = rec["metrics"], []
    for strand in rec["changed"]:
        if strand == "seeding":
            margin = m["profile"]["ab"]["primary"]["margin_sd"]
            out.append(("seeding", primary_cell(m["ab"]["primary"], margin)))
        else:
            model = strand.removeprefix("teaching/")
            out.append((f"teaching ({model})", teaching_cell(m["teaching"][model])))
    return out


def primary_cell(primary: dict[str, Any], margin: float) -> str:
    """Per comparison and length: equivalent, different (which endpoint), or not shown."""
    parts = []
    for comparison, runs in by_run(primary).items():
        said = []
        for run, x in runs.items():
            length = run.split("/")[1]
            if x["verdict"] == "equivalent":
                said.append(f"{length}: equivalent (p {fmt(x['p_iut'])})")
            else:
                worst = (x["differ"] or x["not_shown_equivalent"])[0]
                said.append(f"{length}: {x['verdict']}, {worst} {f.d_ci(x['endpoints'][worst])}")
        parts.append(f"{f.label(comparison)}: " + "; ".join(said))
    return f"±{fmt(margin)} within-prompt SD, by length: " + " · ".join(parts)


def teaching_cell(evaluated: dict[str, Any]) -> str:
    summary = evaluated["variants"]
    best = f.best_variant(summary)
    if best is None:
        return "–"
    b = summary[best]["validation"]
    return (
        f"{best}: valid {pct_ci(b['valid_rate'], b['valid_rate_ci'])}, full-space TVD "
        f"{mean_ci(b['tvd'], b['tvd_ci'], b['exact_records'])}, GOF pass "
        f"{pct_ci(b['gof_pass_rate'], b['gof_pass_ci'])} (valid answers only, a diagnostic: "
        f"{pct_ci(b['gof_pass_valid_rate'], b['gof_pass_valid_ci'])})"
    )


def findings(metrics: dict[str, Any], recs: dict[str, dict[str, Any]]) -> str:
    """The README's findings: one row per strand from the default profile, one per record."""
    h, ab = metrics["harvest"], metrics["ab"]
    aa = ab["aa"]["per_metric"]
    margin = metrics["profile"]["ab"]["primary"]["margin_sd"]
    link = {k: f"[report]({REPORT}{v})" for k, v in SECTIONS.items()}
    rows = [
        ["harvest", "How much entropy do the sources carry?",
         "; ".join(f"{s}: {fmt(x['min_entropy'])} bits per raw byte (SP 800-90B), SP 800-22 "
                   f"{x['sts_passed']}/{x['sts_tests']}" for s, x in h.items()), link["harvest"]],
        ["seeding", "Does pool randomness change what the model writes (primary claim)?",
         primary_cell(ab["primary"], margin), link["seeding"]],
        ["seeding", "Does the analysis call identical arms different?",
         f"A/A rejection rate before correction {fmt(aa['rate'])} [{fmt(aa['ci_low'])}, "
         f"{fmt(aa['ci_high'])}] over {aa['tests']} tests: "
         + ("above alpha" if aa["status"] == "anti-conservative" else "not above alpha"),
         link["aa"]],
    ]  # fmt: skip
    for model, evaluated in metrics["teaching"].items():
        rows.append([f"teaching ({model})", "What does sampling the taught model give, T = 1?",
                     teaching_cell(evaluated), link["teaching"]])  # fmt: skip
    for name, rec in recs.items():
        for strand, figure in changed(rec):
            rows.append([strand, f"experiment `{name}`", figure,
                         f"[record](reports/experiments/{name}/report.md)"])  # fmt: skip
    return table(["strand", "question", "finding (95% CI)", "where"], rows)


def experiments(recs: dict[str, dict[str, Any]]) -> str:
    """docs/experiments.md's table: one row per record, comparisons inside one record only."""
    rows = []
    for name, rec in recs.items():
        machine = rec["machine"]
        figures = [f"{strand}: {figure}" for strand, figure in changed(rec)]
        minutes = sum(rec["seconds"].values()) / 60
        rows.append([
            f"[{name}](../reports/experiments/{name}/report.md)", rec["recorded"],
            f"`{rec['commit'][:10]}`", f"{machine['cpu_vendor']} {machine['cpu_model']}, "
            f"{machine['cpu_capability']}, {machine['torch_threads']} threads ({minutes:.0f} min)",
            f"`{rec['command']}`", "<br>".join(figures),
        ])  # fmt: skip
    return table(["record", "date", "commit", "machine (stage time)", "command", "figures"], rows)


def block(text: str, marker: str, body: str) -> str:
    """`text` with the block between `<!-- generated:marker -->` markers replaced by `body`."""
    start, end = f"<!-- generated:{marker} -->", f"<!-- /generated:{marker} -->"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise ValueError(f"no {start} ... {end} block")
    return pattern.sub(lambda _: f"{start}\n{body}{end}", text)


def timing(root: Path) -> str:
    """One line: how long the committed default profile's stages took, and where."""
    runs = [json.loads(p.read_text()) for p in sorted((root / "runs").glob("*.json"))]
    m = runs[0]["machine"]
    minutes = sum(r["seconds"] for r in runs) / 60
    return (
        f"The committed outputs' stages took {minutes:.0f} minutes in all on "
        f"{m['cpu_vendor']} {m['cpu_model']} ({m['torch_threads']} threads; each stage's time "
        "and machine are in its run record, `runs/<stage>.json`); `make install` adds a few.\n"
    )


def render(root: Path = Path(".")) -> dict[str, str]:
    """Each generated page as it should read now."""
    metrics = json.loads((root / "reports" / "metrics.json").read_text())
    recs = records(root)
    bodies = {"findings": findings(metrics, recs), "experiments": experiments(recs),
              "timing": timing(root)}  # fmt: skip
    out = {}
    for page, keys in PAGES.items():
        text = (root / page).read_text()
        for key in keys:
            text = block(text, key, bodies[key])
        out[page] = text
    return out


if __name__ == "__main__":
    for page, text in render().items():
        Path(page).write_text(text)
