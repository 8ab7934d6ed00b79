"""Experiment records: what `record-experiment` keeps and refuses, and what `verify` checks of
a record, end to end on a recorded experiment in a temporary repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from entropy_lab import experiments as ex
from entropy_lab.cli import main
from entropy_lab.errors import UserError
from entropy_lab.store import dir_md5, listing_of, md5_file
from tests.conftest import REPO

COMMAND = (
    "dvc exp run -n weighted -S 'models.use=[kjv-tiny,kjv-small]' -S 'models.convert=[]' "
    "-S 'evaluate.untaught=[]' "
    "-S 'models.build=[kjv-tiny,kjv-small]' -S training.lr=0.001 "
    "-S '+training.family_weights.k_of_n=3' --set-param evaluate.samples=1000"
)
MACHINE = {"cpu_vendor": "v", "cpu_model": "m", "cpu_capability": "AVX2", "torch_threads": 2,
           "torch": "t"}  # fmt: skip
CODE = "src/entropy_lab/stages/report.py"


def test_overrides_are_read_as_dvc_reads_them():
    assert ex.overrides(COMMAND) == [
        ("models.use", ["kjv-tiny", "kjv-small"]),
        ("models.convert", []),
        ("evaluate.untaught", []),
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
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=cwd, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip


def write_run(repo: Path, stage: str = "report", **change) -> None:
    head = git(repo, "rev-parse", "HEAD").strip()
    record = {"stage": stage, "machine": MACHINE, "seconds": 1.0, "commit": head,
              "code_changed": False} | change  # fmt: skip
    (repo / "runs").mkdir(exist_ok=True)
    (repo / "runs" / f"{stage}.json").write_text(json.dumps(record))


def experiment(repo: Path) -> None:
    """What `dvc exp run` leaves: params, report files and figures, their dvc.lock, run records."""
    params = ex.apply_overrides(
        yaml.safe_load((repo / "params.yaml").read_text()), ex.overrides(COMMAND)
    )
    metrics = {"teaching": {}, "ab": {"primary": {"m/12/a_vs_b": {"verdict": "equivalent"}}}}
    reports = repo / "reports"
    (reports / "metrics.json").write_text(json.dumps(metrics))
    for name in ("headline.json", "provenance.json"):
        (reports / name).write_text("{}")
    (reports / "figures").mkdir(exist_ok=True)
    (reports / "figures" / "harvest.png").write_bytes(b"png")
    (reports / "report.md").write_text("# report\n\n![a figure](figures/harvest.png)\n")
    outs = [{"path": f"reports/{n}", "md5": md5_file(reports / n)}
            for n in ("metrics.json", "headline.json", "provenance.json", "report.md")]  # fmt: skip
    outs.append({"path": "reports/figures", "md5": dir_md5(listing_of(reports / "figures"))})
    deps = [{"path": CODE, "md5": md5_file(repo / CODE)}]
    lock = {"schema": "2.0", "stages": {"report": {
        "cmd": "entropy-lab report", "deps": deps, "outs": outs,
        "params": {"params.yaml": {"evaluate.samples": 1000, "training.lr": 0.001}}}}}  # fmt: skip
    (repo / "dvc.lock").write_text(yaml.safe_dump(lock))
    write_run(repo)
    (repo / "params.yaml").write_text(yaml.safe_dump(params))


@pytest.fixture
def source(tmp_path, monkeypatch) -> Path:
    """A repository with two commits (the second: the default's metrics) and an experiment
    run on it (not yet recorded)."""
    repo = tmp_path / "repo"
    (repo / "reports").mkdir(parents=True)
    (repo / Path(CODE).parent).mkdir(parents=True)
    shutil.copy(REPO / "params.yaml", repo / "params.yaml")
    (repo / CODE).write_text("# the stage's code, first version\n")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "first")
    (repo / CODE).write_text("# the stage's code\n")
    (repo / "reports" / "metrics.json").write_text(json.dumps({"teaching": {}, "ab": {}}))
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "base")
    experiment(repo)
    monkeypatch.chdir(repo)
    return repo


@pytest.fixture
def recorded(source) -> tuple[Path, Path]:
    return source, ex.record("weighted", COMMAND, source, root=source)


def test_a_record_holds_its_command_commit_machine_params_report_and_figures(recorded):
    repo, record = recorded
    rec = json.loads((record / "record.json").read_text())
    assert rec["command"] == COMMAND and rec["commit"] == git(repo, "rev-parse", "HEAD").strip()
    assert rec["machine"]["cpu_vendor"] == "v" and rec["seconds"] == {"report": 1.0}
    assert rec["changed"] == ["seeding"]  # the default profile's metrics at the commit had none
    for name in ("params.yaml", "dvc.lock", "metrics.json", "report.md", "runs/report.json",
                 "figures/harvest.png"):  # fmt: skip
        assert (record / name).is_file(), name
    result = ex.check(record, repo)
    assert result.problems == [] and result.checked
    # its numbers are not recomputable here (no A/B tables): said, never called reproduced
    assert any("seeding hash-checked only" in line for line in result.unchecked), result


def one_problem(record: Path, repo: Path) -> str:
    result = ex.check_all(repo)
    assert result.problems, "the tampered record passed"
    return "\n".join(result.problems)


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        ("params", "params.yaml is not the commit's params with the command's -S overrides"),
        ("command and params", "ran with evaluate.samples = 1000, params.yaml says 21"),
        ("metrics", "metrics.json is not the file its dvc.lock recorded"),
        ("commit", "is not in this repository"),
        ("commit HEAD~1", "did not run on the record's commit's code"),
        ("changed", "`changed` in record.json is not what its metrics changed"),
        ("delete report.md", "report.md: missing"),
        ("delete headline.json", "headline.json: missing"),
        ("delete provenance.json", "provenance.json: missing"),
        ("delete runs", "runs/: no run record"),
        ("delete a figure", "report.md links figures/harvest.png, which the record does not hold"),
        ("seconds", "record.json's seconds for report are not its run record's"),
        ("extra file", "notes.txt: not part of a record"),
        ("link to /dev/zero", "metrics.json is a link"),
        ("erratum of nothing", "errata.md: quotes 'a phrase the report never had'"),
        ("empty errata", "errata.md: no erratum"),
        ("lock code", "stage report's src/entropy_lab/stages/report.py is not commit"),
    ],
)
def test_verify_finds_a_record_that_does_not_hold(recorded, tamper, expected):
    repo, record = recorded
    rec = json.loads((record / "record.json").read_text())
    params = yaml.safe_load((record / "params.yaml").read_text())
    if tamper == "params":  # a setting the command never asked for
        params["training"]["steps"] = 99
        (record / "params.yaml").write_text(yaml.safe_dump(params))
    elif tamper == "command and params":  # both edited together; the lock still says 1000
        rec["command"] = rec["command"].replace("evaluate.samples=1000", "evaluate.samples=21")
        params["evaluate"]["samples"] = 21
        (record / "params.yaml").write_text(yaml.safe_dump(params))
    elif tamper == "metrics":  # a number edited after the run
        (record / "metrics.json").write_text(json.dumps({"teaching": {"m": {}}}))
    elif tamper == "commit":
        rec["commit"] = "0" * 40
    elif tamper == "commit HEAD~1":
        rec["commit"] = git(repo, "rev-parse", "HEAD~1").strip()
        params = yaml.safe_load(git(repo, "show", "HEAD~1:params.yaml"))
    elif tamper == "changed":  # a strand it never changed claimed as its finding
        rec["changed"] = ["seeding", "teaching/kjv-tiny"]
    elif tamper.startswith("delete "):
        target = {"runs": "runs", "a figure": "figures/harvest.png"}.get(tamper[7:], tamper[7:])
        path = record / target
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    elif tamper == "seconds":
        rec["seconds"]["report"] = 0.5
    elif tamper == "extra file":
        (record / "notes.txt").write_text("x")
    elif tamper == "erratum of nothing":
        (record / "errata.md").write_text('- "a phrase the report never had": fixed.\n')
    elif tamper == "empty errata":
        (record / "errata.md").write_text("# Errata\n")
    elif tamper == "link to /dev/zero":
        (record / "metrics.json").unlink()
        os.symlink("/dev/zero", record / "metrics.json")
    elif tamper == "lock code":  # the run's code was not the commit's
        lock = yaml.safe_load((record / "dvc.lock").read_text())
        lock["stages"]["report"]["deps"][0]["md5"] = "0" * 32
        (record / "dvc.lock").write_text(yaml.safe_dump(lock))
    (record / "record.json").write_text(json.dumps(rec))
    assert expected in one_problem(record, repo)


def test_errata_correct_a_records_words_and_leave_its_files_as_they_ran(recorded):
    repo, record = recorded
    phrase = (record / "report.md").read_text().splitlines()[0][:40]
    (record / "errata.md").write_text(f'# Errata\n\n- "{phrase}": read it as the title.\n')
    result = ex.check(record, repo)
    assert result.problems == [], result.problems
    assert any("errata.md corrects 1 phrase(s) of report.md" in line for line in result.checked)
    assert ex.errata(record) == [phrase]


def test_a_record_of_an_older_params_schema_is_hash_checked_not_a_failure(recorded, monkeypatch):
    """A key added to the schema after a record's commit (ab.analysis.min_records_ci) makes
    its params unreadable to today's code: its files still check, its numbers are said to be
    hash-checked only."""
    import entropy_lab.config

    repo, record = recorded

    def older(data, where="params.yaml"):
        raise UserError(f"{where}: ab.analysis.min_records_ci: required key is missing")

    monkeypatch.setattr(entropy_lab.config, "parse_params", older)
    result = ex.check(record, repo)
    assert result.problems == []
    assert any("every file against its dvc.lock" in line for line in result.checked)
    assert [line for line in result.unchecked if "numbers hash-checked only (today's params "
            "schema does not read its params.yaml: ab.analysis.min_records_ci" in line]  # fmt: skip


def test_a_consistently_forged_number_is_hash_checked_only_never_reproduced(recorded):
    """A changed number with its md5 in the record's lock changed too holds every hash: what
    verify says of it is that it could only check hashes."""
    repo, record = recorded
    metrics = {"teaching": {}, "ab": {"primary": {"m/12/a_vs_b": {"verdict": "difference"}}}}
    (record / "metrics.json").write_text(json.dumps(metrics))
    lock = yaml.safe_load((record / "dvc.lock").read_text())
    lock["stages"]["report"]["outs"][0]["md5"] = md5_file(record / "metrics.json")
    (record / "dvc.lock").write_text(yaml.safe_dump(lock))
    result = ex.check(record, repo)
    assert not result.problems
    assert [line for line in result.unchecked if "seeding hash-checked only" in line]
    assert not [line for line in result.checked if "seeding recomputed" in line]


def cli(*args: str):
    return CliRunner().invoke(main, ["record-experiment", *args])


def error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_recording_again_needs_replace_and_nothing_is_lost(recorded):
    _repo, record = recorded
    before = (record / "record.json").read_bytes()
    assert "pass --replace" in error(cli("weighted", "--command", COMMAND))
    assert (record / "record.json").read_bytes() == before
    assert cli("weighted", "--command", COMMAND, "--replace").exit_code == 0


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("code changed", "with uncommitted code"),
        ("other commit", "not on"),
        ("junk seconds", "is not a duration"),
        ("no machine", "not a run record"),
        ("not dvc exp run", "not a `dvc exp run ...` command"),
        ("bad yaml", "not a YAML value"),
        ("long name", "at most 64 characters"),
        ("another repository", "is not in this repository"),
    ],
)
def test_record_experiment_refuses_what_it_cannot_vouch_for(source, tmp_path, case, expected):
    args = ["weighted", "--command", COMMAND]
    if case == "code changed":
        write_run(source, code_changed=True)
    elif case == "other commit":
        write_run(source, commit="f" * 40)
    elif case == "junk seconds":
        write_run(source, seconds="lots")
    elif case == "no machine":
        write_run(source, machine={})
    elif case == "not dvc exp run":
        args[2] = "rm -rf / -S evaluate.samples=1000"
    elif case == "bad yaml":
        args[2] = "dvc exp run -S 'x=[1'"
    elif case == "long name":
        args[0] = "x" * 250
    else:  # the experiment's repository is not this one
        other = tmp_path / "other"
        shutil.copytree(source, other)
        shutil.rmtree(other / ".git")
        git(other, "init", "-q")
        git(other, "add", ".")
        git(other, "commit", "-qm", "unrelated")
        args += ["--from", str(other)]
    assert expected in error(cli(*args))
    assert not (source / "reports" / "experiments").exists()


def test_seconds_count_only_the_stages_the_experiment_ran(source):
    """A run record of a stage the experiment did not run (its lock entry is the commit's) is
    neither copied nor counted."""
    lock = {"schema": "2.0", "stages": {"harvest": {"cmd": "entropy-lab harvest", "outs": []}}}
    (source / "dvc.lock").write_text(yaml.safe_dump(lock))
    git(source, "add", "dvc.lock")
    git(source, "commit", "-qm", "the default's lock")
    experiment(source)  # the same experiment on the new commit
    lock2 = yaml.safe_load((source / "dvc.lock").read_text())
    lock2["stages"]["harvest"] = lock["stages"]["harvest"]
    (source / "dvc.lock").write_text(yaml.safe_dump(lock2))
    write_run(source, "harvest", commit="a" * 40, seconds=99.0)  # from long ago
    record = ex.record("weighted", COMMAND, source, root=source)
    assert json.loads((record / "record.json").read_text())["seconds"] == {"report": 1.0}
    assert sorted(p.name for p in (record / "runs").iterdir()) == ["report.json"]
    assert ex.check(record, source).problems == []


def test_a_run_whose_commit_has_no_default_metrics_is_refused_and_nothing_written(source):
    git(source, "rm", "-q", "--cached", "reports/metrics.json")
    git(source, "commit", "-qm", "no metrics")
    write_run(source)
    with pytest.raises(ex.UserError, match=r"has no reports/metrics\.json"):
        ex.record("weighted", COMMAND, source, root=source)
    assert not (source / "reports" / "experiments").exists()
