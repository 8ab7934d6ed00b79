"""Manifests: the digest tracks exactly what determines a result; outputs appear atomically."""

from __future__ import annotations

import json

import pytest

from entropy_lab.config import flatten, parse_params
from entropy_lab.provenance import (
    MANIFEST,
    atomic_dir,
    build_manifest,
    digest,
    sha256_path,
    sha256_tree,
    write_json,
)


def stage_digest(params_data, corpus) -> str:
    """The digest a stage reading only `models.tiny` would record."""
    read = flatten(parse_params(params_data).models.tiny, "models.tiny")
    return digest(read, {"corpus": sha256_path(corpus)})


def test_digest_changes_when_and_only_when_read_key_or_input_changes(params_data, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("In the beginning")
    base = stage_digest(params_data, corpus)
    assert stage_digest(params_data, corpus) == base  # deterministic

    params_data["models"]["device"] = "cpu"  # a key this stage does not read
    params_data["models"]["profiles"]["gpt2"]["revision"] = "main"
    assert stage_digest(params_data, corpus) == base

    params_data["models"]["tiny"]["steps"] += 1  # a key it reads
    changed_param = stage_digest(params_data, corpus)
    assert changed_param != base
    params_data["models"]["tiny"]["steps"] -= 1

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


def test_manifest_fields_and_byte_identity(tmp_path):
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
    for key in ("digest", "params", "seeds", "pool_ranges", "versions", "device"):
        assert key in m1
    assert "torch" in m1["versions"]
    assert json.loads((out / MANIFEST).read_text()) == m1


def test_atomic_dir_leaves_nothing_on_failure(tmp_path):
    final = tmp_path / "out"
    with pytest.raises(RuntimeError), atomic_dir(final) as tmp:
        (tmp / "partial").write_text("half")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_replaces_previous_output(tmp_path):
    final = tmp_path / "out"
    final.mkdir()
    (final / "stale").write_text("old")
    with atomic_dir(final) as tmp:
        (tmp / "fresh").write_text("new")
        assert (final / "stale").exists()  # the old output stands until success
    assert [p.name for p in final.iterdir()] == ["fresh"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
