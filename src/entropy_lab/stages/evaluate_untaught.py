"""Stage `evaluate-untaught@<model>`: a model the pipeline does not teach (evaluate.untaught),
evaluated as it comes: the exact view of every record at T = 1, to data/eval/<model>/ and
reports/eval/<model>/metrics.json (the evaluate stage's science, without adapters or samples)."""

from __future__ import annotations

from pathlib import Path

from entropy_lab.config import Params
from entropy_lab.stages import evaluate


def run(params: Params, model_name: str, root: Path = Path(".")) -> None:
    evaluate.run(params, model_name, root, untaught=True)
