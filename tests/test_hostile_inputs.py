"""Hostile and careless inputs: each is refused in one line with exit 2 before any work and
leaves the tree as it was, or, for inputs that only the data can judge, fails closed in
seconds. One parametrised test per class of input."""

from __future__ import annotations

import copy
import hashlib
import os
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from entropy_lab.cli import main
from tests.conftest import external, small_harvest

REPO = Path(__file__).resolve().parents[1]


def tree(root: Path) -> dict[str, str]:
    """Every path under root, with the sha256 of each file ('dir' for directories)."""
    return {
        p.relative_to(root).as_posix(): "dir"
        if p.is_dir()
        else hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
    }


def refused(tmp_path, monkeypatch, data: dict, command: list[str]) -> str:
    """Run a stage on these params; assert exit 2, one line and an unchanged tree; the line."""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.chdir(tmp_path)
    before = tree(tmp_path)
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 2, result.output
    assert tree(tmp_path) == before
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0].removeprefix("error: ")


def edit(data: dict, dotted: str, value) -> dict:
    """Set a key such as 'sources[1].bytes' inside the harvest section."""
    node = data["harvest"]
    parts = dotted.replace("]", "").replace("[", ".").split(".")
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node[part]
    last = parts[-1]
    node[int(last) if last.isdigit() else last] = value
    return data


# harvest sizes and floats: (dotted key, value, what the line says is allowed)
HARVEST_PARAMS = [
    ("sources[0].bytes", 10**12, "Input should be less than or equal to 268435456"),
    ("sources[1].bytes", 0, "Input should be greater than or equal to 1"),
    ("assessment.samples", 10**12, "Input should be less than or equal to 4000000"),
    ("assessment.samples", 1000, "Input should be greater than or equal to 4096"),
    ("sources[0].claimed_h", float("inf"), "Input should be a finite number"),
    ("sources[1].claimed_h", float("nan"), "Input should be a finite number"),
    ("sources[1].claimed_h", float("-inf"), "Input should be a finite number"),
    (
        "assessment.sts_sequence_bits",
        8 * 262144 + 1,
        "at most 2097152, the bits source 'kernel' adds to the pool (SP 800-22 runs on every source)",
    ),
]


@pytest.mark.parametrize(("key", "value", "allowed"), HARVEST_PARAMS, ids=lambda x: str(x)[:24])
def test_harvest_sizes_and_floats_are_bounded(
    params_data, tmp_path, monkeypatch, key, value, allowed
):
    data = edit(copy.deepcopy(params_data), key, value)
    line = refused(tmp_path, monkeypatch, data, ["harvest"])
    assert line == f"params.yaml: harvest.{key} = {value!r}: {allowed}"


INSIDE = "must resolve inside data/external/ of the repository (a dependency of the harvest stage)"
SHA_RULE = "required for the external source, and only for it"

# an external dump's path and hash: (spec changes, dotted key, what the line says is allowed)
EXTERNAL_DUMPS = [
    ({"path": "../../etc/passwd"}, "path", INSIDE),
    ({"path": "/etc/passwd"}, "path", INSIDE),
    ({"path": "data/external/../../params.yaml"}, "path", INSIDE),
    ({"path": "data/external/escape/passwd"}, "path", INSIDE),  # a symlink out of the tree
    ({"path": "params.yaml"}, "path", INSIDE),
    ({"sha256": None}, "sha256", SHA_RULE),
    ({"sha256": "0" * 63}, "sha256", "64 lowercase hex digits"),
    ({"sha256": "A" * 64}, "sha256", "64 lowercase hex digits"),
    ({"sha256": "g" * 64}, "sha256", "64 lowercase hex digits"),
]


@pytest.mark.parametrize(("changes", "key", "allowed"), EXTERNAL_DUMPS, ids=lambda x: str(x)[:30])
def test_external_dump_stays_in_the_repository_and_is_hashed(
    params_data, tmp_path, monkeypatch, changes, key, allowed
):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_text("root:x:0:0\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    spec = external(repo, os.urandom(30_000), **changes)
    (repo / "data" / "external" / "escape").symlink_to(outside)
    outside_before = tree(outside)
    line = refused(repo, monkeypatch, small_harvest(params_data, [spec]), ["harvest"])
    assert line == f"params.yaml: harvest.sources[0].{key} = {changes[key]!r}: {allowed}"
    assert tree(outside) == outside_before


def test_harvest_refuses_what_would_not_fit_in_memory(params_data, tmp_path, monkeypatch):
    from entropy_lab.entropy import harvest

    monkeypatch.setattr(harvest, "available_memory", lambda: 1 << 18)
    line = refused(tmp_path, monkeypatch, small_harvest(params_data), ["harvest"])
    # 8192 blocks of 32 bytes need at least 40 raw bytes each, even at 8 bits per sample
    assert line.startswith("source 'kernel': conditioning 262144 bytes needs 327680 raw bytes")
    assert line.endswith("bytes of memory are available; no pool written")


def text_dump() -> bytes:
    """The repository's own text (README and sources), about 300 KB of English and Python."""
    files = [REPO / "README.md", *sorted((REPO / "src").rglob("*.py"))]
    return b"\n".join(p.read_bytes() for p in files)


# dumps only the data can judge: they must finish in seconds, with a pool or one line
REPETITIVE_DUMPS = {
    "repeated 4 KiB block": lambda: np.tile(
        np.random.default_rng(7).integers(0, 256, 4096).astype(np.uint8), 40
    ).tobytes(),
    "text file": text_dump,
}


@pytest.mark.parametrize("kind", sorted(REPETITIVE_DUMPS))
def test_repetitive_dumps_are_assessed_in_seconds(params_data, tmp_path, monkeypatch, kind):
    data = REPETITIVE_DUMPS[kind]()
    spec = external(tmp_path, data, claimed_h=0.5)  # lenient health tests: the assessment decides
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(small_harvest(params_data, [spec])))
    monkeypatch.chdir(tmp_path)
    t0 = time.perf_counter()
    result = CliRunner().invoke(main, ["harvest"])
    elapsed = time.perf_counter() - t0
    assert elapsed < 30, elapsed  # a few seconds here; it used to hang
    pool = tmp_path / "data" / "entropy" / "pool.bin"
    if kind == "repeated 4 KiB block":
        assert result.exit_code == 2
        lines = result.stderr.strip().splitlines()
        assert lines[-1].startswith("error: source 'external': assessed min-entropy ")
        assert lines[-1].endswith("no pool written") and not pool.exists()
    else:  # English and code carry entropy; the stage conditions at the ratio it measured
        assert result.exit_code == 0 or (
            result.exit_code == 2
            and result.stderr.strip().splitlines()[-1].startswith("error: source 'external'")
            and not pool.exists()
        ), result.output
