"""Hostile and careless params against the CLI: each is refused in one line, exit 2, before any
work, and leaves the tree as it was (directories outside the repository included)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import yaml
from click.testing import CliRunner

from entropy_lab.cli import main
from entropy_lab.errors import UserError


def tree(root) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def refused(params_data, tmp_path, monkeypatch, edit, stage: str = "models") -> str:
    """Apply `edit` to the params, run `stage` in a fresh repo beside a victim directory, and
    return its one error line after checking exit 2 and that nothing changed anywhere."""
    data = copy.deepcopy(params_data)
    edit(data)
    repo, victim = tmp_path / "repo", tmp_path / "victim"
    repo.mkdir()
    victim.mkdir()
    (victim / "precious.txt").write_text("do not touch")
    (repo / "params.yaml").write_text(yaml.safe_dump(data))
    before = tree(tmp_path)
    monkeypatch.chdir(repo)
    result = CliRunner().invoke(main, [*stage.split()])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert tree(tmp_path) == before
    return lines[0]


def set_key(dotted: str, value):
    def edit(data):
        *path, last = dotted.split(".")
        node = data
        for k in path:
            node = node[int(k)] if isinstance(node, list) else node[k]
        node[last] = value

    return edit


NAMES = [  # names become paths: never a separator or `..`
    ("models.build", ["../victim"]),
    ("models.build", ["/tmp/victim"]),
    ("models.use", ["kjv-tiny", "../victim"]),
    ("training.models", ["kjv-tiny/../x"]),
    ("training.lora.target_modules", ["c_attn", "../x"]),
    ("tasks.paraphrase.model", "../../etc"),
]


@pytest.mark.parametrize(("key", "value"), NAMES)
def test_names_that_would_escape_are_refused(params_data, tmp_path, monkeypatch, key, value):
    line = refused(params_data, tmp_path, monkeypatch, set_key(key, value))
    assert line.startswith(f"error: params.yaml: {key}")
    assert "String should match pattern" in line


@pytest.mark.parametrize("section", ["profiles", "built"])
def test_a_model_name_that_would_escape_is_refused(params_data, tmp_path, monkeypatch, section):
    def edit(data):
        data["models"][section]["../victim"] = data["models"][section]["kjv-tiny"]

    line = refused(params_data, tmp_path, monkeypatch, edit)
    assert line.startswith(f"error: params.yaml: models.{section}.../victim")


NON_FINITE = [  # YAML's .inf and .nan are floats: every float refuses them
    ("models.built.kjv-tiny.weight_decay", math.inf),
    ("models.built.kjv-tiny.lr", math.nan),
    ("training.lambda_kl", math.inf),
    ("training.lora.alpha", math.inf),
    ("evaluate.alpha", math.nan),
]


@pytest.mark.parametrize(("key", "value"), NON_FINITE)
def test_infinity_and_nan_are_refused(params_data, tmp_path, monkeypatch, key, value):
    line = refused(params_data, tmp_path, monkeypatch, set_key(key, value))
    assert line.startswith(f"error: params.yaml: {key} = {value!r}: ")
    assert "finite" in line


SIZES = [  # bounded before any work: no hang, no MemoryError traceback
    ("models.built.kjv-tiny.steps", 10**12),
    ("models.built.kjv-tiny.weight_decay", 5.0),
    ("training.steps", 10**12),
    ("training.batch_size", 10**9),
    ("tasks.counts.train", 10**12),
    ("evaluate.samples", 10**12),
    ("evaluate.records_per_family.validation", 10**9),
    ("evaluate.monte_carlo", 10**12),
]


@pytest.mark.parametrize(("key", "value"), SIZES)
def test_sizes_have_upper_bounds(params_data, tmp_path, monkeypatch, key, value):
    line = refused(params_data, tmp_path, monkeypatch, set_key(key, value))
    assert line.startswith(f"error: params.yaml: {key} = {value!r}: Input should be less than")


BAD_REPOS = ["not a repo!", "owner/../victim", "a--b", "/abs/path", "owner/name/extra"]


@pytest.mark.parametrize("repo", BAD_REPOS)
def test_malformed_hub_repo_ids_fail_at_load_not_after_training(
    params_data, tmp_path, monkeypatch, repo
):
    line = refused(params_data, tmp_path, monkeypatch, set_key("models.profiles.gpt2.repo", repo))
    assert line.startswith(f"error: params.yaml: models.profiles.gpt2.repo = {repo!r}")


@pytest.mark.parametrize("key", ["models.use", "training.models", "training.variants"])
def test_duplicates_are_refused(params_data, tmp_path, monkeypatch, key):
    value = {"training.variants": ["ce_kl", "ce_kl"]}.get(key, ["kjv-tiny", "kjv-tiny"])
    line = refused(params_data, tmp_path, monkeypatch, set_key(key, value))
    assert line.startswith(f"error: params.yaml: {key} = ")


def test_a_loss_that_becomes_non_finite_stops_training_in_one_line(params_data, monkeypatch):
    from entropy_lab.config import parse_params
    from entropy_lab.training import pretrain

    p = (
        parse_params(params_data)
        .models.built["kjv-tiny"]
        .model_copy(update={"n_layer": 1, "n_embd": 16, "n_head": 2, "context": 16, "steps": 5})
    )
    calls = iter(range(100))

    def poisoned(model, batch):
        return torch.tensor(float("nan") if next(calls) == 2 else 1.0, requires_grad=True)

    monkeypatch.setattr(pretrain, "next_byte_loss", poisoned)
    data = pretrain.encode(["In the beginning"] * 20)
    with pytest.raises(UserError, match=r"^the pretraining loss became nan at step 3"):
        pretrain.train(p, data, data)
