"""The A/B design: sample identities, pool allocation, and samples that do not depend on
batch size, batch composition or sharding."""

from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner

from entropy_lab.cli import main
from entropy_lab.config import parse_params
from entropy_lab.entropy.pool import Pool, Segment, check_ledger
from entropy_lab.errors import UserError
from entropy_lab.generation import design
from entropy_lab.models import ResolvedModel, load
from tests.conftest import save_tiny_model, write_pool_dir


def small_ab(params_data: dict, **generate) -> dict:
    ab = params_data["ab"]
    ab["prompts"] = ab["prompts"][:2] + [p for p in ab["prompts"] if p.get("answer")][:1]
    ab["lengths"] = [12]
    ab["generate"].update(replicates=4, aa_pairs=0, **generate)
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
    assert "ab.generate.conditions[6]" in msg and "'fixed42'" in msg and "\n" not in msg


def test_comparison_of_an_absent_condition_is_rejected(params_data):
    params_data["ab"]["generate"]["conditions"].remove("entropy_stream")
    with pytest.raises(UserError, match=r"ab.analysis.primary.comparisons\[1\] = 'entropy_stream'"):
        parse_params(params_data)


def test_ab_source_must_be_in_the_pool(params_data):
    """params.yaml names a harvested source, but the pool on disk came from another harvest."""
    ab = parse_params(small_ab(params_data)).ab
    data = fake_pool().data
    kernel_only = Pool(data[:4096], "test", (Segment("kernel", 0, 4096),))
    with pytest.raises(UserError, match="source 'jitter' is not in the pool; pool has kernel"):
        design.plan(ab, "kjv-tiny", 12, kernel_only)


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
    pool = fake_pool(1024)
    segments = [(s.source, s.start, s.end) for s in pool.segments]
    write_pool_dir(tmp_path / "data" / "entropy", pool.data, segments)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["ab-generate", "--model", "kjv-tiny", "--length", "12"])
    assert result.exit_code == 2
    assert result.output.startswith("error: entropy pool source 'jitter': need ")
    assert result.output.count("\n") == 1
    assert not (tmp_path / "data" / "ab").exists()


def test_a_model_that_stops_early_cannot_change_the_grouping(params_data, tiny):
    """Every row stops after 3 tokens (a uniform at the top of the CDF picks the last token,
    EOS): the metrics keep `length` = max_new_tokens, the design factor, and count the
    tokens in `n_tokens`; the analysis sees one (model, length) run."""
    import numpy as np
    import pandas as pd

    from entropy_lab.generation.embedders import load_embedder, load_scorer
    from entropy_lab.generation.metrics import compute
    from entropy_lab.generation.sampler import Sampling, sample_streams
    from entropy_lab.stats.ab import analyze

    model, tok = tiny
    small_ab(params_data)
    params_data["ab"]["generate"].update(top_k=0, aa_pairs=1)
    params_data["ab"]["analysis"]["permutations"] = 2000
    params = parse_params(params_data)
    ab = params.ab
    specs = [s for s in design.plan(ab, "kjv-tiny", 12, fake_pool()) if s.kind == "stream"]
    prompts = design.encode_prompts(tok, ab)
    u = np.random.default_rng(0).uniform(0, 0.9, (len(specs), 12))
    u[:, 3] = 1 - 1e-12
    outs = sample_streams(
        model, tok, [prompts[s.prompt_id] for s in specs], u, Sampling(1.0, 0, 1.0, 12)
    )
    rows = [
        {
            "sample_id": s.sample_id,
            "model": s.model,
            "length": s.length,
            "condition": s.condition,
            "prompt_id": s.prompt_id,
            "replicate": s.replicate,
            "token_ids": o.token_ids,
            "text": tok.decode(o.token_ids, skip_special_tokens=True),
            "logprobs": o.logprobs,
            "entropies": o.entropies,
            "stopped": o.stopped,
        }
        for s, o in zip(specs, outs, strict=True)
    ]
    assert all(r["stopped"] and len(r["token_ids"]) == 3 for r in rows)
    texts = [r["text"] for r in rows]
    per, groups = compute(rows, ab, load_embedder("tfidf", texts), load_scorer("topicality", {}))
    per = pd.DataFrame(per)
    assert (per.length == 12).all() and (per.n_tokens == 3).all() and (per.early_stop == 1).all()
    tests, _ = analyze(per, pd.DataFrame(groups), params)
    assert set(tests.length) == {12}
