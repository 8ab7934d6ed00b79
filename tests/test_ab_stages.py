"""The A/B chain end to end on a tiny model: ab-generate -> ab-metrics -> ab-analyze."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from entropy_lab.cli import main
from entropy_lab.provenance import sha256_file
from entropy_lab.stats.inference import MIXED_STATUSES, VERDICTS
from tests.conftest import REPO, save_tiny_model, write_pool_dir
from tests.test_generation_design import fake_pool, small_ab


@pytest.fixture(scope="module")
def ab_repo(tmp_path_factory):
    """A temp repo with a tiny kjv-tiny, a pool, and the three A/B stages run once."""
    root = tmp_path_factory.mktemp("ab")
    params = small_ab(yaml.safe_load((REPO / "params.yaml").read_text()))
    params["ab"]["metrics"]["embedder"] = "tfidf"
    params["ab"]["generate"]["aa_pairs"] = 2
    params["ab"]["analysis"].update(bootstrap=200, permutations=2000)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    save_tiny_model("gpt2", root / "models" / "kjv-tiny", seed=1, positions=128)
    pool = fake_pool()
    segments = [(s.source, s.start, s.end) for s in pool.segments]
    write_pool_dir(root / "data" / "entropy", pool.data, segments)
    return root


def run(root, monkeypatch, *args):
    monkeypatch.chdir(root)
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_chain(ab_repo, monkeypatch):
    run(ab_repo, monkeypatch, "ab-generate", "--model", "kjv-tiny", "--length", "12")
    samples = pd.read_parquet(ab_repo / "data/ab/kjv-tiny/12/samples.parquet")
    # fixed42, listed seeds, four conditions x 4, two A/A pairs x 2 arms x 4
    assert len(samples) == 3 * (1 + 4 + 4 * 4 + 2 * 2 * 4)
    pool_rows = samples[samples.condition.str.startswith("entropy")]
    assert (
        pool_rows.pool_start.notna().all()
        and samples.loc[samples.seed.isna(), "prng_key"].notna().sum() == 3 * 4 * 5
    )
    assert set(samples.condition) >= {"aa1_a", "aa1_b", "aa2_a", "aa2_b"}
    assert samples.prng_key.dropna().is_unique  # every A/A arm under keys of its own
    ledger = json.loads((ab_repo / "data/ab/kjv-tiny/12/ledger.json").read_text())
    assert len(ledger) == len(pool_rows)
    manifest = json.loads((ab_repo / "data/ab/kjv-tiny/12/manifest.json").read_text())
    assert manifest["inputs"]["pool"] == sha256_file(ab_repo / "data/entropy/pool.bin")

    run(ab_repo, monkeypatch, "ab-metrics", "--model", "kjv-tiny", "--length", "12")
    per = pd.read_parquet(ab_repo / "data/ab_metrics/kjv-tiny/12/samples.parquet")
    assert per.accuracy.notna().sum() == (samples.prompt_id == "add").sum()
    assert (per.length == 12).all() and (per.n_tokens <= 12).all()
    assert per.self_bleu4.between(0, 1).all() and set(per.repetition) <= {0.0, 1.0}
    assert len(per.embedding.iloc[0]) > 0 and (per.text == samples.text).all()
    groups = pd.read_parquet(ab_repo / "data/ab_metrics/kjv-tiny/12/groups.parquet")
    assert set(groups.condition) == set(samples.condition) - {"fixed42"}

    run(ab_repo, monkeypatch, "ab-analyze")
    tests = pd.read_csv(ab_repo / "reports/ab/tests.csv", keep_default_na=False)
    assert set(tests.verdict) <= {*VERDICTS, "n = 1"}
    columns = {"p_perm_adj", "p_tost_adj", "p_lmm", "lmm_status", "alpha_eff", "mde_d"}
    assert columns | {"ci_low", "ci_high", "power", "mauve", "statistic"} <= set(tests.columns)
    tested = tests[tests.level != "distribution"]
    assert set(tested.lmm_status) <= {*MIXED_STATUSES, ""}
    dist = tests[tests.level == "distribution"]
    assert set(dist.metric) == {"energy_embedding", "energy_ngram"}
    assert len(dist) == 2 * (5 + 2)  # five comparisons and two A/A pairs, two feature sets
    arms = pd.read_csv(ab_repo / "reports/ab/arms.csv")
    assert set(arms.arm) == set(samples.condition)
    summary = json.loads((ab_repo / "reports/ab/metrics.json").read_text())
    assert summary["aa"]["pairs"] == 2 and summary["aa"]["per_metric"]["splits"] == 2
    assert summary["aa"]["per_metric"]["tests"] > 0
    assert "entropy_stream_vs_prng_stream" in summary["verdicts"]


def test_generate_is_byte_identical_when_rerun(ab_repo, monkeypatch):
    path = ab_repo / "data/ab/kjv-tiny/12/samples.parquet"
    if not path.exists():
        run(ab_repo, monkeypatch, "ab-generate", "--model", "kjv-tiny", "--length", "12")
    before = sha256_file(path)
    run(ab_repo, monkeypatch, "ab-generate", "--model", "kjv-tiny", "--length", "12")
    assert sha256_file(path) == before


def test_bad_stage_arguments_are_one_line(ab_repo, monkeypatch):
    monkeypatch.chdir(ab_repo)
    r = CliRunner().invoke(main, ["ab-generate", "--model", "gpt2", "--length", "12"])
    assert (
        r.exit_code == 2
        and r.output == "error: --model 'gpt2': not in ab.models; allowed: kjv-tiny\n"
    )
    r = CliRunner().invoke(main, ["ab-metrics", "--model", "kjv-tiny", "--length", "99"])
    assert r.exit_code == 2 and r.output == "error: --length 99: not in ab.lengths; allowed: 12\n"


@pytest.mark.slow
def test_torchrun_two_processes_write_the_same_samples(ab_repo, monkeypatch):
    """`torchrun --nproc-per-node 2` (gloo on CPU) splits the samples over two processes; rank 0
    gathers them. Every token id and text equals the single-process run; the per-token
    log-probs and entropies are float measurements of batched forward passes, equal to 1e-5."""
    import os
    import shutil
    import subprocess
    import sys

    import numpy as np

    path = ab_repo / "data/ab/kjv-tiny/12/samples.parquet"
    run(ab_repo, monkeypatch, "ab-generate", "--model", "kjv-tiny", "--length", "12")
    single = pd.read_parquet(path)
    bindir = os.path.dirname(sys.executable)
    subprocess.run(
        [
            shutil.which("torchrun", path=bindir),
            "--nproc-per-node",
            "2",
            "--no-python",
            os.path.join(bindir, "entropy-lab"),
            "ab-generate",
            "--model",
            "kjv-tiny",
            "--length",
            "12",
        ],
        cwd=ab_repo,
        check=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    sharded = pd.read_parquet(path)
    floats = ["logprobs", "entropies"]
    exact = [c for c in single.columns if c not in floats]
    assert single[exact].astype(str).equals(sharded[exact].astype(str))
    for c in floats:
        np.testing.assert_allclose(np.concatenate(single[c]), np.concatenate(sharded[c]), atol=1e-5)
    manifest = json.loads((ab_repo / "data/ab/kjv-tiny/12/manifest.json").read_text())
    assert manifest["world_size"] == 2
