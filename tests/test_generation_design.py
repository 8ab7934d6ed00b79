"""The A/B design: sample identities, pool allocation, and samples that do not depend on
batch size, batch composition or sharding."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from entropy_lab.cli import main
from entropy_lab.config import parse_params
from entropy_lab.entropy.pool import Pool, Segment, check_ledger
from entropy_lab.errors import UserError
from entropy_lab.generation import design
from entropy_lab.models import ResolvedModel, load
from tests.conftest import save_tiny_model


def small_ab(params_data: dict, **generate) -> dict:
    ab = params_data["ab"]
    ab["prompts"] = ab["prompts"][:2] + [p for p in ab["prompts"] if p.get("answer")][:1]
    ab["lengths"] = [12]
    ab["generate"].update(replicates=4, **generate)
    ab["metrics"]["best_of_k"] = 2
    return params_data


def fake_pool(size: int = 4096) -> Pool:
    data = bytes((i * 7919 + 13) % 256 for i in range(2 * size))
    return Pool(data, "test", (Segment("kernel", 0, size), Segment("jitter", size, 2 * size)))


def test_plan_is_complete_and_ranges_disjoint(params_data):
    ab = parse_params(small_ab(params_data)).ab
    specs = design.plan(ab, "kjv-tiny", 12, fake_pool())
    assert len({s.sample_id for s in specs}) == len(specs)
    per = {c: sum(s.condition == c for s in specs) for c in ab.generate.conditions}
    assert per["fixed42"] == 3 and per["listed_seeds"] == 3 * 4 and per["prng_stream"] == 3 * 4
    assert {s.seed for s in specs if s.condition == "fixed42"} == {42}
    ranges = [s.pool_range for s in specs if s.pool_range]
    check_ledger(ranges)
    stream = [r for s, r in ((s, s.pool_range) for s in specs) if r and s.kind == "stream"]
    assert {r.end - r.start for r in stream} == {4 * 12}
    assert design.plan(ab, "kjv-tiny", 12, fake_pool()) == specs


def test_pool_exhaustion_fails_before_generation(params_data):
    ab = parse_params(small_ab(params_data)).ab
    with pytest.raises(UserError, match=r"source 'jitter': need \d+ bytes, pool has 64"):
        design.plan(ab, "kjv-tiny", 12, fake_pool(64))


def test_unknown_condition_is_one_line(params_data):
    params_data["ab"]["generate"]["conditions"].append("quantum_seed")
    with pytest.raises(UserError) as err:
        parse_params(params_data)
    msg = str(err.value)
    assert "ab.generate.conditions[7]" in msg and "'fixed42'" in msg and "\n" not in msg


def test_comparison_of_an_absent_condition_is_rejected(params_data):
    params_data["ab"]["generate"]["conditions"].remove("entropy_stream")
    with pytest.raises(UserError, match=r"ab.analysis.comparisons\[1\] = 'entropy_stream'"):
        parse_params(params_data)


def test_ab_source_must_be_in_the_pool(params_data):
    params_data["ab"]["generate"]["source"] = "external"
    ab = parse_params(small_ab(params_data)).ab
    with pytest.raises(
        UserError, match="source 'external' is not in the pool; pool has kernel, jitter"
    ):
        design.plan(ab, "kjv-tiny", 12, fake_pool())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = save_tiny_model("gpt2", tmp_path_factory.mktemp("d") / "m", seed=5, positions=128)
    return load(ResolvedModel("tiny", path, "path"))


def test_samples_do_not_depend_on_batching_or_sharding(params_data, tiny):
    model, tok = tiny
    ab = parse_params(small_ab(params_data)).ab
    pool = fake_pool()
    specs = [s for s in design.plan(ab, "kjv-tiny", 12, pool) if s.kind == "stream"]
    runs = {b: design.generate(model, tok, ab, specs, pool, b) for b in (1, 4, 16)}
    # two shards, each in its own order, merged back by sample id
    shards = [design.generate(model, tok, ab, specs[r::2][::-1], pool, 16) for r in (0, 1)]
    merged = {row["sample_id"]: row for part in shards for row in part}
    want = [r["token_ids"] for r in runs[1]]
    assert [r["token_ids"] for r in runs[4]] == want
    assert [r["token_ids"] for r in runs[16]] == want
    assert [merged[s.sample_id]["token_ids"] for s in specs] == want
    # and the arms really differ: distinct uniforms give distinct samples
    assert len({tuple(t) for t in want}) > len(want) // 2


def test_stage_refuses_an_exhausted_pool_and_writes_nothing(tmp_path, params_data, monkeypatch):
    small_ab(params_data)
    params_data["ab"]["generate"]["replicates"] = 10_000
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params_data))
    pool_dir = tmp_path / "data" / "entropy"
    pool_dir.mkdir(parents=True)
    pool = fake_pool(1024)
    (pool_dir / "pool.bin").write_bytes(pool.data)
    from entropy_lab.provenance import sha256_file

    card = {
        "sha256": sha256_file(pool_dir / "pool.bin"),
        "segments": [s.__dict__ for s in pool.segments],
    }
    (pool_dir / "pool.json").write_text(json.dumps(card))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["ab-generate", "--model", "kjv-tiny", "--length", "12"])
    assert result.exit_code == 2
    assert result.output.startswith("error: entropy pool source 'jitter': need ")
    assert result.output.count("\n") == 1
    assert not (tmp_path / "data" / "ab").exists()
