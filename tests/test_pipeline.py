"""End to end: `dvc repro` in a copy of the repository, on a shrunken default profile."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
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
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "files"], dst)
    return dst


def test_dvc_repro_end_to_end_freeze_harvest_and_rerun(repo_copy):
    run(["dvc", "repro"], repo_copy)
    assert "up to date" in run(["dvc", "status"], repo_copy)
    lock = yaml.safe_load((repo_copy / "dvc.lock").read_text())
    assert set(lock["stages"]) == {"harvest", "models", "tasks", "train@ce_multisample", "train@ce_kl"}
    pool = sha256_path(repo_copy / "data" / "entropy")
    outputs = ("models/kjv-tiny", "data/tasks", "adapters/ce_multisample", "adapters/ce_kl", "reports/train")
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
