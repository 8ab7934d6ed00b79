"""The task dataset: config errors, splits, determinism, paraphrase filtering, the stage."""

from __future__ import annotations

import copy
import json

import pytest
import yaml
from click.testing import CliRunner

from entropy_lab.cli import main
from entropy_lab.config import parse_params
from entropy_lab.errors import UserError
from entropy_lab.provenance import sha256_tree
from entropy_lab.tasks.builder import (
    Builder,
    apply_paraphrases,
    keeps_entities,
    records_fingerprint,
)
from entropy_lab.tasks.grammar import expand, normalise, surface_forms
from tests.conftest import write_pool


def small(params_data: dict) -> dict:
    data = copy.deepcopy(params_data)
    data["tasks"]["counts"] = {
        "train": 120,
        "validation": 40,
        "test_template": 40,
        "test_family": 30,
    }
    data["tasks"]["draws"] = 4
    return data


def error_for(data: dict) -> str:
    with pytest.raises(UserError) as info:
        parse_params(data)
    assert "\n" not in str(info.value)
    return str(info.value)


@pytest.mark.parametrize(
    ("family", "config", "expected"),
    [
        (
            "dice",
            {"sides": [6, 0], "max_dice": 2, "modifiers": [0]},
            "tasks.families.dice.sides[1] = 0: Input should be greater than or equal to 2",
        ),
        (
            "weighted_choice",
            {"weights": [[1, 2], [3, -1]]},
            "tasks.families.weighted_choice.weights[1][1] = -1: Input should be greater than or equal to 0",
        ),
        (
            "weighted_choice",
            {"weights": [[0, 0]]},
            "tasks.families.weighted_choice.weights[0] = [0, 0]: at least one weight must be positive",
        ),
        (
            "k_of_n",
            {"pairs": [[4, 2], [3, 5]]},
            "tasks.families.k_of_n.pairs[1] = [3, 5]: k = 5 > n = 3; need [n, k] with k <= n",
        ),
        ("lottery", {"games": [[5, 6]]}, "tasks.families.lottery.games[0] = [5, 6]: k = 6 > n = 5"),
        (
            "coins",
            {"max_flips": 2, "heads_probability": ["3/2"]},
            "tasks.families.coins.heads_probability[0] = '3/2': Value error, must be strictly between 0 and 1",
        ),
        (
            "spinner",
            {"sectors": [[90, 90]]},
            "tasks.families.spinner.sectors[0] = [90, 90]: angles must sum to 360 (they sum to 180)",
        ),
        (
            "normal",
            {"means": [0.0], "sds": [100.0], "decimals": 1, "tail": 1.0e-6},
            "tasks.families.normal.sds = [100.0]: support of",
        ),
    ],
)
def test_bad_family_configs_name_the_key(params_data, family, config, expected):
    params_data["tasks"]["families"][family] = config
    assert expected in error_for(params_data)


def test_unknown_family(params_data):
    params_data["tasks"]["families"]["roulette"] = {}
    msg = error_for(params_data)
    assert msg.startswith("params.yaml: tasks.families.roulette = {}: unknown key; allowed: ")
    assert "dice" in msg and "binomial" in msg


def test_heldout_family_must_be_enabled(params_data):
    params_data["tasks"]["heldout_families"] = ["geometric", "roulette"]
    assert "tasks.heldout_families[1] = 'roulette': not an enabled family" in error_for(params_data)


def test_paraphrase_model_must_be_a_profile(params_data):
    params_data["tasks"]["paraphrase"]["model"] = "gpt5"
    assert "tasks.paraphrase.model = 'gpt5': not in models.use; allowed: kjv-tiny" in error_for(
        params_data
    )


def test_grammar_expands_every_alternative():
    import numpy as np

    template = "[Pick|Choose] a [random |]number from {low} to {high}."
    assert surface_forms(template) == 4
    rng = np.random.default_rng(0)
    seen = {expand(template, {"low": "1", "high": "6"}, rng) for _ in range(200)}
    assert seen == {
        f"{v} a {r}number from 1 to 6." for v in ("Pick", "Choose") for r in ("random ", "")
    }
    assert normalise("Pick  a NUMBER, from 1-6!") == "pick a number from 1 6"


@pytest.fixture(scope="module")
def built(request):
    from tests.conftest import REPO

    data = small(yaml.safe_load((REPO / "params.yaml").read_text()))
    section = parse_params(data).tasks
    return section, Builder(section).build()


def test_every_evaluation_split_holds_every_family_of_its_pool_first(built):
    """Each evaluation split starts with `eval_per_family` records of every family of its pool
    (seen families, or the held-out ones), taken before train: a family with few distinct
    prompts (uuid has four templates and no parameters) is still in every split, and train
    keeps at least one of each."""
    section, records = built
    held = set(section.heldout_families)
    seen = set(section.enabled()) - held
    q = section.eval_per_family
    for split, pool in (("validation", seen), ("test_template", seen), ("test_family", held)):
        head = [r["family"] for r in records[split][: q * len(pool)]]
        assert set(head) == pool, split
        assert {f: head.count(f) for f in pool} == dict.fromkeys(pool, q) or split != "validation"
    assert {r["family"] for r in records["train"]} == seen


def test_a_family_short_of_the_quota_in_a_split_has_no_more_distinct_prompts_there(built):
    """Every evaluation split holds `eval_per_family` records of every family of its pool,
    unless the family has fewer distinct prompts there (uuid: no parameters and one held-out
    template, so one prompt in test_template); the evaluation names those families."""
    import numpy as np

    section, records = built
    builder = Builder(section)
    short = 0
    for split in ("validation", "test_template", "test_family"):
        for name in builder.pool(split):
            mine = [r for r in records[split] if r["family"] == name]
            if len(mine) >= section.eval_per_family:
                continue
            short += 1
            family = builder.families[name]
            rng = np.random.default_rng(0)
            prompts = {
                normalise(expand(t, family.slots(family.instance(rng)), rng))
                for _ in range(500)
                for _, t in builder.templates(family, split)
            }
            assert len(mine) == len(prompts), (split, name, len(mine), len(prompts))
    assert short >= 1  # uuid in test_template: the case this test is about


def test_too_few_evaluation_records_for_every_family_is_one_line():
    from tests.conftest import REPO

    data = small(yaml.safe_load((REPO / "params.yaml").read_text()))
    data["tasks"]["counts"]["validation"] = 31
    assert "counts.validation" in error_for(data) and "at least eval_per_family" in error_for(data)


def test_splits_respect_heldout_families_and_templates(built):
    section, records = built
    held = set(section.heldout_families)
    assert {r["family"] for r in records["test_family"]} <= held
    for split in ("train", "validation", "test_template"):
        assert not {r["family"] for r in records[split]} & held
    last = {f"{n}/{3}" for n in section.enabled()}  # 4 templates each, the last held out
    assert {r["template_id"] for r in records["test_template"]} <= last
    assert not {r["template_id"] for s in ("train", "validation") for r in records[s]} & last
    for split, n in section.counts.model_dump().items():
        assert len(records[split]) == n


def test_no_prompt_repeats_across_splits(built):
    _, records = built
    keys = [(r["family"], normalise(r["prompt"])) for rs in records.values() for r in rs]
    assert len(keys) == len(set(keys))


def test_records_are_reproducible_from_their_seed(built):
    section, records = built
    rec = records["validation"][7]
    again = Builder(section).record(rec["split"], rec["seed"][2], rec["family"])
    assert again is not None and {k: v for k, v in again.items()} == {
        k: v for k, v in rec.items() if k != "id"
    }


def test_build_is_deterministic(built):
    section, records = built
    again = Builder(section).build()
    assert {s: records_fingerprint(r) for s, r in records.items()} == {
        s: records_fingerprint(r) for s, r in again.items()
    }


def test_paraphrase_filter_rejects_dropped_or_changed_entities(built):
    _, records = built
    rec = next(r for r in records["train"] if r["family"] == "weighted_choice")
    body = rec["prompt"].removesuffix(" " + rec["answer_format"])
    items = json.loads(rec["instance"])["items"]
    weights = json.loads(rec["instance"])["weights"]
    keep = "Choose one of these in proportion to the weights: " + ", ".join(
        f"{w} with weight {k}" for w, k in zip(items, weights, strict=True)
    )
    assert keeps_entities(rec, keep)
    assert not keeps_entities(rec, keep.replace(items[0], "banana"))  # an item changed
    assert not keeps_entities(
        rec, keep.replace(f"{items[-1]} with weight {weights[-1]}", "")
    )  # dropped
    assert not keeps_entities(
        rec, keep.replace(f"weight {weights[0]}", f"weight {weights[0] + 7}")
    )  # number changed

    dice = next(r for r in records["train"] if r["family"] == "integer_range")
    inst = json.loads(dice["instance"])
    assert not keeps_entities(dice, f"Pick a number from {inst['low']} to {inst['high'] + 1}.")
    assert keeps_entities(
        dice, f"Choose any whole number between {inst['low']} and {inst['high']}."
    )

    batch = [copy.deepcopy(rec), copy.deepcopy(dice)]
    kept = apply_paraphrases(
        batch, lambda prompts: [keep, f"Pick a number from 1 to {inst['high'] + 1}."]
    )
    assert kept == 1
    assert batch[0]["paraphrased"] and batch[0]["prompt"] == f"{keep} {rec['answer_format']}"
    assert not batch[1]["paraphrased"] and batch[1]["prompt"] == dice["prompt"]
    assert body != keep


def test_hf_paraphraser_runs_on_a_tiny_model(built, tmp_path):
    from entropy_lab.models import load, resolve
    from entropy_lab.tasks.paraphrase import HFParaphraser
    from tests.conftest import save_tiny_model

    model, tok = load(resolve(str(save_tiny_model("llama", tmp_path / "m"))), device="cpu")
    prompts = [r["prompt"] for r in built[1]["train"][:3]]
    out = HFParaphraser(model, tok, max_new_tokens=8, batch_size=2)(prompts)
    assert len(out) == 3 and all(isinstance(o, str) for o in out)
    batch = copy.deepcopy(built[1]["train"][:3])
    apply_paraphrases(batch, HFParaphraser(model, tok, max_new_tokens=8))
    for rec in batch:  # random weights write noise; whatever is kept must keep every entity
        assert not rec["paraphrased"] or keeps_entities(rec, rec["prompt"])


def test_tasks_stage_writes_a_loadable_datasetdict_byte_identically(
    params_data, tmp_path, monkeypatch
):
    from datasets import load_from_disk

    from entropy_lab.tasks.dataset import features

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(small(params_data)))
    write_pool(tmp_path)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(main, ["tasks"]).exit_code == 0
    first = sha256_tree(tmp_path / "data" / "tasks")
    ds = load_from_disk(str(tmp_path / "data" / "tasks"))
    assert set(ds) == {"train", "validation", "test_template", "test_family"}
    assert ds["train"].features == features()
    manifest = json.loads((tmp_path / "data" / "tasks" / "manifest.json").read_text())
    state = json.loads((tmp_path / "data" / "tasks" / "train" / "state.json").read_text())
    assert manifest["fingerprints"]["train"] == state["_fingerprint"]
    assert "Randomness tasks" in (tmp_path / "data" / "tasks" / "README.md").read_text()
    assert runner.invoke(main, ["tasks"]).exit_code == 0
    assert sha256_tree(tmp_path / "data" / "tasks") == first


def test_impossible_count_is_one_line_and_writes_nothing(params_data, tmp_path, monkeypatch):
    data = small(params_data)
    data["tasks"]["families"] = {"uuid": {}, "deterministic": {"values": [0, 2]}}
    data["tasks"]["heldout_families"] = ["deterministic"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(data))
    write_pool(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["tasks"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: tasks.counts.train = 120: only ")
    assert not (tmp_path / "data" / "tasks").exists()
