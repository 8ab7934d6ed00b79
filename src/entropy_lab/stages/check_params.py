"""Stage `check-params`: params.yaml validated before any other stage runs.

DVC removes a stage's outputs before it runs the stage's command, so a stage that then fails on
its params (`dvc exp run -S training.steps=-1`) would leave its outputs deleted, and those kept
in git (`cache: false`) are not in DVC's cache to come back from. Every other stage depends on
this stage's output, so a bad value fails here, before DVC removes anything. The output says
only that params validated: its bytes never change, so a change of params re-runs this check
and, after it, only the stages that read what changed.
"""

from __future__ import annotations

from pathlib import Path

from entropy_lab.provenance import atomic_file
from entropy_lab.stages.common import Run, outputs

CHECKED = Path("data/params.checked")


def run(checked: Path = CHECKED) -> None:
    outputs(checked)
    record = Run("check-params")  # an experiment's record holds a run record of every stage it ran
    with atomic_file(checked) as tmp:
        tmp.write_text("params.yaml validated\n", encoding="utf-8")
    record.finish()
