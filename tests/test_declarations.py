"""A declared analysis stays declared: what params call declared is what git holds at the
declaring commit, and no report calls an analysis "declared" unless that commit comes before
the results it judges (the default profile's committed results, or an experiment record's
run). A change after the data is a labelled deviation, never a declaration."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from entropy_lab.config import parse_params
from entropy_lab.generation.params import claim_digest
from tests.conftest import REPO

DECLARED = re.compile(r"declared in commit ([0-9a-f]{7,40}) \((\d{4}-\d{2}-\d{2})")


def git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)


def shallow() -> bool:
    return git("rev-parse", "--is-shallow-repository").stdout.strip() != "false"


pytestmark = pytest.mark.skipif(shallow(), reason="needs the repository's history")


def analysis_at(commit: str) -> dict:
    """The ab.analysis section of params.yaml as `commit` held it (raw: older params need not
    validate against today's schema)."""
    shown = git("show", f"{commit}:params.yaml")
    assert shown.returncode == 0, f"{commit} has no params.yaml"
    return yaml.safe_load(shown.stdout)["ab"]["analysis"]


def primary_fields(a: dict) -> dict:
    p = a["primary"]
    return {k: p[k] for k in ("comparisons", "endpoints", "margin_sd", "power")} | {
        "alpha": a["alpha"]}  # fmt: skip


def confirmatory_fields(a: dict) -> dict:
    return {k: v for k, v in a["confirmatory"].items() if k != "declared"}


def strictly_before(early: str, late: str) -> bool:
    same = git("rev-parse", early).stdout.strip() == git("rev-parse", late).stdout.strip()
    return not same and git("merge-base", "--is-ancestor", early, late).returncode == 0


def test_each_declaration_is_what_its_commit_declared():
    """params' `declared.digest` is the sha256 of the fields as the declaring commit held
    them, and its date is that commit's."""
    now = yaml.safe_load((REPO / "params.yaml").read_text())["ab"]["analysis"]
    checked = 0
    for key, fields in (("primary", primary_fields), ("confirmatory", confirmatory_fields)):
        declared = (now.get(key) or {}).get("declared")
        if not declared:
            continue
        assert claim_digest(fields(analysis_at(declared["commit"]))) == declared["digest"], key
        date = git("show", "-s", "--format=%ad", "--date=short", declared["commit"]).stdout
        assert date.strip() == declared["date"], key
        checked += 1
    assert checked >= 1


def reports() -> list[tuple[Path, str]]:
    """Every committed report and the commit of the results it reports."""
    out = []
    last = git("log", "-1", "--format=%H", "--", "reports/metrics.json").stdout.strip()
    out.append((REPO / "reports" / "report.md", last))
    for rec in sorted((REPO / "reports" / "experiments").glob("*/record.json")):
        out.append((rec.parent / "report.md", json.loads(rec.read_text())["commit"]))
    return out


@pytest.mark.parametrize(("report", "results"), reports(), ids=lambda x: str(x)[-60:])
def test_no_report_calls_an_analysis_declared_after_its_results(report, results):
    """Every "declared in commit X" comes before the run it judges (strictly: a declaration
    made in the same commit as the results is not before them)."""
    for commit, date in DECLARED.findall(report.read_text()):
        assert strictly_before(commit, results), (report, commit, results)
        assert git("show", "-s", "--format=%ad", "--date=short", commit).stdout.strip() == date


def test_a_run_that_changes_a_declared_field_is_post_hoc():
    """The report's words come from the digest: change the margin (as `dvc exp run -S` would)
    and the claim is post hoc."""
    from entropy_lab.report.numbers import profile

    data = yaml.safe_load((REPO / "params.yaml").read_text())
    declared = profile(parse_params(data))["ab"]["primary"]["declared"]
    assert declared["as_declared"]
    data["ab"]["analysis"]["primary"]["margin_sd"] = 0.15
    changed = profile(parse_params(data))["ab"]["primary"]["declared"]
    assert not changed["as_declared"]
