"""Finding a DVC-tracked artefact by its dvc.lock hash (workspace, cache, bundle), and the
bundle's defences, on a hand-made lock and cache (DVC's own hashes: tests/test_pipeline)."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from entropy_lab.bundle import open_bundle
from entropy_lab.errors import UserError
from entropy_lab.store import Store, dir_md5, listing_of, md5_file, object_path, read_bounded


@pytest.fixture
def repo(tmp_path) -> tuple[Path, dict]:
    """A workspace with a directory output `data/eval/m` and a file output, both in the lock
    and in the DVC cache."""
    root = tmp_path / "repo"
    out = root / "data" / "eval" / "m"
    out.mkdir(parents=True)
    (out / "records.parquet").write_bytes(b"records")
    (out / "manifest.json").write_text("{}")
    (root / "reports").mkdir()
    (root / "reports" / "metrics.json").write_text('{"a": 1}')
    listing = listing_of(out)
    lock = {"stages": {
        "evaluate@m": {"outs": [{"path": "data/eval/m", "md5": dir_md5(listing)}]},
        "report": {"outs": [{"path": "reports/metrics.json",
                             "md5": md5_file(root / "reports/metrics.json")}]},
    }}  # fmt: skip
    cache = root / ".dvc" / "cache" / "files" / "md5"
    for p in out.iterdir():
        object_path(cache, md5_file(p)).parent.mkdir(parents=True, exist_ok=True)
        object_path(cache, md5_file(p)).write_bytes(p.read_bytes())
    dir_obj = object_path(cache, dir_md5(listing))
    dir_obj.parent.mkdir(parents=True, exist_ok=True)
    dir_obj.write_text(json.dumps(sorted(listing, key=lambda e: e["relpath"]), sort_keys=True))
    return root, lock


def test_a_file_is_found_where_its_bytes_are_the_locks(repo):
    root, lock = repo
    store = Store(root, lock)
    rel = "data/eval/m/records.parquet"
    assert store.find(rel) == root / rel  # the workspace copy matches
    (root / rel).write_bytes(b"edited")  # an edited workspace copy is never returned
    assert store.find(rel) == object_path(root / ".dvc/cache/files/md5", md5_file_bytes(b"records"))
    (root / rel).unlink()
    assert read_bounded(store.find(rel)) == b"records"  # from the cache
    assert store.find("data/eval/m/other.parquet") is None
    assert "an output of stage evaluate@m" in store.needs(rel)


def md5_file_bytes(data: bytes) -> str:
    import hashlib

    return hashlib.md5(data).hexdigest()


def test_without_cache_or_workspace_nothing_is_found(repo, tmp_path):
    root, lock = repo
    import shutil

    shutil.rmtree(root / ".dvc")
    shutil.rmtree(root / "data")
    store = Store(root, lock)
    assert store.find("data/eval/m/records.parquet") is None
    assert store.find("reports/metrics.json") == root / "reports/metrics.json"


def bundle_of(members: dict[str, bytes], path: Path) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_a_bundle_adds_objects_only_under_their_own_hash(repo, tmp_path):
    root, lock = repo
    import shutil

    cache = root / ".dvc" / "cache" / "files" / "md5"
    members = {"bundle.json": b"{}"}
    for p in cache.rglob("*"):
        if p.is_file():
            members[f"files/md5/{p.relative_to(cache).as_posix()}"] = p.read_bytes()
    bundle = bundle_of(members, tmp_path / "b.tar.gz")
    shutil.rmtree(root / ".dvc")
    shutil.rmtree(root / "data")
    extra = open_bundle(bundle, tmp_path / "unpacked")
    assert (
        read_bounded(Store(root, lock, [extra]).find("data/eval/m/records.parquet")) == b"records"
    )

    forged = dict(members)
    name = next(k for k in members if k.startswith("files/") and not k.endswith(".dir"))
    forged[name] = b"other bytes"
    with pytest.raises(UserError, match="does not hash to its name"):
        open_bundle(bundle_of(forged, tmp_path / "f.tar.gz"), tmp_path / "u2")
    with pytest.raises(UserError, match="is not a bundle object"):
        open_bundle(bundle_of({"../etc/passwd": b"x"}, tmp_path / "e.tar.gz"), tmp_path / "u3")
    link = tmp_path / "l.tar.gz"
    with tarfile.open(link, "w:gz") as tar:
        info = tarfile.TarInfo("files/md5/00/" + "0" * 30)
        info.type, info.linkname = tarfile.SYMTYPE, "/dev/zero"
        tar.addfile(info)
    with pytest.raises(UserError, match="is not a bundle object"):
        open_bundle(link, tmp_path / "u4")
    garbage = tmp_path / "x.tar.gz"
    garbage.write_bytes(b"not a tarball")
    with pytest.raises(UserError, match="not a readable bundle"):
        open_bundle(garbage, tmp_path / "u5")


def test_reads_are_bounded_and_refuse_links_and_fifos(tmp_path):
    os.symlink("/dev/zero", tmp_path / "zero")
    with pytest.raises(UserError, match="a link"):
        read_bounded(tmp_path / "zero")
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(UserError, match="not a regular file"):
        read_bounded(tmp_path / "fifo")
    (tmp_path / "big").write_bytes(b"x" * 100)
    with pytest.raises(UserError, match="more than the 10"):
        read_bounded(tmp_path / "big", limit=10)
