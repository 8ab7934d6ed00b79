"""Stage `report`: reports/report.md with its figures, metrics.json (every number it shows),
headline.json, provenance.json and teaching.csv (a dvc plot), from the recorded results."""

from __future__ import annotations

from pathlib import Path

from entropy_lab.artefacts import read_parquet
from entropy_lab.config import Params
from entropy_lab.evaluation.evaluate import EVAL_DIR
from entropy_lab.provenance import atomic_dir, atomic_file, write_json
from entropy_lab.report import figures, markdown
from entropy_lab.report.numbers import (
    check_ledgers,
    gather,
    headline,
    ledgers,
    provenance,
    teaching_rows,
)
from entropy_lab.stages.common import Run, outputs

REPORTS = Path("reports")
FILES = ("figures", "teaching.csv", "metrics.json", "headline.json", "provenance.json", "report.md")


def run(params: Params, root: Path = Path(".")) -> None:
    import pandas as pd

    out = root / REPORTS
    outputs(*(out / name for name in FILES))
    check_ledgers(ledgers(root))
    numbers, prov = gather(params, root), provenance(params, root)
    records = {
        m: read_parquet(root / EVAL_DIR / m / "records.parquet", f"run evaluate@{m} first")
        for m in numbers["teaching"]
    }
    record = Run("report")
    with atomic_dir(out / "figures") as tmp:
        figures.save_all(numbers, records, tmp)
    with atomic_file(out / "teaching.csv") as tmp:
        pd.DataFrame(teaching_rows(numbers["teaching"])).to_csv(tmp, index=False)
    write_json(out / "metrics.json", numbers)
    write_json(out / "headline.json", headline(numbers))
    write_json(out / "provenance.json", prov)
    with atomic_file(out / "report.md") as tmp:
        tmp.write_text(markdown.render(numbers, prov), encoding="utf-8")
    record.finish(root)
