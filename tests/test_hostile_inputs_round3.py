"""Hostile inputs, third round (issue 51, items 4-11): regexes that backtrack, FIFOs, integers
Python cannot write, unwritable or full disks, odd environments, damaged or remote-code model
directories, a consistently forged pool, a bad `dvc exp run -S`, and run records that rewrote
git's index. Each is one `error:` line, exit 2, before any output is written."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from entropy_lab.cli import main
from entropy_lab.errors import UserError
from tests.conftest import REPO, save_tiny_model, shrink, write_pool, write_pool_dir
from tests.test_hostile_inputs_round2 import one_line, tree, truncate


@pytest.fixture
def repo(tmp_path, monkeypatch, params_data) -> Path:
    """A repository with shrunk params and a pool."""
    root = tmp_path / "repo"
    root.mkdir()
    (root / "params.yaml").write_text(yaml.safe_dump(shrink(params_data)))
    write_pool(root)
    monkeypatch.chdir(root)
    return root


def cli(root: Path, argv: list[str], env: dict | None = None, timeout: float = 120):
    """The CLI in a process of its own (a hang is a timeout, not a stuck test suite)."""
    env = {**os.environ, **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "entropy_lab.cli", *argv], cwd=root, env=env,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith("error: "), lines[0]
    return lines[0].removeprefix("error: ")


# 4. Answer regexes: a time bound decided before work


def test_a_catastrophic_answer_regex_is_a_params_error(params_data):
    from entropy_lab.config import parse_params

    params_data["ab"]["prompts"][0]["answer"] = "(a|aa)+$"
    t0 = time.perf_counter()
    with pytest.raises(UserError, match=r"ab.prompts\[0\].answer = '\(a\|aa\)\+\$': backtracks"):
        parse_params(params_data)
    assert time.perf_counter() - t0 < 5
    params_data["ab"]["prompts"][0]["answer"] = "(?:x{65535}){65535}"  # `regex` would unroll it
    with pytest.raises(UserError, match="repeat counts multiply to more than 1000"):
        parse_params(params_data)


def test_the_accuracy_metric_never_hangs():
    """`(.|.)*ZZZ` passed the params check and then ran for minutes per 40-character text; a
    pattern that slips past the params probes stops at the metric's time limit, in one line."""
    script = (
        "from entropy_lab.generation.metrics import accuracy\n"
        "from entropy_lab.errors import UserError\n"
        "assert accuracy('a' * 40, '(.|.)*ZZZ') == 0.0\n"
        "try:\n"
        "    accuracy('q' * 40 + '!', '(q|qq)+$')\n"
        "except UserError as exc:\n"
        "    print(exc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "took over 1.0 s (catastrophic backtracking)" in proc.stdout


def test_the_default_answers_match_as_python_re_does(params_data):
    """The accuracy metric's engine changed from `re` to `regex`: the committed prompts' answers
    decide the same on words at, inside and beside their boundaries, in any case."""
    import re

    from entropy_lab.generation.params import answer_found

    words = ["twelve", "seven", "three", "paris", "12", "7", "3"]
    sides = ["", "x", "_", "é", "1", " ", "s", "\u017f", "İ", "\n"]
    texts = [a + w + b for w in words + [w.upper() for w in words] for a in sides for b in sides]
    answers = [p["answer"] for p in params_data["ab"]["prompts"] if p.get("answer")]
    assert answers
    for answer in answers:
        for text in texts:
            expected = re.search(answer, text, flags=re.IGNORECASE) is not None
            assert answer_found(answer, text) == expected, (answer, text)


# 5. FIFOs among the inputs


FIFOS = [
    (["report"], "reports/harvest/metrics.json"),
    (["report"], "data/tasks/ledger.json"),
    (["tasks"], "data/entropy/pool.json"),
    (["tasks"], "data/entropy/manifest.json"),
    (["ab-generate", "--model", "kjv-tiny", "--length", "12"], "data/entropy/pool.bin"),
]


@pytest.mark.parametrize(("argv", "fifo"), FIFOS, ids=lambda x: str(x)[:40])
def test_a_fifo_among_the_inputs_is_one_line_not_a_hang(repo, argv, fifo):
    (repo / fifo).parent.mkdir(parents=True, exist_ok=True)
    (repo / fifo).unlink(missing_ok=True)
    os.mkfifo(repo / fifo)
    line = cli(repo, argv, timeout=60)
    assert fifo in line and ("not a regular file" in line), line


def test_every_artefact_reader_refuses_what_is_not_a_regular_file(repo):
    from entropy_lab.artefacts import (
        check_safetensors,
        load_tasks,
        read_json,
        read_parquet,
        read_yaml,
    )

    for name in ("a.json", "b.yaml", "c.parquet", "d.safetensors"):
        (repo / name).mkdir()
    for reader, name in ((read_json, "a.json"), (read_yaml, "b.yaml"),
                         (read_parquet, "c.parquet"), (check_safetensors, "d.safetensors")):  # fmt: skip
        with pytest.raises(UserError, match=f"{name}: not a regular file but a directory"):
            reader(Path(name), "hint")
    (repo / "data" / "tasks" / "train").mkdir(parents=True)
    (repo / "data" / "tasks" / "dataset_dict.json").write_text('{"splits": ["train"]}')
    with socket.socket(socket.AF_UNIX) as sock:  # a FIFO here would hang the old reader
        sock.bind(str(repo / "data" / "tasks" / "train" / "state.json"))
    with pytest.raises(UserError, match=r"state\.json: not a regular file but a socket"):
        load_tasks(Path("data/tasks"))


# 6. Tracebacks where one line is owed


STAGES = [
    ["check-params"],
    ["harvest"],
    ["build", "--model", "kjv-tiny"],
    ["models"],
    ["tasks"],
    ["train", "--model", "kjv-tiny", "--variant", "ce_kl"],
    ["evaluate", "--model", "kjv-tiny"],
    ["ab-generate", "--model", "kjv-tiny", "--length", "12"],
    ["ab-metrics", "--model", "kjv-tiny", "--length", "12"],
    ["ab-analyze"],
    ["report"],
    ["verify"],
]


LITERALS = {
    "decimal": "9" * 4301,
    "hexadecimal": "0x" + "f" * 4000,
    "base 60": "1" + ":59" * 100_000,
}
CASES = [(argv, "decimal") for argv in STAGES] + [
    (argv, kind) for argv in (["tasks"], ["verify"]) for kind in ("hexadecimal", "base 60")
]


@pytest.mark.parametrize(("argv", "kind"), CASES, ids=lambda x: x if isinstance(x, str) else x[0])
def test_an_integer_python_cannot_read_or_write_is_one_line(repo, argv, kind):
    """Past 4300 digits Python refuses to read a decimal integer or to write any integer (a
    hexadecimal one loads); YAML's base-60 form takes time quadratic in its length."""
    literal = LITERALS[kind]
    text = (repo / "params.yaml").read_text().replace("  steps: 4\n", f"  steps: {literal}\n", 1)
    (repo / "hostile.yaml").write_text(text)
    before = tree(repo)
    t0 = time.perf_counter()
    line = one_line(CliRunner().invoke(main, [*argv, "--params", "hostile.yaml"]))
    assert time.perf_counter() - t0 < 10
    assert line.startswith("hostile.yaml: an integer of more than 4000 digits (line "), line
    assert tree(repo) == before


def test_a_huge_cli_value_is_one_short_line(repo):
    argv = ["ab-generate", "--model", "kjv-tiny", "--length", "9" * 5000]
    line = one_line(CliRunner().invoke(main, argv))
    assert line.startswith("Invalid value for '--length': '999") and len(line) < 300


def test_an_integer_python_cannot_write_is_refused_in_params_data(params_data):
    from entropy_lab.config import parse_params

    params_data["training"]["warmup_steps"] = 16**5000  # loaded from JSON or YAML elsewhere
    with pytest.raises(UserError, match="an integer of more than 4000 digits"):
        parse_params(params_data)


@pytest.fixture
def read_only(repo):
    """Make a directory unwritable, even to root (an immutable directory), for the test."""
    made = []

    def make(path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
                pytest.skip("root, and chattr cannot make a directory immutable here")
        else:
            path.chmod(0o555)
        made.append(path)

    yield make
    for path in made:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        else:
            path.chmod(0o755)


@pytest.mark.parametrize("directory", ["data", "reports", "runs"])
def test_an_unwritable_output_directory_is_one_line_and_nothing_is_written(
    repo, read_only, directory
):
    """`tasks` with reports/ read-only had replaced data/tasks when it failed: every output
    location is checked before the first is written."""
    (repo / "data" / "tasks").mkdir(parents=True)
    (repo / "data" / "tasks" / "old.txt").write_text("the previous output\n")
    read_only(repo / directory)
    before = tree(repo)
    line = one_line(CliRunner().invoke(main, ["tasks"]))
    assert line.endswith(f": {directory} is not writable"), line
    assert tree(repo) == before


def test_a_full_disk_while_writing_is_one_line_and_the_output_is_left_as_it_was(repo, monkeypatch):
    (repo / "data" / "tasks").mkdir(parents=True)
    (repo / "data" / "tasks" / "old.txt").write_text("the previous output\n")
    before = tree(repo)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(json, "dump", full)
    line = one_line(CliRunner().invoke(main, ["tasks"]))
    assert line.startswith("output data/tasks: No space left on device"), line
    assert line.endswith("left as it was")
    assert tree(repo) == before
    assert not list((repo / "data").glob(".tasks.tmp-*"))


TRAIN = ["train", "--model", "kjv-tiny", "--variant", "ce_kl"]
AB_GENERATE = ["ab-generate", "--model", "kjv-tiny", "--length", "12"]
TORCHRUN = {"RANK": "5", "LOCAL_RANK": "0", "MASTER_ADDR": "x", "MASTER_PORT": "1"}


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (argv, env, message)
        for argv in (TRAIN, AB_GENERATE)
        for env, message in (
            ({"WORLD_SIZE": "abc"}, "WORLD_SIZE='abc': not a process count"),
            ({"WORLD_SIZE": "9" * 5000}, "not a process count"),
            ({"WORLD_SIZE": "2"}, "WORLD_SIZE=2 but RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT"),
        )
    ]
    + [(TRAIN, {"WORLD_SIZE": "2", **TORCHRUN}, "RANK='5': not a rank below WORLD_SIZE=2")],
    ids=lambda x: x[0] if isinstance(x, list) else None,
)
def test_a_torchrun_environment_without_torchrun_is_one_line(repo, monkeypatch, argv, env, message):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    line = one_line(CliRunner().invoke(main, argv))
    assert message in line, line


def test_text_outputs_are_utf8_whatever_the_locale(repo):
    """`LC_ALL=C PYTHONUTF8=0 entropy-lab report` failed on report.md's first en dash."""
    script = (
        "from entropy_lab.config import load_params\n"
        "from entropy_lab.stages import report\n"
        "report.check_ledgers = lambda root: 0\n"
        "report.gather = lambda params, root: {'teaching': {}}\n"
        "report.provenance = lambda params, root: {}\n"
        "report.headline = lambda numbers: {'range': '0.1 \\u2013 0.2'}\n"
        "report.figures.save_all = lambda *args: None\n"
        "report.markdown.render = lambda numbers, prov: '[0.1, 0.2] \\u2013 \\u00b1 \\u03c7\\n'\n"
        "report.run(load_params())\n"
    )
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0"}
    proc = subprocess.run([sys.executable, "-X", "utf8=0", "-c", script], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (repo / "reports" / "report.md").read_text(
        encoding="utf-8"
    ) == "[0.1, 0.2] \u2013 \u00b1 \u03c7\n"


def adapter(directory: Path) -> None:
    """A well-formed LoRA adapter (its tensors are not read before the base model loads)."""
    import torch
    from peft import LoraConfig
    from safetensors.torch import save_file

    LoraConfig(r=2, target_modules=["c_attn"]).save_pretrained(str(directory))
    save_file({"w": torch.zeros(2)}, directory / "adapter_model.safetensors")


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--model", "kjv-tiny", "--variant", "ce_kl"],
        ["evaluate", "--model", "kjv-tiny"],
        ["ab-generate", "--model", "kjv-tiny", "--length", "12"],
    ],
    ids=lambda a: a[0],
)
def test_truncated_weights_are_one_line_in_every_stage_that_loads_them(repo, argv):
    if argv[0] != "ab-generate":
        assert CliRunner().invoke(main, ["tasks"]).exit_code == 0
    for variant in ("ce_multisample", "soft_trie", "ce_kl", "seeded"):
        adapter(repo / "adapters" / "kjv-tiny" / variant)
    truncate(save_tiny_model("gpt2", repo / "models" / "kjv-tiny", 256) / "model.safetensors")
    before = tree(repo)
    line = one_line(CliRunner().invoke(main, argv))
    assert line.startswith("models/kjv-tiny/model.safetensors: not a complete safetensors file")
    assert tree(repo) == before


def edit_config(path: Path, **changes) -> None:
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps(config | changes))


@pytest.mark.parametrize(
    "argv", [["models"], ["ab-generate", "--model", "kjv-tiny", "--length", "12"]]
)
def test_a_model_config_that_does_not_load_is_one_line(repo, argv):
    model = save_tiny_model("gpt2", repo / "models" / "kjv-tiny", positions=256)
    edit_config(model, n_layer="four")
    line = one_line(CliRunner().invoke(main, argv))
    assert line.startswith("model 'kjv-tiny' at models/kjv-tiny: config.json does not load ("), line
    assert "n_layer" in line and not (repo / "data" / "models").exists()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("n_positions", -5, " cannot be loaded: Trying to create tensor with negative dimension"),
        ("n_embd", 64, ": config.json does not fit its weights (28 tensors, e.g. "
                       "transformer.h.0.attn.c_attn.bias: [96] stored, [192] built)"),
    ],
)  # fmt: skip
def test_a_config_its_weights_do_not_fit_is_one_line_where_the_model_loads(
    repo, key, value, message
):
    edit_config(
        save_tiny_model("gpt2", repo / "models" / "kjv-tiny", positions=256), **{key: value}
    )
    line = cli(repo, AB_GENERATE)  # a process of its own: transformers' bars are off there
    assert line.startswith(f"model 'kjv-tiny' at models/kjv-tiny{message}"), line


@pytest.mark.parametrize("damage", ["garbage config", "truncated weights", "n_layer four"])
def test_a_broken_reward_model_is_one_line(repo, damage):
    from entropy_lab.generation.embedders import load_scorer

    model = save_tiny_model("gpt2", repo / "models" / "rm")
    if damage == "garbage config":
        (model / "config.json").write_text("{not json")
    elif damage == "truncated weights":
        truncate(model / "model.safetensors")
    else:
        edit_config(model, n_layer="four")
    with pytest.raises(UserError) as err:
        load_scorer("reward:models/rm", {"p": "text"})
    assert str(err.value).startswith("models/rm/") or "'reward:models/rm'" in str(err.value)
    assert "\n" not in str(err.value)


# 8. The models stage refuses what the stages after it refuse


def test_the_models_stage_refuses_pickled_weights_and_remote_code(repo):
    import torch
    from safetensors.torch import load_file

    model = save_tiny_model("gpt2", repo / "models" / "kjv-tiny", positions=256)
    weights = load_file(model / "model.safetensors")
    (model / "model.safetensors").unlink()
    torch.save(weights, model / "pytorch_model.bin")
    line = one_line(CliRunner().invoke(main, ["models"]))
    assert line.startswith("model 'kjv-tiny' at models/kjv-tiny has no .safetensors weights")
    assert not (repo / "data" / "models").exists()

    model = save_tiny_model("gpt2", repo / "models" / "kjv-tiny", positions=256)
    edit_config(model, auto_map={"AutoModelForCausalLM": "modeling_evil.EvilLM"})
    for argv in (["models"], ["ab-generate", "--model", "kjv-tiny", "--length", "12"]):
        line = one_line(CliRunner().invoke(main, argv))
        assert "config.json has an auto_map (remote code), which is refused" in line
    assert not (repo / "data" / "models").exists() and not (repo / "data" / "ab").exists()


# 9. A pool forged consistently (pool, card and manifest rewritten together)


def lock_pool(root: Path) -> None:
    """A dvc.lock that records the harvest output as it is now (as `dvc repro` writes it)."""
    from entropy_lab.entropy.pool import dvc_md5

    outs = [{"path": "data/entropy", "hash": "md5", "md5": dvc_md5(root / "data" / "entropy")}]
    (root / "dvc.lock").write_text(yaml.safe_dump({"stages": {"harvest": {"outs": outs}}}))


def test_dvc_md5_is_dvcs_own_hash_of_the_committed_pool():
    from entropy_lab.entropy.pool import dvc_md5

    lock = yaml.safe_load((REPO / "dvc.lock").read_text())
    recorded = next(o for o in lock["stages"]["harvest"]["outs"] if o["path"] == "data/entropy")
    assert dvc_md5(REPO / "data" / "entropy") == recorded["md5"]


def test_a_consistently_forged_pool_is_refused_by_the_stages_that_read_it(repo):
    import numpy as np

    lock_pool(repo)
    from entropy_lab.entropy.pool import LOCK, POOL_DIR, Pool

    Pool.load(POOL_DIR, LOCK)  # the genuine pool passes
    forged = np.random.default_rng(1).bytes(2 << 17)  # a PRNG's bytes, not the harvest's
    write_pool_dir(repo / "data" / "entropy", forged, [("kernel", 0, 1 << 17), ("jitter", 1 << 17, 2 << 17)])  # fmt: skip
    before = tree(repo)
    for argv in (["tasks"], ["ab-generate", "--model", "kjv-tiny", "--length", "12"]):
        line = one_line(CliRunner().invoke(main, argv))
        assert line.startswith("entropy pool data/entropy: md5 "), line
        assert "dvc.lock records the harvest's" in line and "changed after the harvest" in line
    assert tree(repo) == before


# 10. A bad `dvc exp run -S` value fails before DVC removes any output


STAGES_YAML = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def test_every_stage_runs_after_the_params_check_which_reads_every_section():
    from entropy_lab.config import Params
    from entropy_lab.stages.check_params import CHECKED

    check = STAGES_YAML["check-params"]
    assert check["outs"] == [{CHECKED.as_posix(): {"persist": True}}]
    assert sorted(check["params"]) == sorted(Params.model_fields)
    for name, stage in STAGES_YAML.items():
        if name != "check-params":
            assert CHECKED.as_posix() in stage.get("do", stage)["deps"], name


def test_the_params_check_refuses_bad_params_and_writes_the_same_bytes_for_any_good_ones(repo):
    from entropy_lab.stages.check_params import CHECKED

    data = yaml.safe_load((repo / "params.yaml").read_text())
    for key, value in (("steps", -1), ("steps", "400")):
        data["training"][key] = value
        (repo / "bad.yaml").write_text(yaml.safe_dump(data))
        line = one_line(CliRunner().invoke(main, ["check-params", "--params", "bad.yaml"]))
        assert line.startswith("bad.yaml: training.steps = "), line
        assert not (repo / CHECKED).exists()
    written = []
    for steps in (4, 7):
        data["training"]["steps"] = steps
        (repo / "params.yaml").write_text(yaml.safe_dump(data))
        assert CliRunner().invoke(main, ["check-params"]).exit_code == 0
        written.append((repo / CHECKED).read_bytes())
    assert written[0] == written[1]


@pytest.mark.slow
def test_a_bad_dvc_exp_run_value_removes_no_output(tmp_path):
    """End to end on the shrunk profile: DVC removes a stage's outputs before it runs it, and
    `dvc exp run -S training.steps=-1` used to delete the train stages' `cache: false` outputs
    (kept in git) before `train` refused the value."""
    from tests.test_pipeline import copy_repo, run

    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(shrink(yaml.safe_load((REPO / "params.yaml").read_text()))))
    repo = copy_repo(tmp_path / "repo", params)
    run(["git", "commit", "-qm", "files"], repo)
    run(["dvc", "repro"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "repro"], repo)
    tracked = run(["git", "ls-files"], repo).split()
    for bad in ("training.steps=-1", "models.threads=abc"):
        proc = run(["dvc", "exp", "run", "-S", bad], repo, check=False)
        assert proc.returncode and "failed to reproduce 'check-params'" in proc.stderr, bad
        assert [f for f in tracked if not (repo / f).exists()] == [], bad
        run(["git", "checkout", "params.yaml"], repo)
    assert "up to date" in run(["dvc", "status"], repo)


# 11. Run records leave git's index alone


def test_a_run_record_does_not_rewrite_the_git_index(tmp_path, monkeypatch):
    from entropy_lab.stages.common import Run

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True,
                              text=True).stdout  # fmt: skip

    git("init", "-q")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("x = 1\n")
    git("add", "src")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "a")
    later = time.time() + 60
    os.utime(tmp_path / "src" / "a.py", (later, later))  # stale stat data: status would refresh
    index = tmp_path / ".git" / "index"
    before = (index.read_bytes(), index.stat().st_mtime_ns)
    monkeypatch.chdir(tmp_path)
    Run("tasks").finish()
    assert (index.read_bytes(), index.stat().st_mtime_ns) == before
    record = json.loads((tmp_path / "runs" / "tasks.json").read_text())
    assert record["commit"] == git("rev-parse", "HEAD").strip()
    assert record["code_changed"] is False
