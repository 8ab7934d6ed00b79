"""End to end: `dvc repro` in a copy of the repository, on a shrunken default profile."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from entropy_lab.provenance import sha256_path
from tests.conftest import REPO

pytestmark = pytest.mark.slow


def run(cmd: list[str], cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.fixture
def repo_copy(tmp_path, fast_params) -> Path:
    """The working tree's tracked and unignored files, as a fresh git repo, with fast params."""
    files = run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], REPO).split()
    dst = tmp_path / "repo"
    for rel in files:
        if (REPO / rel).is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dst / rel)
    (dst / "dvc.lock").unlink(missing_ok=True)
    shutil.copy(fast_params, dst / "params.yaml")
    run(["git", "init", "-q"], dst)
    run(["git", "add", "-A"], dst)
    return dst


def test_dvc_repro_end_to_end_freeze_harvest_and_rerun(repo_copy):
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "files"], repo_copy)
    run(["dvc", "repro"], repo_copy)
    assert "up to date" in run(["dvc", "status"], repo_copy)
    lock = yaml.safe_load((repo_copy / "dvc.lock").read_text())
    assert set(lock["stages"]) == {
        "harvest",
        "models",
        "tasks",
        "train@kjv-tiny-ce_multisample",
        "train@kjv-tiny-ce_kl",
        "evaluate@kjv-tiny",
        "ab-generate@kjv-tiny-12",
        "ab-metrics@kjv-tiny-12",
        "ab-analyze",
    }
    pool = sha256_path(repo_copy / "data" / "entropy")
    outputs = (
        "models/kjv-tiny",
        "data/tasks",
        "adapters/kjv-tiny",
        "reports/train",
        "data/eval",
        "reports/eval",
        "data/ab",
        "data/ab_metrics",
        "reports/ab",
    )
    deterministic = {p: sha256_path(repo_copy / p) for p in outputs}

    # Harvesting is the one non-deterministic stage: freeze it, and everything reruns the same.
    run(["dvc", "freeze", "harvest"], repo_copy)
    run(["dvc", "repro", "--force"], repo_copy)
    assert sha256_path(repo_copy / "data" / "entropy") == pool
    assert {p: sha256_path(repo_copy / p) for p in deterministic} == deterministic
    assert "up to date" in run(["dvc", "status"], repo_copy)

    # Unfrozen, a forced rerun harvests new entropy.
    run(["dvc", "unfreeze", "harvest"], repo_copy)
    run(["dvc", "repro", "--force", "harvest"], repo_copy)
    assert sha256_path(repo_copy / "data" / "entropy") != pool


def test_queued_experiments_run_on_dvcs_queue_and_show_up(repo_copy):
    """`dvc exp run --queue` twice, `dvc queue start`, both in `dvc exp show`.

    Queue workers copy only what git tracks (the fixture commits everything) and commit
    experiments with git, so the repository needs an identity."""
    run(["git", "config", "user.name", "entropy-lab tests"], repo_copy)
    run(["git", "config", "user.email", "tests@entropy-lab.invalid"], repo_copy)
    run(["git", "commit", "-qm", "files"], repo_copy)
    for seed in (11, 12):
        run(["dvc", "exp", "run", "--queue", "-S", f"tasks.seed={seed}"], repo_copy)
    run(["dvc", "queue", "start", "-j", "1"], repo_copy)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status = run(["dvc", "queue", "status"], repo_copy)
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(5)
    run(["dvc", "queue", "stop"], repo_copy)
    assert status.count("Success") == 2, status
    shown = json.loads(run(["dvc", "exp", "show", "--json"], repo_copy))
    seeds = {
        exp["data"]["params"]["params.yaml"]["data"]["tasks"]["seed"]
        for commit in shown
        for exp in commit.get("experiments") or []
        for exp in exp["revs"]
        if exp.get("data", {}).get("params")
    }
    assert {11, 12} <= seeds, seeds
