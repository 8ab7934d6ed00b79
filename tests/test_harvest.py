"""The harvest stage end to end: pool and card, imported dumps, faults that stop it, `ent`."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from entropy_lab.cli import main
from entropy_lab.config import parse_params
from entropy_lab.entropy.estimators import NAMES
from entropy_lab.entropy.harvest import byte_statistics, reassess
from entropy_lab.entropy.pool import Experiment, Pool, allocate
from entropy_lab.errors import UserError
from tests.conftest import external, small_harvest


def run_harvest(tmp_path, monkeypatch, data: dict):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.chdir(tmp_path)
    return CliRunner().invoke(main, ["harvest"])


def test_harvest_writes_pool_card_manifest_and_metrics(params_data, tmp_path, monkeypatch):
    sources = [
        {"name": "kernel", "bytes": 32768, "claimed_h": 6.0},
        {"name": "jitter", "bytes": 16384, "claimed_h": 2.0},
    ]
    result = run_harvest(tmp_path, monkeypatch, small_harvest(params_data, sources))
    assert result.exit_code == 0, result.output
    pool = Pool.load(tmp_path / "data" / "entropy")
    assert len(pool.data) == 49152 and [s.source for s in pool.segments] == ["kernel", "jitter"]
    assert pool.sha256 == hashlib.sha256(pool.data).hexdigest()
    r = allocate([Experiment("ab", "jitter", 4, 1, 32)], pool.segments, "ab", 2, 0)
    assert pool.read(r) == pool.data[32768 + 64 : 32768 + 96]
    assert (tmp_path / "data" / "entropy" / "raw-jitter.bin").stat().st_size == 20_000
    metrics = json.loads((tmp_path / "reports" / "harvest" / "metrics.json").read_text())
    assert metrics["estimators"] == list(NAMES)
    for name in ("kernel", "jitter"):
        m = metrics["sources"][name]
        assert set(m["assessment"]["bitstring"]) == set(NAMES)
        assert m["min_entropy_estimator"].endswith(("(samples)", "(bit string)"))
        assert m["raw_bytes_per_s"] > 0 and 0 < m["min_entropy"] <= 8
        assert m["raw_per_32_bytes"] == int(np.ceil(320 / m["min_entropy"]))
        assert m["health"]["samples"] >= m["raw_samples"]
        assert set(m["sts"]) >= {
            "frequency",
            "block_frequency",
            "runs",
            "longest_run",
            "serial_1",
            "approximate_entropy",
            "cumulative_sums_1",
            "dft",
        }

    # the stored raw samples and pool reproduce every assessment number (what `verify` relies on)
    section = parse_params(small_harvest(params_data, sources)).harvest
    again = reassess(section, tmp_path / "data" / "entropy")
    for name, r in again.items():
        assert {k: metrics["sources"][name][k] for k in r} == json.loads(json.dumps(r))

    (tmp_path / "data" / "entropy" / "pool.bin").write_bytes(b"\0" + pool.data[1:])
    with pytest.raises(UserError, match="its card says"):
        Pool.load(tmp_path / "data" / "entropy")


def test_external_dump_enters_through_the_same_door(params_data, tmp_path, monkeypatch):
    spec = external(tmp_path, os.urandom(60_000))
    result = run_harvest(tmp_path, monkeypatch, small_harvest(params_data, [spec]))
    assert result.exit_code == 0, result.output
    pool_dir = tmp_path / "data" / "entropy"
    manifest = json.loads((pool_dir / "manifest.json").read_text())
    assert manifest["inputs"]["external:external"] == spec["sha256"]
    # only the assessed samples are kept, not a copy of the dump
    assert sorted(p.name for p in pool_dir.iterdir()) == [
        "manifest.json",
        "pool.bin",
        "pool.json",
        "raw-external.bin",
    ]
    assert (pool_dir / "raw-external.bin").read_bytes() == (
        tmp_path / "data" / "external" / "dump.bin"
    ).read_bytes()[:20_000]
    card = json.loads((pool_dir / "pool.json").read_text())
    assert card["estimators"] == list(NAMES) and len(NAMES) == 10


def test_external_dump_hash_mismatch_and_shortage(params_data, tmp_path, monkeypatch):
    spec = external(tmp_path, os.urandom(60_000)) | {"sha256": "0" * 64}
    result = run_harvest(tmp_path, monkeypatch, small_harvest(params_data, [spec]))
    assert result.exit_code == 2 and "harvest.sources.external.sha256" in result.stderr
    spec = external(tmp_path, os.urandom(21_000)) | {"bytes": 32768}  # needs ~48,000 raw bytes
    result = run_harvest(tmp_path, monkeypatch, small_harvest(params_data, [spec]))
    assert (
        result.exit_code == 2
        and "source 'external': need" in result.stderr
        and "ran out" in result.stderr
    )
    assert not (tmp_path / "data" / "entropy").exists()


FAULTS = {
    "stuck": lambda rng, n: np.full(n, 0x5A, dtype=np.uint8),
    "biased": lambda rng, n: np.where(rng.random(n) < 0.5, 0, rng.integers(0, 256, n)).astype(
        np.uint8
    ),
    "periodic": lambda rng, n: (np.arange(n) % 8).astype(np.uint8),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_faulty_source_stops_the_stage_and_writes_no_pool(
    params_data, tmp_path, monkeypatch, fault
):
    rng = np.random.default_rng(0)
    good = rng.integers(0, 256, 5000).astype(np.uint8)
    spec = external(tmp_path, good.tobytes() + FAULTS[fault](rng, 60_000).tobytes())
    result = run_harvest(tmp_path, monkeypatch, small_harvest(params_data, [spec]))
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert (
        "\n" not in line
        and line.startswith("error: source 'external' failed the ")
        and "no pool written" in line
    )
    assert not (tmp_path / "data" / "entropy").exists() and not (tmp_path / "reports").exists()


def test_external_source_needs_a_path(params_data):
    data = small_harvest(params_data, [{"name": "external", "bytes": 10, "claimed_h": 1.0}])
    with pytest.raises(
        UserError, match=r"harvest.sources\[0\].path = None: required for the external source"
    ):
        parse_params(data)


@pytest.mark.skipif(shutil.which("ent") is None, reason="Debian's `ent` is not installed")
def test_byte_statistics_agree_with_ent(tmp_path):
    data = np.random.default_rng(4).integers(0, 256, 200_000).astype(np.uint8).tobytes()
    path = tmp_path / "x.bin"
    path.write_bytes(data)
    out = subprocess.run(
        ["ent", "-t", str(path)], capture_output=True, text=True, check=True
    ).stdout
    row = dict(zip(*[line.split(",") for line in out.strip().splitlines()], strict=True))
    ours = byte_statistics(data)
    assert ours["shannon_bits_per_byte"] == pytest.approx(float(row["Entropy"]), abs=1e-6)
    assert ours["chi_square"] == pytest.approx(float(row["Chi-square"]), rel=1e-6)
    assert ours["mean"] == pytest.approx(float(row["Mean"]), abs=1e-6)
    assert ours["serial_correlation"] == pytest.approx(float(row["Serial-Correlation"]), abs=1e-6)
