"""Task generation throughput on this machine (target: 100,000 records in under a minute).

Side by side in one run: generating the records vs writing them as a DatasetDict, and the
whole against the one-minute budget.

    python benchmarks/bench_tasks.py [--records 100000]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from entropy_lab.cli import quiet_libraries
from entropy_lab.config import load_params
from entropy_lab.tasks.builder import Builder
from entropy_lab.tasks.dataset import to_dataset_dict


def main() -> None:
    quiet_libraries()  # as the stages do, before transformers and datasets import
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=100_000)
    args = ap.parse_args()
    section = load_params().tasks
    t0 = time.perf_counter()
    records = Builder(section).split("train", args.records)
    build_s = time.perf_counter() - t0
    print(
        f"built {len(records):,} records in {build_s:.1f} s: {len(records) / build_s:,.0f} records/s"
    )

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        to_dataset_dict({"train": records}).save_to_disk(tmp)
        save_s = time.perf_counter() - t0
    total = build_s + save_s
    print(f"DatasetDict write: {save_s:.1f} s ({len(records) / save_s:,.0f} records/s)")
    print(f"ratio generate / write time: {build_s / save_s:.2f}")
    print(
        f"total {total:.1f} s for {len(records):,} records; ratio to the 60 s budget: {total / 60:.2f}"
    )


if __name__ == "__main__":
    main()
