"""Where the bytes of a DVC-tracked artefact are, by the md5 a `dvc.lock` records for it.

A reviewer's checkout may hold an output in the workspace (after `make repro` or `dvc pull`),
in the local DVC cache only, in a bundle (`entropy-lab bundle`: a slice of the cache), or
nowhere. `Store.find` answers from a lock's recorded hashes alone, so a file is only ever
returned when its bytes are the ones the lock names: the workspace copy when its md5 matches,
else the cache's or a bundle's object of that md5. A file that is in no place is `None`, and
`Store.needs` says which stage writes it, so `verify` can list it as unchecked with its route.

Every read here is bounded (`read_bounded`): a record, a listing or a bundle member that is a
link, a device or larger than `MAX_BYTES` is refused before it is read.

`user_file` writes a file the user names on the command line (a bundle): anywhere, atomically.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from entropy_lab.errors import UserError

MAX_BYTES = 256 * 2**20  # the largest artefact verify reads (a built model's weights)
CACHE = Path(".dvc/cache/files/md5")


def regular_file(path: Path, limit: int = MAX_BYTES) -> int:
    """The size of `path`, which must be a regular file (not a link, FIFO or device) of at most
    `limit` bytes; anything else is one line."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise UserError(f"{path}: cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a link" if stat.S_ISLNK(st.st_mode) else "not a regular file"
        raise UserError(f"{path}: {kind}; only regular files are read")
    if st.st_size > limit:
        raise UserError(f"{path}: {st.st_size} bytes, more than the {limit} allowed")
    return st.st_size


def read_bounded(path: Path, limit: int = MAX_BYTES) -> bytes:
    regular_file(path, limit)
    with open(path, "rb", opener=lambda p, f: os.open(p, f | os.O_NOFOLLOW)) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:  # grew while being read
        raise UserError(f"{path}: more than the {limit} bytes allowed")
    return data


def md5_file(path: Path) -> str:
    h = hashlib.md5()
    regular_file(path)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def dir_md5(listing: list[dict[str, str]]) -> str:
    """DVC's hash of a directory: the md5 of its sorted listing, as DVC serialises it, + .dir."""
    entries = sorted(({"md5": e["md5"], "relpath": e["relpath"]} for e in listing),
                     key=lambda e: e["relpath"])  # fmt: skip
    return hashlib.md5(json.dumps(entries, sort_keys=True).encode()).hexdigest() + ".dir"


def listing_of(directory: Path) -> list[dict[str, str]]:
    """A workspace directory's DVC listing (relative paths, md5 per file)."""
    return [
        {"md5": md5_file(p), "relpath": p.relative_to(directory).as_posix()}
        for p in sorted(directory.rglob("*"))
        if p.is_file() and not p.is_symlink()
    ]


@contextlib.contextmanager
def user_file(target: Path) -> Iterator[Path]:
    """Yield a temp path in `target`'s directory; on success it is renamed to `target`, so a
    reader never sees part of it. For a file the user names (`bundle --out`): unlike a stage's
    output it may lie outside the repository, but it is never a directory, a link or another
    non-regular file, and its directory must exist; anything else is one line."""
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise UserError(f"{target}: cannot be written ({exc.strerror})") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        kind = ("a directory" if stat.S_ISDIR(st.st_mode) else
                "a link" if stat.S_ISLNK(st.st_mode) else "not a regular file")  # fmt: skip
        raise UserError(f"{target}: {kind}; name a new or a regular file to write")
    parent = Path(os.path.abspath(target)).parent
    if not parent.is_dir():
        raise UserError(f"{target}: no directory {parent}; make it first")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.tmp-", dir=parent)
    except OSError as exc:
        raise UserError(f"{target}: cannot be written in {parent} ({exc.strerror})") from None
    os.close(fd)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        yield Path(tmp)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UserError(f"{target}: not written ({exc.strerror}); left as it was") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def object_path(cache: Path, md5: str) -> Path:
    return cache / md5[:2] / md5[2:]


def lock_outs(lock: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Output path -> (md5, stage) for every stage of a dvc.lock."""
    out = {}
    for stage, entry in (lock.get("stages") or {}).items():
        for o in (entry or {}).get("outs") or []:
            if isinstance(o, dict) and isinstance(o.get("path"), str) and o.get("md5"):
                out[o["path"]] = (str(o["md5"]), stage)
    return out


@dataclass
class Store:
    """The artefacts one dvc.lock names, looked up in `root`'s workspace and in `caches`."""

    root: Path
    lock: dict[str, Any]
    caches: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.outs = lock_outs(self.lock)
        self.caches = [self.root / CACHE, *self.caches]
        self._listings: dict[str, bytes | None] = {}

    def cached(self, md5: str) -> Path | None:
        for cache in self.caches:
            p = object_path(cache, md5)
            if p.is_file() and not p.is_symlink():
                return p
        return None

    def listing_bytes(self, out: str) -> bytes | None:
        """A directory output's listing as DVC stores it: from a cache, else from the workspace
        when it hashes to the lock's md5."""
        md5 = self.outs[out][0]
        if out not in self._listings:
            found = None
            if (p := self.cached(md5)) is not None:
                found = read_bounded(p, 64 * 2**20)
            elif (here := self.root / out).is_dir() and not here.is_symlink():
                entries = listing_of(here)
                if dir_md5(entries) == md5:
                    found = json.dumps(sorted(entries, key=lambda e: e["relpath"]),
                                       sort_keys=True).encode()  # fmt: skip
            self._listings[out] = found
        return self._listings[out]

    def listing(self, out: str) -> list[dict[str, str]] | None:
        raw = self.listing_bytes(out)
        try:
            entries = json.loads(raw) if raw is not None else None
        except ValueError:
            return None
        return entries if isinstance(entries, list) else None

    def expected(self, rel: str) -> tuple[str, str] | None:
        """(md5 the lock gives `rel`, the out it belongs to), or None when no out holds it."""
        if rel in self.outs and not self.outs[rel][0].endswith(".dir"):
            return self.outs[rel][0], rel
        for out, (md5, _stage) in self.outs.items():
            if md5.endswith(".dir") and rel.startswith(out.rstrip("/") + "/"):
                inner = rel[len(out.rstrip("/")) + 1 :]
                for e in self.listing(out) or []:
                    if e.get("relpath") == inner:
                        return str(e["md5"]), out
                return None
        return None

    def find(self, rel: str) -> Path | None:
        """A path holding the bytes the lock names for the file `rel`, or None."""
        want = self.expected(rel)
        if want is None:
            return None
        here = self.root / rel
        if here.is_file() and not here.is_symlink() and md5_file(here) == want[0]:
            return here
        return self.cached(want[0])

    def inside(self, directory: str) -> list[str]:
        """The outputs strictly inside the repository directory `directory`."""
        prefix = directory.rstrip("/") + "/"
        return sorted(out for out in self.outs if out.startswith(prefix))

    def rebuilt_md5(self, directory: str) -> tuple[str | None, list[str]]:
        """DVC's hash of the workspace directory `directory` with every output inside it (a
        stage's, such as `models/kjv-tiny` in the dependency `models`) taken as the lock names
        it, not read from the workspace: its own files hashed, each inner output's listing
        found by its lock hash. Returns (that hash, []), or (None, the inner outputs whose
        listing is found nowhere). An inner output that differs in the workspace is its own
        stage's change. `.dvcignore` patterns are not applied (the repository has none)."""
        base = self.root / directory
        inner = self.inside(directory)
        entries, missing = [], []
        for out in inner:
            md5, rel = self.outs[out][0], out[len(directory.rstrip("/")) + 1 :]
            if not md5.endswith(".dir"):
                entries.append({"md5": md5, "relpath": rel})
            elif (listing := self.listing(out)) is None:
                missing.append(out)
            else:
                entries += [{"md5": str(e["md5"]), "relpath": f"{rel}/{e['relpath']}"}
                            for e in listing]  # fmt: skip
        if missing:
            return None, missing
        skip = [self.root / o for o in inner]
        for p in sorted(base.rglob("*")) if base.is_dir() and not base.is_symlink() else []:
            if p.is_file() and not p.is_symlink() and not any(p.is_relative_to(o) for o in skip):
                entries.append({"md5": md5_file(p), "relpath": p.relative_to(base).as_posix()})
        return dir_md5(entries), []

    def needs(self, rel: str) -> str:
        """What `rel` is, for a reviewer: which stage writes it."""
        for out, (_md5, stage) in self.outs.items():
            if rel == out or rel.startswith(out.rstrip("/") + "/"):
                return f"{rel} (an output of stage {stage})"
        return f"{rel} (in no stage of dvc.lock)"
