"""The README and docs/experiments.md quote only committed artefacts: their generated blocks
are what `python -m entropy_lab.report.summary` makes of reports/metrics.json, the run records
and the experiment records today."""

from __future__ import annotations

import copy
import json

import pytest

from entropy_lab.experiments import changed_strands
from entropy_lab.report import summary
from tests.conftest import REPO


def test_generated_pages_match_the_committed_artefacts():
    for page, text in summary.render(REPO).items():
        assert (REPO / page).read_text() == text, (
            f"{page} drifted from the artefacts: run `python -m entropy_lab.report.summary`"
        )


def test_the_size_figure_matches_the_committed_artefacts(tmp_path):
    metrics = json.loads((REPO / "reports" / "metrics.json").read_text())
    for name in summary.size_figure(metrics, summary.records(REPO), tmp_path):
        assert (tmp_path / name).read_bytes() == (REPO / summary.SIZE_FIGURE / name).read_bytes(), (
            f"docs/figures/{name} drifted from the artefacts: run `python -m entropy_lab.report.summary`"
        )


def test_the_size_figure_takes_each_model_from_its_newest_record_pilots_aside():
    metrics = json.loads((REPO / "reports" / "metrics.json").read_text())
    recs = summary.records(REPO)
    teaching, sizes = summary.newest_teaching(metrics, recs)
    taught = recs["smollm2-teaching"]["metrics"]["teaching"]["smollm2-135m-instruct"]
    assert teaching["smollm2-135m-instruct"] is taught  # not the pilot's, not the untaught default
    assert teaching["kjv-tiny"] is metrics["teaching"]["kjv-tiny"]
    assert sizes["kjv-small"] == recs["kjv-small-teaching"]["metrics"]["sizes"]["kjv-small"]


def test_a_block_is_replaced_between_its_markers_only():
    text = "a\n<!-- generated:x -->\nold\n<!-- /generated:x -->\nb\n"
    assert (
        summary.block(text, "x", "new\n")
        == "a\n<!-- generated:x -->\nnew\n<!-- /generated:x -->\nb\n"
    )
    with pytest.raises(ValueError, match="no <!-- generated:y -->"):
        summary.block(text, "y", "")


def test_a_record_lists_only_the_strands_it_changed():
    base = json.loads((REPO / "reports" / "metrics.json").read_text())
    metrics = copy.deepcopy(base)
    assert changed_strands(metrics, base) == []
    metrics["ab"]["primary"]["kjv-tiny/64/entropy_seed_vs_prng_seed"]["verdict"] = "equivalent"
    assert changed_strands(metrics, base) == ["seeding"]
    metrics["teaching"]["kjv-small"] = base["teaching"]["kjv-tiny"]
    assert changed_strands(metrics, base) == ["teaching/kjv-small", "seeding"]
    rows = summary.changed({"metrics": metrics, "changed": ["teaching/kjv-small", "seeding"]})
    assert [strand for strand, _ in rows] == ["teaching (kjv-small)", "seeding"]


def test_the_sizes_table_has_one_row_per_model_and_variant():
    base = json.loads((REPO / "reports" / "metrics.json").read_text())
    metrics = copy.deepcopy(base)
    model = next(iter(metrics["teaching"]))
    metrics["profile"]["teaching"]["primary"] = ["ce_kl", "base"]  # ce_kl vs the base model
    metrics["teaching"][model]["variants"].setdefault("ce_kl", {})
    rows = [line.split(" | ")[:3] for line in summary.sizes(metrics, {}).splitlines()[2:]]
    assert len(rows) == len({tuple(r) for r in rows})


def test_the_readme_findings_leave_pilots_to_docs_experiments():
    metrics = json.loads((REPO / "reports" / "metrics.json").read_text())
    recs = summary.records(REPO)
    assert "smollm2-teaching-pilot" in recs
    text = summary.findings(metrics, recs)
    assert "`smollm2-teaching-pilot`" not in text and "`smollm2-teaching`" in text
    assert "smollm2-teaching-pilot" in summary.experiments(recs)


def test_the_readme_findings_lead_with_the_real_models_rows_only():
    metrics = json.loads((REPO / "reports" / "metrics.json").read_text())
    lines = summary.findings(metrics, summary.records(REPO)).splitlines()[2:]
    strands = [line.split(" | ")[0].removeprefix("| ") for line in lines]
    first_other = next(i for i, s in enumerate(strands) if "smollm2" not in s and s != "seeding")
    assert all("smollm2" in s or s == "seeding" for s in strands[:first_other])
    assert strands[0] == "teaching (smollm2-135m-instruct)"
    assert "`smollm2-seeding`" in lines[1] and "`smollm2-teaching`" in lines[2]
    kjv_small = strands.index("teaching (kjv-small)")  # its command names smollm2 in models.use
    assert kjv_small > 2 and "smollm2" not in strands[kjv_small]
