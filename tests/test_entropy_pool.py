"""Pool allocation: disjoint, deterministic ranges; capacity errors; the ledger check."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entropy_lab.entropy.pool import (
    Experiment,
    Range,
    Segment,
    allocate,
    base_offsets,
    check_ledger,
    read_ledger,
    write_ledger,
)
from entropy_lab.errors import UserError

SEGMENTS = (Segment("kernel", 0, 10**6), Segment("jitter", 10**6, 2 * 10**6))

experiments = st.lists(
    st.builds(
        Experiment,
        name=st.text("abcdef", min_size=1, max_size=4),
        source=st.sampled_from(["kernel", "jitter"]),
        samples=st.integers(1, 12),
        streams=st.integers(1, 3),
        bytes_per_stream=st.integers(1, 64),
    ),
    min_size=1,
    max_size=5,
    unique_by=lambda e: e.name,
)


def every_range(exps):
    return [
        allocate(exps, SEGMENTS, e.name, i, s)
        for e in exps
        for i in range(e.samples)
        for s in range(e.streams)
    ]


@settings(max_examples=200, deadline=None)
@given(experiments)
def test_ranges_are_disjoint_inside_their_source_and_stable(exps):
    ranges = every_range(exps)
    check_ledger(ranges)
    seg = {s.source: s for s in SEGMENTS}
    owners = [e for e in exps for _ in range(e.samples * e.streams)]
    for r, e in zip(ranges, owners, strict=True):
        assert seg[e.source].start <= r.start < r.end <= seg[e.source].end
        assert r.end - r.start == e.bytes_per_stream
    assert every_range(exps) == ranges  # a pure function: identical across runs


@settings(max_examples=100, deadline=None)
@given(experiments, st.data())
def test_adding_an_experiment_never_moves_earlier_ones(exps, data):
    extra = Experiment("zz", data.draw(st.sampled_from(["kernel", "jitter"])), 3, 2, 8)
    assert every_range(exps) == [r for r in every_range([*exps, extra]) if r.experiment != "zz"]


def test_capacity_error_before_any_work():
    big = [Experiment("ab", "jitter", 1000, 2, 600)]
    with pytest.raises(
        UserError, match="entropy pool source 'jitter': need 1200000 bytes, pool has 1000000"
    ):
        base_offsets(big, SEGMENTS)


def test_unknown_source_experiment_or_sample():
    with pytest.raises(UserError, match="source 'qrng' is not in the pool"):
        base_offsets([Experiment("a", "qrng", 1, 1, 1)], SEGMENTS)
    exps = [Experiment("a", "kernel", 2, 1, 4)]
    with pytest.raises(UserError, match="unknown experiment 'b'"):
        allocate(exps, SEGMENTS, "b", 0, 0)
    with pytest.raises(UserError, match="outside 2 x 1"):
        allocate(exps, SEGMENTS, "a", 2, 0)


def test_ledger_catches_overlap_and_reuse():
    check_ledger([Range("a", 0, 0, 0, 8), Range("a", 1, 0, 8, 16), Range("a", 0, 0, 0, 8)])
    with pytest.raises(UserError, match="overlaps"):
        check_ledger([Range("a", 0, 0, 0, 8), Range("b", 0, 0, 7, 9)])
    with pytest.raises(UserError, match="two different ranges"):
        check_ledger([Range("a", 0, 0, 0, 8), Range("a", 0, 0, 8, 16)])


def test_ledger_round_trip(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # outputs must lie inside the working directory
    exps = [Experiment("ab", "kernel", 3, 2, 16)]
    ranges = every_range(exps)
    write_ledger(tmp_path / "ledger.json", ranges)
    assert read_ledger(tmp_path / "ledger.json") == ranges
    check_ledger(read_ledger(tmp_path / "ledger.json"))


def write_pool(directory, data: bytes, segments, card_changes=None):
    import hashlib
    import json

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "pool.bin").write_bytes(data)
    card = {
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "segments": [{"source": s, "start": a, "end": b} for s, a, b in segments],
    } | (card_changes or {})
    (directory / "pool.json").write_text(json.dumps(card))
    sources = [{"name": s, "bytes": b - a} for s, a, b in segments]
    outputs = {n: hashlib.sha256((directory / n).read_bytes()).hexdigest() for n in CARD_FILES}
    manifest = {"params": {"harvest.sources": sources}, "outputs": outputs}
    (directory / "manifest.json").write_text(json.dumps(manifest))


CARD_FILES = ("pool.bin", "pool.json")


GOOD = [("kernel", 0, 64), ("jitter", 64, 128)]


@pytest.mark.parametrize(
    ("segments", "changes", "truncate", "message"),
    [
        (GOOD, {}, 100, "has 100 bytes, its card says 128"),
        (GOOD, {"sha256": "0" * 64}, None, "hashes to"),
        ([("kernel", 0, 64), ("jitter", 64, 200)], {}, None, "inside the pool's 128 bytes"),
        ([("kernel", 0, 64), ("jitter", 32, 128)], {}, None, "sorted, disjoint"),
        ([("jitter", 64, 128), ("kernel", 0, 64)], {}, None, "sorted, disjoint"),
        ([("kernel", 10, 5)], {}, None, "sorted, disjoint"),
        (GOOD, {"segments": [{"source": "kernel"}]}, None, "unreadable"),
    ],
)
def test_pool_card_is_checked_against_the_data(tmp_path, segments, changes, truncate, message):
    from entropy_lab.entropy.pool import Pool

    data = bytes(range(128))
    write_pool(tmp_path, data, segments, changes)
    if truncate is not None:
        (tmp_path / "pool.bin").write_bytes(data[:truncate])
    with pytest.raises(UserError, match=message) as err:
        Pool.load(tmp_path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("tamper", ["swap", "same", "manifest", "no manifest"])
def test_a_pool_card_is_checked_against_the_harvest_manifest(tmp_path, tamper):
    """Relabelling the card's segments (jitter's bytes read as kernel's) is refused: the card no
    longer hashes to what the harvest recorded, nor matches the sources it harvested."""
    import json

    from entropy_lab.entropy.pool import Pool

    write_pool(tmp_path, bytes(range(128)), GOOD)
    card_path, manifest_path = tmp_path / "pool.json", tmp_path / "manifest.json"
    card = json.loads(card_path.read_text())
    if tamper in ("swap", "same"):
        first, second = card["segments"]
        first["source"], second["source"] = (
            (second["source"], first["source"]) if tamper == "swap" else ("kernel", "kernel")
        )
        card_path.write_text(json.dumps(card))
        message = "pool.json hashes to .* the harvest manifest recorded"
    elif tamper == "manifest":  # a card and manifest edited together still name other sources
        card["segments"][0]["source"], card["segments"][1]["source"] = "jitter", "kernel"
        card_path.write_text(json.dumps(card))
        manifest = json.loads(manifest_path.read_text())
        manifest["outputs"]["pool.json"] = (
            __import__("hashlib").sha256(card_path.read_bytes()).hexdigest()
        )
        manifest_path.write_text(json.dumps(manifest))
        message = r"segments \[\('jitter', 64\), \('kernel', 64\)\] are not the harvested"
    else:
        manifest_path.unlink()
        message = "manifest.json: unreadable"
    with pytest.raises(UserError, match=message):
        Pool.load(tmp_path)


def test_pool_read_outside_the_data_raises_instead_of_returning_short_bytes(tmp_path):
    from entropy_lab.entropy.pool import Pool

    write_pool(tmp_path, bytes(range(128)), GOOD)
    pool = Pool.load(tmp_path)
    assert pool.read(Range("ab", 0, 0, 120, 128)) == bytes(range(120, 128))
    with pytest.raises(UserError, match=r"range \[120, 132\) of 'ab' sample 3 is outside"):
        pool.read(Range("ab", 3, 0, 120, 132))
