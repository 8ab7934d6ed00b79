"""Hostile or careless `ab` params: each is refused at load time in one line naming the key,
exit 2, and nothing is written, whichever A/B stage is asked to run."""

from __future__ import annotations

import math

import pytest
import yaml
from click.testing import CliRunner

from entropy_lab.cli import main

STAGES = (
    ["ab-generate", "--model", "kjv-tiny", "--length", "64"],
    ["ab-metrics", "--model", "kjv-tiny", "--length", "64"],
    ["ab-analyze"],
)


def _set(data: dict, dotted: str, value) -> None:
    *path, last = dotted.split(".")
    for part in path:
        data = data[int(part)] if isinstance(data, list) else data[part]
    if isinstance(data, list):
        data[int(last)] = value
    else:
        data[last] = value


def refused(tmp_path, monkeypatch, params_data, edits: dict, stage: list[str]) -> str:
    """Run `stage` on params with `edits`; assert exit 2, one line, no file written."""
    for key, value in edits.items():
        _set(params_data, key, value)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params_data))
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, stage)
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and result.output.startswith("error: params.yaml: ")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    return result.output.removeprefix("error: params.yaml: ").rstrip("\n")


FINITE = "Input should be a finite number"


@pytest.mark.parametrize(
    ("key", "value", "line"),
    [
        ("ab.generate.temperature", math.inf, f"ab.generate.temperature = inf: {FINITE}"),
        ("ab.generate.top_p", math.nan, f"ab.generate.top_p = nan: {FINITE}"),
        (
            "ab.analysis.equivalence_margin_sd",
            math.inf,
            f"ab.analysis.equivalence_margin_sd = inf: {FINITE}",
        ),
        ("ab.analysis.alpha", math.nan, f"ab.analysis.alpha = nan: {FINITE}"),
        ("ab.analysis.power", -math.inf, f"ab.analysis.power = -inf: {FINITE}"),
    ],
)
def test_infinite_or_nan_floats(tmp_path, monkeypatch, params_data, key, value, line):
    assert refused(tmp_path, monkeypatch, params_data, {key: value}, STAGES[0]) == line


@pytest.mark.parametrize(
    ("key", "value", "line"),
    [
        (
            "ab.generate.temperature",
            1000.0,
            "ab.generate.temperature = 1000.0: Input should be less than or equal to 10",
        ),
        (
            "ab.analysis.equivalence_margin_sd",
            5.0,
            "ab.analysis.equivalence_margin_sd = 5.0: Input should be less than or equal to 2",
        ),
        (
            "ab.generate.top_k",
            10**9,
            "ab.generate.top_k = 1000000000: Input should be less than or equal to 1000000",
        ),
        (
            "ab.generate.top_p",
            1.5,
            "ab.generate.top_p = 1.5: Input should be less than or equal to 1",
        ),
    ],
)
def test_floats_and_sampling_settings_have_upper_bounds(
    tmp_path, monkeypatch, params_data, key, value, line
):
    assert refused(tmp_path, monkeypatch, params_data, {key: value}, STAGES[0]) == line


@pytest.mark.parametrize(
    ("edits", "line"),
    [
        (
            {"ab.generate.replicates": 10**9},
            "ab.generate.replicates = 1000000000: Input should be less than or equal to 10000",
        ),
        (
            {"ab.generate.replicates": 10_000, "ab.generate.aa_replicates": 10_000},
            "ab.generate.replicates = 10000: 4,400,050 samples per model and length; "
            "at most 1,000,000",
        ),
        (
            {"ab.generate.aa_pairs": 1000},
            "ab.generate.aa_pairs = 1000: Input should be less than or equal to 200",
        ),
        (
            {"ab.lengths": [64, 10**6]},
            "ab.lengths[1] = 1000000: Input should be less than or equal to 32768",
        ),
        (
            {"ab.analysis.permutations": 10**7},
            "ab.analysis.permutations = 10000000: Input should be less than or equal to 100000",
        ),
        (
            {"ab.analysis.permutations": 1000},
            "ab.analysis.permutations = 1000: at least 1500: the smallest permutation p-value, "
            "1/(permutations+1), must pass alpha/m, the correction's threshold for a lone effect "
            "among the 75 tests of the largest family",
        ),
        (
            {"ab.generate.batch_size": 10**6},
            "ab.generate.batch_size = 1000000: Input should be less than or equal to 4096",
        ),
    ],
)
def test_sizes_are_bounded(tmp_path, monkeypatch, params_data, edits, line):
    assert refused(tmp_path, monkeypatch, params_data, edits, STAGES[0]) == line


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s[0])
def test_answer_regex_must_compile(tmp_path, monkeypatch, params_data, stage):
    line = refused(tmp_path, monkeypatch, params_data, {"ab.prompts.5.answer": "("}, stage)
    assert line == (
        "ab.prompts[5].answer = '(': not a regular expression "
        "(missing ), unterminated subpattern at position 0)"
    )


@pytest.mark.parametrize(
    ("edits", "line"),
    [
        ({"ab.lengths": [64, 128, 64]}, "ab.lengths = [64, 128, 64]: each value at most once"),
        (
            {"ab.models": ["kjv-tiny", "kjv-tiny"]},
            "ab.models = ['kjv-tiny', 'kjv-tiny']: each value at most once",
        ),
        (
            {"ab.generate.conditions": ["fixed42", "prng_seed", "fixed42"]},
            "ab.generate.conditions = ['fixed42', 'prng_seed', 'fixed42']: each value at most once",
        ),
        ({"ab.prompts.1.id": "prophecy"}, "ab.prompts = ['prophecy', 'prophecy', 'winter_poem',"),
    ],
)
def test_duplicates_are_refused(tmp_path, monkeypatch, params_data, edits, line):
    assert refused(tmp_path, monkeypatch, params_data, edits, STAGES[2]).startswith(line)


@pytest.mark.parametrize("name", ["../victim", "a b", "-x", "", "x/y", "é"])
def test_prompt_ids_are_plain_names(tmp_path, monkeypatch, params_data, name):
    line = refused(tmp_path, monkeypatch, params_data, {"ab.prompts.0.id": name}, STAGES[0])
    assert line.startswith(f"ab.prompts[0].id = {name!r}: String should ")


def test_condition_names_are_known(tmp_path, monkeypatch, params_data):
    line = refused(
        tmp_path, monkeypatch, params_data, {"ab.generate.conditions.0": "../x"}, STAGES[0]
    )
    assert line.startswith("ab.generate.conditions[0] = '../x': Input should be 'fixed42', ")


@pytest.mark.parametrize(
    ("scorer", "allowed"),
    [
        ("reward:/etc", "reward:<dir> takes a relative path inside the repository"),
        ("reward:../outside", "reward:<dir> takes a relative path inside the repository"),
        ("reward:models/../../x", "reward:<dir> takes a relative path inside the repository"),
        ("reward:", "reward:<dir> takes a relative path inside the repository"),
        ("beauty", "allowed: repeat_rate, longest_repeat, repetition, echo"),
    ],
)
def test_scorer_is_a_metric_or_a_model_inside_the_repository(
    tmp_path, monkeypatch, params_data, scorer, allowed
):
    line = refused(tmp_path, monkeypatch, params_data, {"ab.metrics.scorer": scorer}, STAGES[1])
    assert line.startswith(f"ab.metrics.scorer = {scorer!r}: {allowed}")


@pytest.mark.parametrize("source", ["external", "quantum"])
def test_entropy_source_must_be_harvested(tmp_path, monkeypatch, params_data, source):
    line = refused(tmp_path, monkeypatch, params_data, {"ab.generate.source": source}, STAGES[0])
    assert (
        line == f"ab.generate.source = {source!r}: not in harvest.sources; allowed: kernel, jitter"
    )
