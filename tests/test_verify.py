"""`verify`'s reading of `dvc status` on a hand-made lock (what is absent is unchecked, what
differs is a difference), and `bundle --out` writing anywhere. End to end, on a fresh clone
with no cache and no remote: tests/test_pipeline.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from entropy_lab.cli import main
from entropy_lab.errors import UserError
from entropy_lab.report.verify import status_changes
from entropy_lab.store import Store, dir_md5, listing_of, md5_file, object_path, user_file

DVC_LINE = "dvc status: the code, params and artefacts here, against dvc.lock"


@pytest.fixture
def repo(tmp_path) -> tuple[Path, dict]:
    """`models` (a README of its own and `models/m`, which stage build@m writes) is the
    dependency of stage `models`; `data/params.checked` is check-params' output; the DVC cache
    holds `models/m` and its listing."""
    root = tmp_path / "repo"
    (root / "models" / "m").mkdir(parents=True)
    (root / "models" / "README.md").write_text("models\n")
    (root / "models" / "m" / "model.safetensors").write_bytes(b"weights")
    (root / "data").mkdir()
    (root / "data" / "params.checked").write_text("ok\n")
    inner = listing_of(root / "models" / "m")
    cache = root / ".dvc" / "cache" / "files" / "md5"
    for name, data in ((md5_file(root / "models/m/model.safetensors"), b"weights"),
                       (dir_md5(inner), json.dumps(inner, sort_keys=True).encode())):  # fmt: skip
        object_path(cache, name).parent.mkdir(parents=True, exist_ok=True)
        object_path(cache, name).write_bytes(data)
    lock = {"stages": {
        "check-params": {"outs": [{"path": "data/params.checked",
                                   "md5": md5_file(root / "data/params.checked")}]},
        "build@m": {"outs": [{"path": "models/m", "md5": dir_md5(inner)}]},
        "models": {"deps": [{"path": "models", "md5": dir_md5(listing_of(root / "models"))},
                            {"path": "src/x.py", "md5": "0" * 32}]},
    }}  # fmt: skip
    return root, lock


def test_absent_outputs_and_dependencies_are_not_differences(repo):
    """A fresh clone: every output "not in cache" (DVC 3.x) or "deleted", and the dependencies
    other stages write "deleted"; nothing differs, and the claims resting on those outputs are
    listed as unchecked by the parts of the report that need them (not here)."""
    root, lock = repo
    status = {
        "check-params": [{"changed outs": {"data/params.checked": "not in cache"}}],
        "build@m": [{"changed deps": {"data/params.checked": "deleted"}},
                    {"changed outs": {"models/m": "deleted"}}],
        "models": [{"changed deps": {"data/params.checked": "deleted"}}],
    }  # fmt: skip
    out = status_changes(status, Store(root, lock))
    assert (out.problems, out.unchecked, out.checked) == ([], [], [DVC_LINE])
    assert out.exit_code == 0


def test_a_present_file_that_differs_is_a_difference(repo):
    root, lock = repo
    status = {
        "check-params": [{"changed outs": {"data/params.checked": "modified"}}],
        "models": [{"changed deps": {"data/params.checked": "modified"}}, "always changed"],
    }
    out = status_changes(status, Store(root, lock))
    assert out.problems == [
        "dvc status: check-params: changed outs data/params.checked modified",
        "dvc status: models: changed deps data/params.checked modified",
        "dvc status: models: always changed",
    ]
    assert out.exit_code == 1


def test_an_absent_dependency_no_stage_writes_is_unchecked_with_its_route(repo):
    root, lock = repo
    out = status_changes({"models": [{"changed deps": {"src/x.py": "deleted"}}]}, Store(root, lock))
    assert out.problems == []
    (line,) = out.unchecked
    assert line.startswith("dvc status: models: changed deps src/x.py") and "`git checkout`" in line


def test_a_directory_dependency_holding_an_absent_output_is_compared_at_the_lock_hash(repo):
    """`models` is "modified" on a fresh clone only because `models/m` is absent: with the
    output's listing found (cache or bundle) it is compared again and holds; an edited file of
    its own is a difference; with no listing anywhere it is unchecked, naming the output."""
    import shutil

    root, lock = repo
    shutil.rmtree(root / "models" / "m")
    status = {"models": [{"changed deps": {"models": "modified"}}]}
    out = status_changes(status, Store(root, lock))
    assert (out.problems, out.unchecked) == ([], [])

    (root / "models" / "README.md").write_text("edited\n")
    out = status_changes(status, Store(root, lock))
    assert out.problems == [
        "dvc status: models: changed deps models modified (absent here: models/m)"
    ]
    (root / "models" / "README.md").write_text("models\n")

    shutil.rmtree(root / ".dvc")
    out = status_changes(status, Store(root, lock))
    assert out.problems == []
    (line,) = out.unchecked
    assert "needs models/m (an output of stage build@m)" in line


def test_user_file_writes_anywhere_whole_or_not_at_all(tmp_path):
    target = tmp_path / "elsewhere" / "b.tar.gz"
    target.parent.mkdir()
    with user_file(target) as tmp:
        assert tmp.parent == target.parent and not target.exists()
        tmp.write_bytes(b"one")
    assert target.read_bytes() == b"one" and os.listdir(target.parent) == ["b.tar.gz"]
    with pytest.raises(RuntimeError), user_file(target) as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError
    assert target.read_bytes() == b"one" and os.listdir(target.parent) == ["b.tar.gz"]

    os.symlink(target, tmp_path / "link")
    os.mkfifo(tmp_path / "fifo")
    for path, kind in ((tmp_path, "a directory"), (tmp_path / "link", "a link"),
                       (tmp_path / "fifo", "not a regular file"),
                       (tmp_path / "none" / "b.tar.gz", "no directory")):  # fmt: skip
        with pytest.raises(UserError, match=kind), user_file(path):
            pass


def test_bundle_out_may_lie_outside_the_repository(tmp_path, monkeypatch):
    """A bundle is the user's file, not a stage output: written whole to --out wherever it
    is, with nothing left behind there or in the repository."""
    import tarfile

    root, elsewhere = tmp_path / "repo", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(root)
    monkeypatch.setattr("entropy_lab.config.load_params", lambda path: None)
    monkeypatch.setattr("entropy_lab.bundle.wanted", lambda params, where: {"dvc.lock": (None, [])})
    result = CliRunner().invoke(main, ["bundle", "--out", str(elsewhere / "b.tar.gz")])
    assert result.exit_code == 0, result.output
    with tarfile.open(elsewhere / "b.tar.gz") as tar:
        assert tar.getnames() == ["bundle.json"]
    assert os.listdir(elsewhere) == ["b.tar.gz"] and os.listdir(root) == []
    assert f"wrote {elsewhere / 'b.tar.gz'}: 0 objects" in result.output

    os.mkfifo(elsewhere / "fifo")
    result = CliRunner().invoke(main, ["bundle", "--out", str(elsewhere / "fifo")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: {elsewhere / 'fifo'}: not a regular file; name a new or a regular file to write"
    ]
