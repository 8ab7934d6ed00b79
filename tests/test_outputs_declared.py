"""No stale outputs: every file under reports/, data/, models/ and adapters/ that git tracks
belongs to an output a stage declares in dvc.yaml, or to a committed experiment or reproduction
record."""

from __future__ import annotations

import subprocess

from tests.conftest import REPO

AREAS = ("reports", "data", "models", "adapters")
STATIC = {"data/.gitkeep", "reports/.gitkeep", "data/external/README.md", "models/README.md"}
RECORDS = ("reports/experiments/", "reports/reproductions/")  # written by commands, not stages


def declared_outputs() -> list[str]:
    from dvc.repo import Repo

    with Repo(str(REPO)) as repo:
        return sorted({o.def_path for o in repo.index.outs})


def test_every_tracked_file_belongs_to_a_declared_output_or_a_record():
    outs = declared_outputs()
    tracked = subprocess.run(
        ["git", "ls-files", *AREAS], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    stale = [
        f
        for f in tracked
        if f not in STATIC
        and not f.startswith(RECORDS)
        and not any(f == o or f.startswith(o.rstrip("/") + "/") for o in outs)
    ]
    assert not stale, f"tracked files no stage writes: {stale}"
