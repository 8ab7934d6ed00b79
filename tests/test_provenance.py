"""Manifests: the digest tracks exactly what determines a result; outputs appear atomically."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from entropy_lab import provenance
from entropy_lab.config import parse_params
from entropy_lab.errors import UserError
from entropy_lab.provenance import (
    MANIFEST,
    atomic_dir,
    build_manifest,
    digest,
    sha256_path,
    sha256_tree,
    write_json,
)
from entropy_lab.schema import flatten


def stage_digest(params_data, corpus) -> str:
    """The digest a stage reading only `models.built.kjv-tiny` would record."""
    read = flatten(parse_params(params_data).models.built["kjv-tiny"], "models.built.kjv-tiny")
    return digest(read, {"corpus": sha256_path(corpus)})


def test_digest_changes_when_and_only_when_read_key_or_input_changes(params_data, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("In the beginning")
    base = stage_digest(params_data, corpus)
    assert stage_digest(params_data, corpus) == base  # deterministic

    params_data["models"]["device"] = "cpu"  # a key this stage does not read
    params_data["models"]["profiles"]["gpt2"]["revision"] = "main"
    assert stage_digest(params_data, corpus) == base

    params_data["models"]["built"]["kjv-tiny"]["steps"] += 1  # a key it reads
    changed_param = stage_digest(params_data, corpus)
    assert changed_param != base
    params_data["models"]["built"]["kjv-tiny"]["steps"] -= 1

    corpus.write_text("In the beginning.")  # an input
    assert stage_digest(params_data, corpus) not in (base, changed_param)


def test_digest_covers_seeds_and_pool_ranges():
    base = digest({"a": 1}, {"x": "h"})
    assert digest({"a": 1}, {"x": "h"}, seeds={"init": 0}) != base
    assert digest({"a": 1}, {"x": "h"}, pool_ranges={"s0": [0, 8]}) != base


def test_tree_hash_sees_names_and_contents(tmp_path):
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    (d / "a").write_bytes(b"1")
    (d / "sub" / "b").write_bytes(b"2")
    h = sha256_path(d)
    assert list(sha256_tree(d)) == ["a", "sub/b"]
    (d / "sub" / "b").rename(d / "sub" / "c")
    assert sha256_path(d) != h


def test_manifest_fields_and_byte_identity(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "weights").write_bytes(b"w")
    inp = tmp_path / "in.txt"
    inp.write_text("x")
    m1 = build_manifest("s", {"k": 1}, {"data": inp}, out, seeds={"init": 3})
    write_json(out / MANIFEST, m1)
    m2 = build_manifest("s", {"k": 1}, {"data": inp}, out, seeds={"init": 3})
    assert m1 == m2  # no timestamps; the manifest itself is excluded from outputs
    assert m1["outputs"] == {"weights": sha256_path(out / "weights")}
    assert m1["inputs"] == {"data": sha256_path(inp)}
    for key in ("digest", "params", "seeds", "pool_ranges", "versions"):
        assert key in m1
    assert "torch" in m1["versions"]
    # where it ran is the run record's, not the manifest's: no machine in the hashed bytes
    assert not {"device", "numerics", "machine"} & set(m1)
    pinned = {"setting": "portable", "threads": 2, "device": "cpu", "dtype": "float32"}
    m3 = build_manifest("s", {"k": 1}, {"data": inp}, out, seeds={"init": 3}, numerics=pinned)
    assert m3["numerics"] == pinned and m3["digest"] == m1["digest"]
    assert json.loads((out / MANIFEST).read_text()) == m1


def test_atomic_dir_leaves_nothing_on_failure(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    final = tmp_path / "out"
    with pytest.raises(RuntimeError), atomic_dir(final) as tmp:
        (tmp / "partial").write_text("half")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_replaces_previous_output(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    final = tmp_path / "out"
    final.mkdir()
    (final / "stale").write_text("old")
    with atomic_dir(final) as tmp:
        (tmp / "fresh").write_text("new")
        assert (final / "stale").exists()  # the old output stands until success
    assert [p.name for p in final.iterdir()] == ["fresh"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_atomic_outputs_refuse_targets_outside_the_repository(tmp_path, monkeypatch):
    repo, victim = tmp_path / "repo", tmp_path / "victim"
    repo.mkdir()
    victim.mkdir()
    (victim / "keep").write_text("mine")
    (repo / "link").symlink_to(victim)
    monkeypatch.chdir(repo)
    for target in (Path("../victim"), victim, Path("link"), Path("models/../../victim")):
        with pytest.raises(UserError, match="outside the repository"), atomic_dir(target):
            pass
        with pytest.raises(UserError, match="outside the repository"):
            write_json(target / "x.json", {})
    assert [p.name for p in victim.iterdir()] == ["keep"]
    assert sorted(p.name for p in repo.iterdir()) == ["link"]


def test_atomic_dir_clears_stale_temporaries_and_swaps_in_one_step(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    final = Path("out")
    final.mkdir()
    (final / "v1").write_text("1")
    for stale in (".out.tmp-abc123", ".out.old-99"):
        (tmp_path / stale).mkdir()
        (tmp_path / stale / "samples.parquet").write_text("left by a killed run")
    (tmp_path / ".metrics.json.tmp-xyz").write_text("{")
    with atomic_dir(final) as tmp:
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")) == [
            tmp.name
        ]  # the stale ones are gone before the work starts
        (tmp / "v2").write_text("2")
    write_json(Path("metrics.json"), {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "out"]
    assert [p.name for p in final.iterdir()] == ["v2"]
    assert provenance._exchange(tmp_path / "a", tmp_path / "b") is False  # nothing to swap
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "in_a").write_text("")
    assert provenance._exchange(tmp_path / "a", tmp_path / "b")  # Linux: one atomic swap
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["in_a"]
