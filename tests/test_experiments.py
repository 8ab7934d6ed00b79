"""Experiment records: what `record-experiment` keeps and what `verify` checks of it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from entropy_lab import experiments as ex
from tests.conftest import REPO

COMMAND = (
    "dvc exp run -n weighted -S 'models.use=[kjv-tiny,kjv-small]' "
    "-S 'models.build=[kjv-tiny,kjv-small]' -S training.lr=0.001 "
    "-S '+training.family_weights.k_of_n=3' --set-param evaluate.samples=1000"
)


def test_overrides_are_read_as_dvc_reads_them():
    assert ex.overrides(COMMAND) == [
        ("models.use", ["kjv-tiny", "kjv-small"]),
        ("models.build", ["kjv-tiny", "kjv-small"]),
        ("training.lr", 0.001),
        ("training.family_weights.k_of_n", 3),
        ("evaluate.samples", 1000),
    ]
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    changed = ex.apply_overrides(params, ex.overrides(COMMAND))
    assert changed["training"]["family_weights"] == {"k_of_n": 3}
    assert changed["evaluate"]["samples"] == 1000 and params["evaluate"]["samples"] == 200


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def recorded(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """A repository with one commit, and a record of an experiment made on it."""
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(REPO / "params.yaml", repo / "params.yaml")
    (repo / "reports").mkdir()
    (repo / "reports" / "metrics.json").write_text(json.dumps({"teaching": {}, "ab": {}}))
    git(repo, "init", "-q")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "add", "params.yaml", "reports")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    params = ex.apply_overrides(
        yaml.safe_load((repo / "params.yaml").read_text()), ex.overrides(COMMAND)
    )
    metrics = {"teaching": {}, "ab": {"primary": {"m/12/a_vs_b": {"verdict": "equivalent"}}}}
    (repo / "reports" / "metrics.json").write_text(json.dumps(metrics))
    for name in ("headline.json", "provenance.json"):
        (repo / "reports" / name).write_text("{}")
    (repo / "reports" / "report.md").write_text("# report\n")
    lock = {"stages": {"report": {"outs": [{"path": "reports/metrics.json",
                                            "md5": ex.md5(repo / "reports" / "metrics.json")}]}}}  # fmt: skip
    (repo / "dvc.lock").write_text(yaml.safe_dump(lock))
    (repo / "runs").mkdir()
    machine = {
        "cpu_vendor": "v",
        "cpu_model": "m",
        "cpu_capability": "AVX2",
        "torch_threads": 2,
        "torch": "t",
    }
    (repo / "runs" / "report.json").write_text(json.dumps({"machine": machine, "seconds": 1.0}))
    (repo / "params.yaml").write_text(yaml.safe_dump(params))  # the experiment's params
    monkeypatch.chdir(repo)
    return repo, ex.record("weighted", COMMAND, repo, root=repo)


def test_a_record_holds_its_command_commit_machine_params_and_report(recorded):
    repo, record = recorded
    rec = json.loads((record / "record.json").read_text())
    assert rec["command"] == COMMAND and rec["commit"] == git(repo, "rev-parse", "HEAD").strip()
    assert rec["machine"]["cpu_vendor"] == "v" and rec["seconds"] == {"report": 1.0}
    assert rec["changed"] == ["seeding"]  # the default profile's metrics at the commit had none
    for name in ("params.yaml", "dvc.lock", "metrics.json", "report.md", "runs/report.json"):
        assert (record / name).is_file(), name
    assert ex.check(record, repo) == []


@pytest.mark.parametrize("tamper", ["params", "metrics", "commit", "changed"])
def test_verify_finds_a_record_that_does_not_hold(recorded, tamper):
    repo, record = recorded
    if tamper == "params":  # a setting the command never asked for
        params = yaml.safe_load((record / "params.yaml").read_text())
        params["training"]["steps"] = 99
        (record / "params.yaml").write_text(yaml.safe_dump(params))
        expected = "params.yaml is not the commit's params with the command's -S overrides"
    elif tamper == "metrics":  # a number edited after the run
        (record / "metrics.json").write_text(json.dumps({"teaching": {"m": {}}}))
        expected = "metrics.json is not the file its dvc.lock recorded"
    elif tamper == "commit":
        rec = json.loads((record / "record.json").read_text())
        rec["commit"] = "0" * 40
        (record / "record.json").write_text(json.dumps(rec))
        expected = "is not in this repository"
    else:  # a strand it never changed claimed as its finding
        rec = json.loads((record / "record.json").read_text())
        rec["changed"] = ["seeding", "teaching/kjv-tiny"]
        (record / "record.json").write_text(json.dumps(rec))
        expected = "`changed` in record.json is not what its metrics changed"
    problems = ex.check(record, repo)
    assert len(problems) == 1 and expected in problems[0], problems


def test_a_run_whose_commit_has_no_default_metrics_is_refused_and_nothing_written(recorded):
    repo, record = recorded
    shutil.rmtree(record)
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "rm", "-q", "--cached",
        "reports/metrics.json")  # fmt: skip
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "no metrics")
    with pytest.raises(ex.UserError, match=r"has no reports/metrics\.json"):
        ex.record("weighted", COMMAND, repo, root=repo)
    assert not record.exists()
