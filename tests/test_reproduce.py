"""reproduce-check's arguments and record, without a re-run (the re-run itself: test_pipeline)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from entropy_lab.cli import main
from entropy_lab.errors import UserError
from entropy_lab.report.claims import Claim
from entropy_lab.reproduce import Check, keep_dir, record, widest_isa


def test_keep_creates_a_missing_directory_and_resolves_a_relative_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    kept = keep_dir(Path("kept/deeper"))
    assert kept == tmp_path / "kept" / "deeper" and kept.is_dir()  # absolute: no kept/kept/clone
    (kept / "x").write_text("x")
    with pytest.raises(UserError, match="not an empty directory"):
        keep_dir(Path("kept/deeper"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="not an empty directory"):
        keep_dir(Path("file"))


def test_keep_with_a_non_empty_directory_is_one_line_before_any_work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    result = CliRunner().invoke(main, ["reproduce-check", "--keep", "full"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"error: --keep {tmp_path / 'full'}: not an empty directory"
    ]


def test_a_reproduction_record_names_the_machine_and_what_held(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    check = Check(
        commit="a" * 40,
        bytes_differ=["git: reports/report.md (M)"],
        claims=[Claim("x", 1, 1, "equal", True), Claim("y", 1, 2, "equal", False)],
        seconds=12.34,
    )
    path = record(check, tmp_path)
    assert path.parent == tmp_path / "reports" / "reproductions"
    vendor, isa = path.stem.split("-")[:2]
    assert isa == widest_isa() and isa in ("avx512", "avx2", "baseline", "aarch64", "x86_64")
    rec = json.loads(path.read_text())
    assert rec["commit"] == "a" * 40 and rec["machine"]["cpu_vendor"].startswith(vendor[:4])
    assert rec["claims"] == {"held": 1, "failed": 1, "failed_names": ["y"]}
    assert rec["bytes"] == {"identical": False, "differ": ["git: reports/report.md (M)"]}
    assert rec["wall_seconds"] == 12.3
