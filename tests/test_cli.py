"""The CLI surface: one subcommand per DVC stage, nothing else."""

import io
import logging
import os
import subprocess
import sys

import pytest
import yaml
from click.testing import CliRunner

from entropy_lab.cli import main, quiet_libraries
from tests.conftest import REPO


def test_subcommands_are_exactly_the_dvc_stages():
    """One subcommand per stage, plus the reviewer's checks: `verify` (writes nothing) and
    `reproduce-check` (works in a temporary clone)."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert set(main.commands) == set(stages) | {
        "verify", "bundle", "reproduce-check", "record-experiment"}  # fmt: skip
    for name, stage in stages.items():
        cmd = stage["do"]["cmd"] if "foreach" in stage else stage["cmd"]  # foreach: one per item
        assert cmd.startswith(f"entropy-lab {name}")


def test_help_lists_the_subcommands():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    listed = [line.split()[0] for line in result.output.split("Commands:")[1].strip().splitlines()]
    assert listed == sorted(main.commands)


def test_quiet_libraries_off_a_terminal(monkeypatch):
    """What every stage and benchmark calls before the ML libraries import: bitsandbytes'
    import-time note about an optional CPU kernel package (quantisation is refused on CPU)
    is silenced, and off a terminal so are the HF libraries' progress bars."""
    variables = ("HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS")
    for var in variables:
        monkeypatch.setenv(var, "0")  # so that teardown restores whatever was there
        monkeypatch.delenv(var)
    monkeypatch.setattr("sys.stderr", io.StringIO())  # not a TTY
    monkeypatch.setattr(logging.getLogger("bitsandbytes"), "level", logging.NOTSET)
    quiet_libraries()
    assert logging.getLogger("bitsandbytes").getEffectiveLevel() == logging.ERROR
    assert all(os.environ[var] == "1" for var in variables)


@pytest.mark.parametrize(
    "bench", sorted((REPO / "benchmarks").glob("bench_*.py")), ids=lambda p: p.name
)
def test_benchmarks_quiet_the_libraries_before_they_import(bench):
    """A benchmark that imports transformers when it loads must call quiet_libraries first:
    the variables are read at import, so a later call leaves the progress bars on (as
    bench_sampler did: "Loading weights" bars in `make bench`'s log)."""
    probe = (
        "import importlib.util, os, sys\n"
        f"sys.path.insert(0, {str(bench.parent)!r})\n"  # as `python benchmarks/bench_x.py` does
        f"spec = importlib.util.spec_from_file_location('bench', {str(bench)!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print('transformers' in sys.modules, os.environ.get('HF_HUB_DISABLE_PROGRESS_BARS'))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("_DISABLE_PROGRESS_BARS")}
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
    ).stdout.split()
    assert out[0] == "False" or out[1] == "1", f"{bench} imports transformers before quieting"


def test_a_reproduce_check_prints_a_summary_and_names_this_machine(monkeypatch, tmp_path):
    """A summary on the console (claims held, what failed, bytes differing, where the full table
    is), whatever the number of claims; byte differences come with what decides bit-identity
    here (the CPU's vendor and model, the vector ISA, torch and the thread count); the exit
    status is the claims'."""
    import torch

    from entropy_lab import reproduce
    from entropy_lab.report.claims import Claim

    held = [Claim(f"teaching.x{i}.tvd", 0.5, 0.52, "in CI [0.4, 0.6]", True) for i in range(2000)]
    check = reproduce.Check("a" * 40, ["git: dvc.lock (M)"], held, 60.0)
    monkeypatch.setattr(reproduce, "reproduce_check", lambda repo, keep, say: check)
    table = tmp_path / "claims.txt"
    result = CliRunner().invoke(main, ["reproduce-check", "--table", str(table)])
    assert result.exit_code == 0, result.output
    assert "2000 of 2000 hold" in result.stdout and "git: dvc.lock (M)" in result.stdout
    assert len(result.stdout.splitlines()) <= 20
    assert len(table.read_text().splitlines()) == 2002  # header, claims, total
    assert reproduce.this_machine() in result.stdout
    assert torch.backends.cpu.get_cpu_capability() in reproduce.this_machine()
    broken = [*held, Claim("ab.x.verdict", "equivalent", "inconclusive", "equal", False)]
    monkeypatch.setattr(reproduce, "reproduce_check",
                        lambda repo, keep, say: reproduce.Check("a" * 40, [], broken, 1.0))  # fmt: skip
    result = CliRunner().invoke(main, ["reproduce-check", "--table", str(table)])
    assert result.exit_code == 1 and "2000 of 2001 hold" in result.stdout
    assert "does not hold: ab.x.verdict" in result.stdout
