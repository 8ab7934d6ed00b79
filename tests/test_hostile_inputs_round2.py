"""Hostile inputs, second round: links under the output tree, CLI arguments that become paths,
params files that would hang or crash the reader. Each is refused in one line, exit 2, and a
sentinel directory the attack aims at survives byte for byte."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from entropy_lab.cli import main
from entropy_lab.errors import UserError
from entropy_lab.provenance import atomic_dir, atomic_file
from tests.conftest import shrink, write_pool


def tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def one_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0].removeprefix("error: ")


@pytest.fixture
def repo(tmp_path, monkeypatch, params_data) -> Path:
    """A repository with shrunk params, a pool and a sentinel `tests/` directory."""
    root = tmp_path / "repo"
    (root / "tests").mkdir(parents=True)
    (root / "tests" / "precious.py").write_text("do not touch\n")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / "params.yaml").write_text(yaml.safe_dump(shrink(params_data)))
    write_pool(root)
    monkeypatch.chdir(root)
    return root


@pytest.mark.parametrize("link", [".git", "tests"])
def test_a_linked_output_directory_is_refused_and_its_target_survives(repo, link):
    (repo / "data" / "tasks").symlink_to(Path("..") / link)
    before = tree(repo / link)
    line = one_line(CliRunner().invoke(main, ["tasks"]))
    assert "data/tasks is a symbolic link" in line
    assert tree(repo / link) == before and (repo / "data" / "tasks").is_symlink()


def test_a_linked_parent_of_an_output_is_refused(repo):
    (repo / "data" / "ab_metrics").mkdir()
    (repo / "data" / "ab_metrics" / "kjv-tiny").symlink_to(Path("..") / ".." / "tests")
    before = tree(repo / "tests")
    for open_output in (atomic_dir, atomic_file):
        linked = pytest.raises(UserError, match="ab_metrics/kjv-tiny is a symbolic link")
        with linked, open_output(Path("data/ab_metrics/kjv-tiny/12")) as tmp:
            (tmp / "x").write_text("") if tmp.is_dir() else tmp.write_text("")
    assert tree(repo / "tests") == before


def test_a_link_that_appears_while_the_stage_works_is_refused_at_the_swap(repo):
    final = Path("data/tasks")
    with pytest.raises(UserError, match="symbolic link"), atomic_dir(final) as tmp:
        (tmp / "out").write_text("result")
        final.symlink_to(Path("..") / "tests")
    assert tree(repo / "tests") == {"precious.py": hashlib.sha256(b"do not touch\n").hexdigest()}
    assert not list((repo / "data").glob(".tasks.tmp-*"))  # the temp output is cleaned up


ARGUMENTS = [
    (["ab-metrics", "--model", "../ab/kjv-tiny", "--length", "12"], "--model '../ab/kjv-tiny': not in ab.models"),
    (["ab-generate", "--model", "kjv-tiny", "--length", "13"], "--length 13: not in ab.lengths"),
    (["train", "--model", "kjv-tiny", "--variant", "../../tests"], "--variant '../../tests': not in training.variants"),
    (["evaluate", "--model", "../tests"], "--model '../tests': not in training.models"),
    (["build", "--model", "../../tests"], "--model '../../tests': not in models.build"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "message"), ARGUMENTS, ids=lambda x: str(x)[:40])
def test_cli_arguments_that_become_paths_are_checked_against_params(repo, argv, message):
    before = tree(repo)
    line = one_line(CliRunner().invoke(main, argv))
    assert line.startswith(message), line
    assert tree(repo) == before


def alias_bomb(levels: int = 9) -> str:
    text = 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for i in range(1, levels):
        text += f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]\n"
    return text


def hostile_params(params_text: str) -> dict[str, bytes]:
    bomb = alias_bomb() + params_text.replace("evaluate:\n", "evaluate:\n  zz: *a8\n", 1)
    return {
        "alias bomb": bomb.encode(),
        "duplicate key": params_text.replace("  steps: 400", "  steps: 4\n  steps: 7", 1).encode(),
        "latin-1 byte": params_text.replace("apple", "appl\xe9", 1).encode("latin-1"),
        "deep list": (params_text + "zz: " + "[" * 20_000 + "]" * 20_000 + "\n").encode(),
        "huge file": params_text.encode() + b"#" * (2 << 20),
    }


MESSAGES = {
    "alias bomb": "more than 100000 values (YAML aliases?); not read",
    "duplicate key": "key 'steps' appears twice in one mapping (line",
    "latin-1 byte": "not UTF-8 (byte",
    "deep list": "nested deeper than YAML can read; not read",
    "huge file": "larger than 1048576 bytes",
}


@pytest.mark.parametrize("kind", sorted(MESSAGES))
def test_params_files_that_would_hang_or_crash_get_one_line_in_seconds(repo, kind):
    from tests.conftest import REPO

    data = hostile_params((REPO / "params.yaml").read_text())[kind]
    (repo / "hostile.yaml").write_bytes(data)
    before = tree(repo)
    t0 = time.perf_counter()
    line = one_line(CliRunner().invoke(main, ["tasks", "--params", "hostile.yaml"]))
    assert time.perf_counter() - t0 < 10
    assert line.startswith("hostile.yaml: ") and MESSAGES[kind] in line, line
    assert tree(repo) == before


def test_a_params_path_that_is_not_a_file_is_refused(repo):
    line = one_line(CliRunner().invoke(main, ["tasks", "--params", "/dev/zero"]))
    assert line == "/dev/zero: not a regular file; params must be a YAML file"


def test_an_error_line_about_a_huge_value_stays_short(repo):
    from entropy_lab.config import parse_params

    data = yaml.safe_load((repo / "params.yaml").read_text())
    data["evaluate"]["zz"] = [list(range(100))] * 100
    with pytest.raises(UserError) as err:
        parse_params(data)
    assert len(str(err.value)) < 300 and "evaluate.zz" in str(err.value)


def test_the_thread_count_of_the_environment_never_reaches_an_output(repo):
    """`OMP_NUM_THREADS=1 entropy-lab tasks` used to write `torch_threads: 1` into the manifest,
    so DVC saw tasks and everything after it as changed: each stage sets its own count from
    `models.threads`, and the run record, not the manifest, says where it ran."""
    import json
    import os
    import subprocess
    import sys

    hashes, records = [], []
    for threads in ("1", "2"):
        env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        subprocess.run([sys.executable, "-m", "entropy_lab.cli", "tasks"], cwd=repo, env=env,
                       check=True, capture_output=True)  # fmt: skip
        hashes.append(tree(repo / "data" / "tasks"))
        records.append(json.loads((repo / "runs" / "tasks.json").read_text()))
    assert hashes[0] == hashes[1]
    assert records[0]["machine"]["torch_threads"] == records[1]["machine"]["torch_threads"] == 1
    assert records[0]["machine"]["cpu_vendor"] and records[0]["machine"]["cpu_model"]
    from entropy_lab.numerics import SETTINGS  # pinned before torch and numpy loaded

    assert records[0]["machine"]["numerics_env"] == SETTINGS["portable"]


def test_overlapping_pool_layouts_are_refused_by_both_readers_before_any_work(repo, params_data):
    """The A/B pool conditions read from the start of their source's segment, the entropy-
    driven tasks from its end; a layout where they meet is refused by whichever stage runs."""
    data = shrink(params_data)
    data["ab"]["generate"]["source"] = data["tasks"]["seeded"]["source"] = "kernel"
    data["ab"]["generate"]["replicates"] = 600  # 3 x 600 x (4 + 12 x 4) bytes of 128 KiB, and
    # the tasks' 200 train records x 64 u's x 4 bytes: each fits, the two together do not
    data["tasks"]["seeded"]["train_draws"] = 64
    (repo / "params.yaml").write_text(yaml.safe_dump(data))
    before = tree(repo)
    for argv in (["tasks"], ["ab-generate", "--model", "kjv-tiny", "--length", "12"]):
        line = one_line(CliRunner().invoke(main, argv))
        assert line.startswith("entropy pool layout: ledger: Range(experiment='ab/kjv-tiny/12/")
        assert "overlaps Range(experiment='tasks/seeded/train'" in line
    assert tree(repo) == before


def test_a_dump_that_repeats_itself_is_not_credited(tmp_path, monkeypatch, params_data):
    """64 KiB of random bytes repeated 32 times: only the first copy is assessed, so the
    repeats would be conditioned as fresh entropy."""
    import numpy as np

    from tests.conftest import external, small_harvest

    block = np.random.default_rng(3).integers(0, 256, 1 << 16, dtype=np.uint8).tobytes()
    spec = external(tmp_path, block * 32, bytes=65536)  # conditioning reads past the first copy
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(small_harvest(params_data, [spec])))
    monkeypatch.chdir(tmp_path)
    line = one_line(CliRunner().invoke(main, ["harvest"]))
    assert line.startswith("source 'external': data/external/dump.bin repeats itself (the ")
    assert line.endswith("no pool written") and not (tmp_path / "data" / "entropy").exists()


def test_a_linked_adapter_directory_is_refused_before_training(repo, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (repo / "adapters" / "kjv-tiny").mkdir(parents=True)
    (repo / "adapters" / "kjv-tiny" / "ce_kl").symlink_to(outside)
    t0 = time.perf_counter()
    line = one_line(
        CliRunner().invoke(main, ["train", "--model", "kjv-tiny", "--variant", "ce_kl"])
    )
    assert line.startswith("output adapters/kjv-tiny/ce_kl resolves to ") and "outside" in line
    assert time.perf_counter() - t0 < 5 and not list(outside.iterdir())


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_truncated_weights_are_one_line_before_any_work(repo):
    from tests.conftest import save_tiny_model

    model = save_tiny_model("gpt2", repo / "models" / "kjv-tiny", positions=256)
    truncate(model / "model.safetensors")
    line = one_line(CliRunner().invoke(main, ["models"]))
    assert line.startswith("models/kjv-tiny/model.safetensors: not a complete safetensors file")
    assert not (repo / "data" / "models").exists()


def test_a_truncated_adapter_is_refused_before_the_base_model_is_evaluated(repo, monkeypatch):
    from entropy_lab.evaluation import evaluate

    for variant in ("ce_multisample", "soft_trie", "ce_kl", "seeded"):
        directory = repo / "adapters" / "kjv-tiny" / variant
        directory.mkdir(parents=True)
        (directory / "adapter_config.json").write_text("{}")
        (directory / "adapter_model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{")
    monkeypatch.setattr(evaluate, "evaluate_variant", lambda *a: pytest.fail("evaluated"))
    line = one_line(CliRunner().invoke(main, ["evaluate", "--model", "kjv-tiny"]))
    assert line.startswith("adapters/kjv-tiny/ce_multisample/adapter_model.safetensors: not a ")


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("training.seed", 2**64, "less than or equal to 4294967295"),
        ("models.built.kjv-tiny.seed", 2**100, "less than or equal to 4294967295"),
        ("tasks.seed", 2**200, "less than or equal to 4294967295"),
        ("tasks.families.integer_range.low", [0, 10**20], "less than or equal to 1000000"),
        ("tasks.families.deterministic.values", [10**20, 10**20], "less than or equal to 1000000"),
        ("tasks.families.normal.means", [1e300], "less than or equal to 1000000"),
        ("evaluate.temperatures", [1e-300], "greater than or equal to 0.05"),
        ("ab.generate.temperature", 1e-300, "greater than or equal to 0.05"),
    ],
)
def test_unbounded_values_are_refused_when_params_load(params_data, key, value, allowed):
    from entropy_lab.config import parse_params

    node, *path, last = [params_data, *key.split(".")]
    for part in path:
        node = node[part]
    node[last] = value
    with pytest.raises(UserError, match=allowed) as err:
        parse_params(params_data)
    assert key.split(".")[-1] in str(err.value) and "\n" not in str(err.value)


def test_a_long_external_path_is_refused(params_data):
    from entropy_lab.config import parse_params
    from tests.conftest import small_harvest

    spec = {
        "name": "external",
        "bytes": 8192,
        "claimed_h": 6.0,
        "path": "data/external/" + "x" * 5000,
        "sha256": "0" * 64,
    }
    with pytest.raises(UserError, match="at most 255 characters"):
        parse_params(small_harvest(params_data, [spec]))


CORRUPT = {
    "metrics.json": ("reports/metrics.json", b'{"harvest": ', "not readable JSON"),
    "dvc.lock": ("dvc.lock", b"stages: [unclosed", "not readable YAML"),
    "ledger": ("data/tasks/ledger.json", b"[{", "ledger data/tasks/ledger.json: unreadable"),
}


@pytest.mark.parametrize("kind", sorted(CORRUPT))
def test_corrupt_artefacts_the_report_reads_are_one_line(repo, kind):
    """`verify` (and the report) read what every stage wrote: a corrupt file is one line."""
    from entropy_lab.artefacts import read_json, read_yaml
    from entropy_lab.entropy.pool import read_ledger

    path, data, message = CORRUPT[kind]
    (repo / path).parent.mkdir(parents=True, exist_ok=True)
    (repo / path).write_bytes(data)
    reader = {"metrics.json": read_json, "dvc.lock": read_yaml, "ledger": read_ledger}[kind]
    with pytest.raises(UserError, match=message) as err:
        reader(Path(path))
    assert "\n" not in str(err.value)


def test_corrupt_parquet_and_arrow_files_are_one_line(repo):
    from entropy_lab.artefacts import load_tasks, read_parquet

    (repo / "data" / "ab" / "kjv-tiny" / "12").mkdir(parents=True)
    (repo / "data" / "ab" / "kjv-tiny" / "12" / "samples.parquet").write_bytes(b"PAR1garbage")
    line = one_line(
        CliRunner().invoke(main, ["ab-metrics", "--model", "kjv-tiny", "--length", "12"])
    )
    assert line.startswith("data/ab/kjv-tiny/12/samples.parquet: not a readable parquet file")
    with pytest.raises(UserError, match="not a readable parquet"):
        read_parquet(repo / "data" / "ab" / "kjv-tiny" / "12" / "samples.parquet", "hint")
    assert CliRunner().invoke(main, ["tasks"]).exit_code == 0
    arrow = next((repo / "data" / "tasks" / "train").glob("*.arrow"))
    truncate(arrow, 0.3)
    with pytest.raises(UserError, match="data/tasks: not a readable task dataset"):
        load_tasks(Path("data/tasks"))["train"][0]


def test_a_damaged_checkpoint_restarts_the_run_instead_of_failing_every_rerun(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    import torch
    from transformers import AutoModelForCausalLM

    from entropy_lab.config import parse_params
    from entropy_lab.training.checkpoints import Checkpoints
    from entropy_lab.training.sft import with_lora
    from tests.conftest import REPO, tiny_config

    lora = parse_params(yaml.safe_load((REPO / "params.yaml").read_text())).training.lora
    model = with_lora(AutoModelForCausalLM.from_config(tiny_config("gpt2")), lora, 0)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad])
    checkpoints = Checkpoints(tmp_path / "ck", "run")
    checkpoints.save(model, opt, 3, [{"step": 0}])
    (tmp_path / "ck" / "state.json").write_text('{"step": 3, "curve": [')  # cut mid-write
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert checkpoints.resume(model, opt, 10) == (0, [])
    assert not (tmp_path / "ck").exists()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_linked_checkpoint_directory_is_refused_and_never_emptied(repo, tmp_path):
    """`train` removes its checkpoints when it finishes (or finds another run's): through a link
    that would delete what the link points to, inside the repository or outside it."""
    victim = tmp_path / "victim_checkpoints"
    (victim / "ce_kl").mkdir(parents=True)
    (victim / "ce_kl" / "precious.txt").write_text("keep")
    (repo / "checkpoints").mkdir()
    (repo / "checkpoints" / "kjv-tiny").symlink_to(victim)
    line = one_line(
        CliRunner().invoke(main, ["train", "--model", "kjv-tiny", "--variant", "ce_kl"])
    )
    assert "checkpoints/kjv-tiny" in line and (victim / "ce_kl" / "precious.txt").exists()


def test_a_checkpoint_that_claims_an_impossible_step_restarts_the_run(tmp_path, monkeypatch):
    import torch
    from transformers import AutoModelForCausalLM

    from entropy_lab.config import parse_params
    from entropy_lab.training.checkpoints import Checkpoints
    from entropy_lab.training.sft import with_lora
    from tests.conftest import REPO, tiny_config

    monkeypatch.chdir(tmp_path)
    lora = parse_params(yaml.safe_load((REPO / "params.yaml").read_text())).training.lora
    model = with_lora(AutoModelForCausalLM.from_config(tiny_config("gpt2")), lora, 0)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad])
    for step in (99, -5):
        Checkpoints(tmp_path / "ck", "run").save(model, opt, step, [{"step": 0}])
        assert Checkpoints(tmp_path / "ck", "run").resume(model, opt, 10) == (0, [])


def test_file_outputs_and_run_records_are_checked_before_any_work(repo, tmp_path):
    (repo / "reports" / "tasks" / "metrics.json").mkdir(parents=True)
    line = one_line(CliRunner().invoke(main, ["tasks"]))
    assert line.startswith("output reports/tasks/metrics.json is a directory")
    assert not (repo / "data" / "tasks").exists()
    (repo / "reports" / "tasks" / "metrics.json").rmdir()
    (repo / "runs").symlink_to(tmp_path)
    line = one_line(CliRunner().invoke(main, ["tasks"]))
    assert line.startswith("output runs/tasks.json") and not (repo / "data" / "tasks").exists()


def test_a_task_set_the_pool_cannot_seed_is_refused_before_it_is_built(repo, params_data):
    import time

    data = shrink(params_data)
    data["tasks"]["counts"]["train"] = 1_000_000
    (repo / "params.yaml").write_text(yaml.safe_dump(data))
    t0 = time.perf_counter()
    line = one_line(CliRunner().invoke(main, ["tasks"]))
    assert line.startswith("entropy pool source 'kernel': need ") and time.perf_counter() - t0 < 10


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("? [a, b]\n: 1\n", "a key must be a name, not list (line 1)"),
        ("{a: 1}: 2\n", "a key must be a name, not dict (line 1)"),
    ],
)
def test_params_with_keys_that_are_not_names_are_one_line(repo, text, message):
    (repo / "odd.yaml").write_text(text)
    line = one_line(CliRunner().invoke(main, ["tasks", "--params", "odd.yaml"]))
    assert line == f"odd.yaml: {message}"


@pytest.mark.parametrize("family", ["poisson", "geometric"])
def test_tails_too_small_for_floats_are_refused(params_data, family):
    from entropy_lab.config import parse_params

    params_data["tasks"]["families"][family]["tail"] = 1e-300
    with pytest.raises(
        UserError, match=f"tasks.families.{family}.tail = 1e-300: Input should be greater"
    ):
        parse_params(params_data)


def test_weights_with_an_unknown_dtype_or_missing_tensors_are_refused(tmp_path):
    import json as jsonlib

    from safetensors.torch import save_file

    from entropy_lab.artefacts import check_safetensors
    from entropy_lab.models import ResolvedModel, load
    from tests.conftest import save_tiny_model

    path = save_tiny_model("gpt2", tmp_path / "m")
    weights = path / "model.safetensors"
    raw = weights.read_bytes()
    size = int.from_bytes(raw[:8], "little")
    header = jsonlib.loads(raw[8 : 8 + size])
    first = next(k for k in header if k != "__metadata__")
    header[first]["dtype"] = "ZZZ"
    text = jsonlib.dumps(header, separators=(",", ":")).encode().ljust(size)
    (tmp_path / "odd.safetensors").write_bytes(raw[:8] + text + raw[8 + size :])
    with pytest.raises(UserError, match="unknown dtype 'ZZZ'"):
        check_safetensors(tmp_path / "odd.safetensors", "hint")
    import torch

    save_file({"w": torch.zeros(2)}, weights)  # a well-formed file of the wrong tensors
    with pytest.raises(UserError, match=r"lack .* tensors .* refusing a random initialisation"):
        load(ResolvedModel("m", path, "path"))


def test_a_model_without_its_tokenizer_is_refused_by_the_models_stage(repo):
    from tests.conftest import save_tiny_model

    model = save_tiny_model("gpt2", repo / "models" / "kjv-tiny", positions=256)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (model / name).unlink()
    line = one_line(CliRunner().invoke(main, ["models"]))
    assert line.startswith("model 'kjv-tiny' at models/kjv-tiny: its tokenizer")


def test_malformed_artefacts_the_stages_read_are_one_line(repo):
    import pandas as pd

    from entropy_lab.artefacts import load_tasks, read_columns, read_json_object

    (repo / "data" / "tasks").mkdir(parents=True)
    (repo / "data" / "tasks" / "dataset_dict.json").write_text('{"splits": 5}')
    with pytest.raises(UserError, match="not a readable task dataset"):
        load_tasks(Path("data/tasks"))
    pd.DataFrame({"a": [1]}).to_parquet(repo / "s.parquet")
    with pytest.raises(UserError, match="no column 'prompt_id'"):
        read_columns(repo / "s.parquet", ("prompt_id",), "hint")
    pd.DataFrame({"prompt_id": []}).to_parquet(repo / "e.parquet")
    with pytest.raises(UserError, match="no rows"):
        read_columns(repo / "e.parquet", ("prompt_id",), "hint")
    (repo / "list.json").write_text("[1, 2]")
    with pytest.raises(UserError, match="expected a JSON object, got list"):
        read_json_object(repo / "list.json")
    (repo / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(UserError, match="not readable JSON"):
        read_json_object(repo / "deep.json")


def test_a_record_command_that_does_not_give_its_params_is_refused(repo):
    """record-experiment checks its command before it writes: it must parse, and its -S
    overrides of the commit's params must give the params the experiment ran with."""
    import subprocess

    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "params.yaml"], cwd=repo, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "p"],
                   cwd=repo, check=True)  # fmt: skip
    (repo / "runs").mkdir()
    (repo / "runs" / "tasks.json").write_text('{"machine": {}, "seconds": 1}')
    for name in ("metrics.json", "headline.json", "provenance.json", "report.md"):
        (repo / "reports" / name).parent.mkdir(exist_ok=True)
        (repo / "reports" / name).write_text("{}")
    (repo / "reports" / "figures").mkdir()
    (repo / "dvc.lock").write_text("stages: {}")
    for command, message in (
        ("dvc exp run -S 'a=1", "not a shell command line"),
        ("dvc exp run -S tasks.seed.x=2", "'seed' is not a section of params.yaml"),
        ("dvc exp run -S tasks.seed=7", "do not give"),
    ):
        line = one_line(CliRunner().invoke(main, ["record-experiment", "x", "--command", command]))
        assert message in line, line
    assert not (repo / "reports" / "experiments").exists()


def test_click_usage_errors_are_one_line(repo):
    line = one_line(
        CliRunner().invoke(main, ["ab-generate", "--model", "kjv-tiny", "--length", "../12"])
    )
    assert line == "Invalid value for '--length': '../12' is not a valid integer."
