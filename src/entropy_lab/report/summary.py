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

import yaml

from entropy_lab.generation.params import Declaration
from entropy_lab.report import findings as f
from entropy_lab.report.format import fmt, mean_ci, pct, pct_ci, table
from entropy_lab.report.numbers import by_run, declaration

REPORT = "reports/report.md"
SECTIONS = {
    "harvest": "#1-entropy-harvest",
    "seeding": "#the-primary-claim",
    "aa": "#secondary-comparisons-exploratory",
    "teaching": "#3-teaching-randomness",
}
PAGES = {"README.md": ("timing", "findings", "reproductions"),
         "docs/experiments.md": ("experiments",), "docs/model-sizes.md": ("sizes",)}  # fmt: skip
REAL_MODELS = ("smollm2",)  # records of a real pretrained model lead the findings
SIZE_FIGURE = Path("docs/figures")  # model-sizes.png and .svg, for docs/model-sizes.md


def records(root: Path) -> dict[str, dict[str, Any]]:
    """Each committed experiment record: its record.json and metrics.json, by name, and
    whether it has errata. A record made before params held `evaluate.declared` is given
    today's declaration, judged against its own fields (tests/test_declarations.py checks
    that the declaring commit precedes the record's)."""
    declared = (yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))["evaluate"]
                .get("declared"))  # fmt: skip
    out = {}
    for d in sorted((root / "reports" / "experiments").glob("*/record.json")):
        metrics = json.loads((d.parent / "metrics.json").read_text(encoding="utf-8"))
        teaching = metrics["profile"]["teaching"]
        if "declared" not in teaching and declared:
            fields = {k: teaching[k] for k in ("primary", "close_tvd", "alpha")}
            teaching["declared"] = declaration(Declaration.model_validate(declared), fields)
        out[d.parent.name] = json.loads(d.read_text(encoding="utf-8")) | {
            "metrics": metrics,
            "errata": (d.parent / "errata.md").is_file(),
        }
    return out


def is_pilot(name: str) -> bool:
    """A record run to choose a later record's settings (named `*-pilot`)."""
    return name.endswith("-pilot")


def settings(rec: dict[str, Any]) -> str:
    """Every setting an experiment changed: its command's -S overrides."""
    from entropy_lab.experiments import overrides

    return ", ".join(f"`{k}={json.dumps(v, separators=(',', ':'))}`" for k, v in
                     overrides(rec["command"]))  # fmt: skip


def changed(rec: dict[str, Any]) -> list[tuple[str, str]]:
    """(strand, figure) for each strand whose results the record changed from the default
    profile at its commit (record.json's `changed`, which `verify` checks): a strand it left as
    the default ran it is the default's row."""
    m, out = rec["metrics"], []
    for strand in rec["changed"]:
        if strand == "seeding":
            out.append(("seeding", primary_cell(m)))
        else:
            model = strand.removeprefix("teaching/")
            out.append((f"teaching ({model})", teaching_cell(m, model)))
    if "confirmatory" in m.get("ab", {}):
        out.append(("seeding, confirmatory", confirmatory_cell(m)))
    return out


def declared_word(d: dict[str, Any] | None) -> str:
    if d is None:
        return "not declared"
    return (
        f"declared {d['commit']}"
        if d["as_declared"]
        else f"post hoc (declared {d['commit']} changed)"
    )


def primary_cell(m: dict[str, Any], key: str = "primary") -> str:
    """Per comparison and length: equivalent, different (which endpoint), or not shown; the
    scope (model, prompts, lengths), whether declared, and the margin on the raw scale."""
    spec = m["profile"]["ab"]["primary"]
    result = m["ab"][key] if key == "primary" else m["ab"]["deviations"][key]
    parts = []
    for comparison, runs in by_run(result).items():
        said = []
        for run, x in runs.items():
            length = run.split("/")[1]
            flat = f", {'/'.join(x['no_variation'])}: no variation" if x.get("no_variation") else ""
            if x["verdict"] == "equivalent":
                said.append(f"{length}: equivalent (p {fmt(x['p_iut'])}{flat})")
            else:
                worst = (x["differ"] or x["not_shown_equivalent"])[0]
                said.append(
                    f"{length}: {x['verdict']}, {worst} {f.d_ci(x['endpoints'][worst])}{flat}"
                )
        parts.append(f"{f.label(comparison)}: " + "; ".join(said))
    run = next(iter(result.values()))
    margins = "; ".join(f"{k} {v}" for k, v in f.raw_margins(result).items())
    scope = (f"{', '.join(m['profile']['ab']['models'])}, {run['prompts']} prompts, "
             f"{run['replicates']} replicates; "
             + (declared_word(spec["declared"]) if key == "primary" else "post hoc deviation"))  # fmt: skip
    return (
        f"±{fmt(spec['margin_sd'])} within-prompt SD ({scope}), by length: "
        + " · ".join(parts)
        + f". Margin on the raw scale: {margins}"
    )


def confirmatory_cell(m: dict[str, Any]) -> str:
    spec = m["profile"]["ab"]["confirmatory"]
    said = "; ".join(f.confirmatory_sentences(m["ab"]["confirmatory"], spec))
    return f"{declared_word(spec['declared'])}: {said}"


def teaching_cell(m: dict[str, Any], model: str) -> str:
    """The primary comparison per split, then what its variant (or, untaught, the
    base model) gives on every split: exact and sampled figures labelled."""
    evaluated, profile = m["teaching"][model], m["profile"]["teaching"]
    summary = evaluated["variants"]
    variant = profile["primary"][0] if profile["primary"][0] in summary else "base"
    cells = []
    for split, b in summary[variant].items():
        tvd_sampled = (f"TVD sampled {mean_ci(b['tvd_sampled'], b['tvd_sampled_ci'], b['exact_records'])}, "
                       if b.get("tvd_sampled") is not None else "")  # fmt: skip
        sampled = (f"valid {pct_ci(b['valid_rate'], b['valid_rate_ci'])} sampled, GOF "
                   f"{pct(b['gof_pass_rate'])}, {tvd_sampled}" if b.get("sampled_records") else
                   f"valid (exact) {fmt(b['support_mass'])}, ")  # fmt: skip
        cells.append(f"{split}: {sampled}TVD exact {mean_ci(b['tvd'], b['tvd_ci'], b['exact_records'])}"
                     f", within {fmt(profile['close_tvd'])} {pct(b['close_rate'])}")  # fmt: skip
    lead = (
        f.primary_teaching(evaluated, profile)
        if variant != "base"
        else "untaught (exact view, T = 1):"
    )
    return f"{lead} {variant}: " + "; ".join(cells)


def about_models(strand: str, m: dict[str, Any]) -> list[str]:
    """The models a findings row is about: a teaching row's own, the seeding study's models."""
    if strand.startswith("teaching ("):
        return [strand.removeprefix("teaching (").removesuffix(")")]
    return list(m["profile"]["ab"]["models"]) if strand.startswith("seeding") else []


def findings(metrics: dict[str, Any], recs: dict[str, dict[str, Any]]) -> str:
    """The README's findings: the records of the real model first, then one row per strand of
    the default profile, then the other records. A pilot (a record named `*-pilot`, run to
    choose a later record's settings) is listed in docs/experiments.md only."""
    h, ab = metrics["harvest"], metrics["ab"]
    aa = ab["aa"]["per_metric"]
    link = {k: f"[report]({REPORT}{v})" for k, v in SECTIONS.items()}
    rows = [
        ["harvest", "How much entropy do the sources carry?",
         "; ".join(f"{s}: {fmt(x['min_entropy'])} bits per raw byte (SP 800-90B), SP 800-22 "
                   f"{x['sts_passed']}/{x['sts_tests']}" for s, x in h.items()), link["harvest"]],
        ["seeding", "Does pool randomness change what the model writes (primary claim)?",
         primary_cell(metrics), link["seeding"]],
    ]  # fmt: skip
    for name in ab.get("deviations", {}):
        rows.append(["seeding", f"the same, deviation `{name}` (post hoc)",
                     primary_cell(metrics, name), link["seeding"]])  # fmt: skip
    runs = ", ".join(sorted({k.rsplit("/", 1)[0] for k in ab["primary"]}))
    rows.append(["seeding", "Does the analysis call identical arms different?",
                 f"A/A ({runs}): rejection rate before correction {fmt(aa['rate'])} [{fmt(aa['ci_low'])}, "
                 f"{fmt(aa['ci_high'])}] over {aa['tests']} tests: "
                 + ("above alpha" if aa["status"] == "anti-conservative" else "not above alpha"),
                 link["aa"]])  # fmt: skip
    for model in metrics["teaching"]:
        rows.append([f"teaching ({model})", "What does the model give, T = 1, on each split?",
                     teaching_cell(metrics, model), link["teaching"]])  # fmt: skip
    about = {id(r): about_models(r[0], metrics) for r in rows}
    for name in (n for n in recs if not is_pilot(n)):
        rec = recs[name]
        for strand, figure in changed(rec):
            rows.append([strand, f"experiment `{name}`: {settings(rec)}", figure,
                         f"[record](reports/experiments/{name}/report.md)"])  # fmt: skip
            about[id(rows[-1])] = about_models(strand, rec["metrics"])
    # a row leads when the model its finding is about is a real one (not when its command or
    # its text merely names one)
    lead = [r for r in rows if any(m in a for a in about[id(r)] for m in REAL_MODELS)]
    return table(["strand", "question", "finding (95% CI)", "where"],
                 lead + [r for r in rows if r not in lead])  # fmt: skip


def reproductions(root: Path) -> str:
    """One line per reproduction record (reports/reproductions/): which machines reproduced
    the committed outputs byte for byte, and which claim by claim."""
    lines = []
    for p in sorted((root / "reports" / "reproductions").glob("*.json")):
        r = json.loads(p.read_text(encoding="utf-8"))
        m, c = r["machine"], r["claims"]
        said = ("every committed byte reproduced" if r["bytes"]["identical"] else
                f"{len(r['bytes']['differ'])} outputs differ in their bytes")  # fmt: skip
        lines.append(f"- [{p.name}](reports/reproductions/{p.name}): {m['cpu_vendor']} "
                     f"{m['cpu_model']} ({m['widest_isa']}), commit `{r['commit'][:10]}`, "
                     f"{r['date']}: {said}; {c['held']} of {c['held'] + c['failed']} claims "
                     f"hold ({r['wall_seconds'] / 60:.0f} min)")  # fmt: skip
    if not lines:
        return "No reproduction is recorded yet (`entropy-lab reproduce-check --record`).\n"
    return "\n".join(lines) + "\n"


def experiments(recs: dict[str, dict[str, Any]]) -> str:
    """docs/experiments.md's table: one row per record, comparisons inside one record only."""
    rows = []
    for name, rec in recs.items():
        machine = rec["machine"]
        figures = [f"{strand}: {figure}" for strand, figure in changed(rec)]
        minutes = sum(rec["seconds"].values()) / 60
        errata = f" ([errata](../reports/experiments/{name}/errata.md))" if rec["errata"] else ""
        rows.append([
            f"[{name}](../reports/experiments/{name}/report.md){errata}", rec["recorded"],
            f"`{rec['commit'][:10]}`", f"{machine['cpu_vendor']} {machine['cpu_model']}, "
            f"{machine['cpu_capability']}, {machine['torch_threads']} threads ({minutes:.0f} "
            "stage-minutes)", f"`{rec['command']}`", "<br>".join(figures),
        ])  # fmt: skip
    return table(["record", "date", "commit", "machine (stage time)", "command", "figures"], rows)


def sizes(metrics: dict[str, Any], recs: dict[str, dict[str, Any]]) -> str:
    """docs/model-sizes.md's table: every taught model, from the default profile and the
    records that taught one, on the same evaluation prompts (the tasks stage reserves each
    split's first prompts before train takes its own, so they do not depend on the train
    count): per split, valid sampled, exact full-space TVD, within TVD 0.1, GOF pass."""
    sources = [("default profile", metrics, None)] + [
        (f"[{name}](../reports/experiments/{name}/report.md)", rec["metrics"], rec)
        for name, rec in recs.items()
    ]
    rows = []
    for where, m, rec in sources:
        for model, evaluated in m["teaching"].items():
            if rec is not None and f"teaching/{model}" not in rec["changed"]:
                continue  # the default profile's numbers, not this record's
            # a primary comparison against the base model names it twice: one row each
            for variant in dict.fromkeys(("base", *m["profile"]["teaching"]["primary"])):
                if variant not in evaluated["variants"]:
                    continue
                cells = []
                for split in ("validation", "test_template", "test_family"):
                    b = evaluated["variants"][variant].get(split)
                    cells.append("–" if b is None else (
                        f"{pct(b['valid_rate']) if b.get('sampled_records') else '(exact) ' + fmt(b['support_mass'])}"
                        f" · {mean_ci(b['tvd'], b['tvd_ci'], b['exact_records'])} · "
                        f"{pct(b['close_rate'])} · {pct(b['gof_pass_rate'])}"))  # fmt: skip
                size = m.get("sizes", {}).get(model)
                rows.append([model, f"{size:,}" if size else "–", variant, *cells, where])
    return table(["model", "parameters", "variant", "validation", "test_template",
                  "test_family", "from"], rows)  # fmt: skip


def newest_teaching(metrics: dict[str, Any], recs: dict[str, dict[str, Any]]):
    """Per model, the teaching results the sizes figure shows: those of the newest record that
    taught it (by its `recorded` date, then name; pilots aside), else the default profile's;
    and the models' parameter counts."""
    teaching, sizes = dict(metrics["teaching"]), dict(metrics.get("sizes", {}))
    for name, rec in sorted(recs.items(), key=lambda kv: kv[1]["recorded"]):
        for model, evaluated in rec["metrics"]["teaching"].items():
            if not is_pilot(name) and f"teaching/{model}" in rec["changed"]:
                teaching[model], sizes[model] = evaluated, rec["metrics"]["sizes"][model]
    return teaching, sizes


def size_figure(metrics: dict[str, Any], recs: dict[str, dict[str, Any]], out: Path) -> list[str]:
    """docs/model-sizes.md's figure: exact TVD and GOF pass rate against parameters."""
    from entropy_lab.report import figures

    return figures.save(figures.teaching_size(*newest_teaching(metrics, recs)), out, "model-sizes")


def block(text: str, marker: str, body: str) -> str:
    """`text` with the block between `<!-- generated:marker -->` markers replaced by `body`."""
    start, end = f"<!-- generated:{marker} -->", f"<!-- /generated:{marker} -->"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise ValueError(f"no {start} ... {end} block")
    return pattern.sub(lambda _: f"{start}\n{body}{end}", text)


def timing(root: Path) -> str:
    """One line: how long the committed default profile's stages took, and where."""
    runs = [
        json.loads(p.read_text(encoding="utf-8")) for p in sorted((root / "runs").glob("*.json"))
    ]
    m = runs[0]["machine"]
    minutes = sum(r["seconds"] for r in runs) / 60
    return (
        f"The committed outputs' stages took {minutes:.0f} minutes in all on "
        f"{m['cpu_vendor']} {m['cpu_model']} ({m['torch_threads']} threads; each stage's time "
        "and machine are in its run record, `runs/<stage>.json`); `make install` adds a few.\n"
    )


def render(root: Path = Path(".")) -> dict[str, str]:
    """Each generated page as it should read now."""
    metrics = json.loads((root / "reports" / "metrics.json").read_text(encoding="utf-8"))
    recs = records(root)
    bodies = {"findings": findings(metrics, recs), "experiments": experiments(recs),
              "timing": timing(root), "reproductions": reproductions(root),
              "sizes": sizes(metrics, recs)}  # fmt: skip
    out = {}
    for page, keys in PAGES.items():
        text = (root / page).read_text(encoding="utf-8")
        for key in keys:
            text = block(text, key, bodies[key])
        out[page] = text
    return out


if __name__ == "__main__":
    for page, text in render().items():
        Path(page).write_text(text, encoding="utf-8")
    size_figure(json.loads(Path("reports/metrics.json").read_text(encoding="utf-8")),
                records(Path(".")), SIZE_FIGURE)  # fmt: skip
