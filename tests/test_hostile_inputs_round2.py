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
