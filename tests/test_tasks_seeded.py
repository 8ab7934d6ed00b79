"""The entropy-driven mode: u from the pool, the answer at u under the target's inverse CDF."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from scipy import stats

from entropy_lab.cli import main
from entropy_lab.config import parse_params
from entropy_lab.entropy.layout import seeded_experiments
from entropy_lab.entropy.pool import Pool, check_ledger, read_ledger
from entropy_lab.errors import UserError
from entropy_lab.tasks.base import Target
from entropy_lab.tasks.dataset import add_seeded, build
from entropy_lab.tasks.families import instantiate
from entropy_lab.tasks.seeded import inverse_cdf, seeded_prompt, u_from_word, u_text
from tests.conftest import write_pool


def test_inverse_cdf_at_the_boundaries():
    t = Target(
        ("a", "b", "zero", "c"), (Fraction(1, 4), Fraction(1, 2), Fraction(0), Fraction(1, 4))
    )
    at = {x: inverse_cdf(t, Fraction(x, 1000)) for x in (0, 249, 250, 749, 750, 999)}
    assert at == {0: "a", 249: "a", 250: "b", 749: "b", 750: "c", 999: "c"}  # [cdf[i-1], cdf[i])
    assert "zero" not in {inverse_cdf(t, Fraction(x, 1000)) for x in range(1000)}
    # float probabilities: compared through their exact binary values; rounding past the last
    # cumulative sum falls on the last outcome with positive probability
    f = Target(("x", "y", "z"), (0.1, 0.2, 0.7 - 1e-12))
    assert inverse_cdf(f, Fraction(1, 10)) == "x"  # float 0.1 is just above 1/10: still x
    assert inverse_cdf(f, Fraction(999999, 10**6)) == "z"


def test_u_from_a_word_is_uniform_on_the_decimal_grid():
    assert u_from_word(0, 3) == 0 and u_from_word(2**32 - 1, 3) == Fraction(999, 1000)
    assert u_text(Fraction(7, 100), 3) == "0.070"
    words = np.arange(0, 2**32, 4099, dtype=np.uint64)  # an even sweep of the word range
    grid = np.array([int(u_from_word(int(w), 2) * 100) for w in words])
    counts = np.bincount(grid, minlength=100)
    assert counts.max() - counts.min() <= 2  # each u value gets 1/100 of the words
    assert seeded_prompt(
        "Roll 1d6. Answer with the total only.", "Answer with the total only.", "0.5"
    ) == ("Roll 1d6. Use u = 0.5. Answer with the total only.")


def test_pool_drawn_u_give_inverse_cdf_answers_that_follow_the_target(params_data, tmp_path):
    params = parse_params(params_data)
    section = params.tasks.model_copy(
        update={"seeded": params.tasks.seeded.model_copy(update={"eval_records": 5})}
    )
    records = build(section)
    pool = Pool.load(write_pool(tmp_path))
    ranges = add_seeded(records, section, pool)
    check_ledger(ranges)
    families = instantiate(section)
    train = records["train"]
    for r in train:
        if not r["support"]:
            assert r["seeded_u"] == []  # passwords, UUIDs, lottery: no enumerable support
            continue
        assert len(r["seeded_u"]) == section.seeded.train_draws
        target = families[r["family"]].target(json.loads(r["instance"]))
        for u, a in zip(r["seeded_u"], r["seeded_answers"], strict=True):
            assert a == inverse_cdf(target, Fraction(u))
    assert all(r["seeded_u"] for r in records["validation"][:5] if r["support"])
    assert all(not r["seeded_u"] for r in records["validation"][5:])
    # the pool's u are uniform (mid-points of the 10^-3 grid), so answers follow the targets
    us = [float(u) + 0.0005 for r in train for u in r["seeded_u"]]
    assert len(us) > 5000 and stats.kstest(us, "uniform").pvalue > 1e-3


def test_tasks_stage_records_its_pool_ranges_and_refuses_a_small_pool(
    params_data, tmp_path, monkeypatch
):
    data = params_data
    data["tasks"]["counts"] = {  # each evaluation split: 2 of every family of its pool
        "train": 60,
        "validation": 32,
        "test_template": 32,
        "test_family": 12,
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.chdir(tmp_path)
    write_pool(tmp_path, bytes_per_source=1024)
    result = CliRunner().invoke(main, ["tasks"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: entropy pool source 'kernel': need ")
    assert not (tmp_path / "data" / "tasks").exists()
    write_pool(tmp_path)
    assert CliRunner().invoke(main, ["tasks"]).exit_code == 0
    ledger = read_ledger(tmp_path / "data" / "tasks" / "ledger.json")
    check_ledger(ledger)
    manifest = json.loads((tmp_path / "data" / "tasks" / "manifest.json").read_text())
    assert manifest["pool_ranges"]["ranges"] == len(ledger) > 0
    assert "pool" in manifest["inputs"]


def test_the_seeded_source_must_be_harvested(params_data):
    params_data["tasks"]["seeded"]["source"] = "external"
    with pytest.raises(UserError, match=r"^params.yaml: tasks.seeded.source = 'external': "):
        parse_params(params_data)


def test_seeded_u_come_from_the_tail_of_their_segment(params_data, tmp_path):
    """The A/B conditions lay out from a segment's start, the seeded mode from its end."""
    section = parse_params(params_data).tasks
    pool = Pool.load(write_pool(tmp_path))
    ranges = add_seeded(build(section), section, pool)
    kernel = next(s for s in pool.segments if s.source == "kernel")
    need = sum(e.size for e in seeded_experiments(section))
    assert min(r.start for r in ranges) >= kernel.end - need > kernel.start
    assert max(r.end for r in ranges) <= kernel.end
