"""params.yaml validation: every kind of bad input is one line naming the key."""

from __future__ import annotations

import copy

import pytest
import yaml
from click.testing import CliRunner

from entropy_lab.cli import main
from entropy_lab.config import load_params, parse_params
from entropy_lab.errors import UserError
from entropy_lab.schema import flatten


def error_for(data: dict) -> str:
    with pytest.raises(UserError) as info:
        parse_params(data)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_repository_params_are_valid(params_data):
    params = parse_params(params_data)
    assert params.models.use == ["kjv-tiny"]
    assert params.models.build == ["kjv-tiny"] and "kjv-small" in params.models.built


def test_unknown_key_lists_allowed(params_data):
    params_data["models"]["built"]["kjv-tiny"]["stepz"] = 5
    msg = error_for(params_data)
    assert msg.startswith("params.yaml: models.built.kjv-tiny.stepz = 5: unknown key; allowed: ")
    assert "steps" in msg and "batch_size" in msg


def test_unknown_section(params_data):
    params_data["harvset"] = {}
    assert "harvset" in error_for(
        params_data
    ) and "allowed: ab, evaluate, harvest, models, tasks, training" in error_for(params_data)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("steps", "100", "models.built.kjv-tiny.steps = '100': Input should be a valid integer"),
        ("lr", "3e-3", "models.built.kjv-tiny.lr = '3e-3': Input should be a valid number"),
        ("steps", 2.5, "models.built.kjv-tiny.steps = 2.5: Input should be a valid integer"),
    ],
)
def test_wrong_type(params_data, key, value, expected):
    params_data["models"]["built"]["kjv-tiny"][key] = value
    assert expected in error_for(params_data)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("steps", 0, "models.built.kjv-tiny.steps = 0: Input should be greater than or equal to 1"),
        ("lr", 0.0, "models.built.kjv-tiny.lr = 0.0: Input should be greater than 0"),
        (
            "val_fraction",
            0.7,
            "models.built.kjv-tiny.val_fraction = 0.7: Input should be less than 0.5",
        ),
        ("n_embd", 130, "models.built.kjv-tiny.n_embd = 130: must be a multiple of n_head (4)"),
        ("warmup_steps", 900, "models.built.kjv-tiny.warmup_steps = 900: must be < steps (900)"),
    ],
)
def test_out_of_range(params_data, key, value, expected):
    params_data["models"]["built"]["kjv-tiny"][key] = value
    assert expected in error_for(params_data)


def test_unknown_model_name(params_data):
    params_data["models"]["use"] = ["kjv-tiny", "gpt3"]
    msg = error_for(params_data)
    assert msg.startswith("params.yaml: models.use[1] = 'gpt3': unknown model; allowed: ")
    assert "gpt2" in msg and "kjv-tiny" in msg


def test_unknown_choice_lists_choices(params_data):
    params_data["models"]["profiles"]["gpt2"]["quantization"] = "3bit"
    msg = error_for(params_data)
    assert "models.profiles.gpt2.quantization = '3bit'" in msg
    assert "'none', '8bit' or '4bit'" in msg


def test_missing_key(params_data):
    del params_data["models"]["use"]
    assert error_for(params_data) == "params.yaml: models.use: required key is missing"


def test_built_models_need_a_spec_and_a_build_stage(params_data):
    params_data["models"]["profiles"]["gpt2"]["repo"] = None
    assert error_for(params_data).startswith(
        "params.yaml: models.built = ['kjv-base', 'kjv-small', 'kjv-tiny']: one spec for each "
        "profile with repo: null (gpt2, kjv-base, kjv-small, kjv-tiny)"
    )
    params_data["models"]["profiles"]["gpt2"]["repo"] = "gpt2"
    params_data["models"]["use"] = ["kjv-tiny", "kjv-small"]
    assert error_for(params_data) == (
        "params.yaml: models.build = ['kjv-tiny']: the built models in use, in its order: "
        "['kjv-tiny', 'kjv-small']"
    )
    params_data["models"]["build"] = ["kjv-tiny", "kjv-small"]
    assert parse_params(params_data).models.build == ["kjv-tiny", "kjv-small"]


def test_not_a_mapping_and_bad_yaml(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(UserError, match="expected a mapping"):
        load_params(path)
    path.write_text("models: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_params(path)
    with pytest.raises(UserError, match="cannot read params"):
        load_params(tmp_path / "absent.yaml")


def test_flatten_gives_dotted_keys(params_data):
    flat = flatten(parse_params(params_data).models.built["kjv-tiny"], "models.built.kjv-tiny")
    assert (
        flat["models.built.kjv-tiny.steps"] == params_data["models"]["built"]["kjv-tiny"]["steps"]
    )
    assert all(k.startswith("models.built.kjv-tiny.") for k in flat)


def test_cli_bad_params_exit_2_one_line_nothing_written(params_data, tmp_path, monkeypatch):
    bad = copy.deepcopy(params_data)
    bad["models"]["built"]["kjv-tiny"]["steps"] = -1
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(bad))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["models"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "error: params.yaml: models.built.kjv-tiny.steps = -1: Input should be greater than or equal to 1"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]
