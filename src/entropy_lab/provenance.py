"""Run manifests and atomic outputs.

Every stage writes `manifest.json` beside its outputs: what determines their bytes. The
params it read and their digest, the sha256 of each input and output, seeds and pool
ranges, package versions and, for stages that compute with a model, the numerics params
pin (`models.numerics`, threads, device, dtype). `digest` covers only what determines the
result, so it changes when and only when one of those changes. Nothing about where or when
the stage ran goes in (not the time, the commit, the CPU or its vector ISA): that is the run
record (`runs/<stage>.json`, stages.common), outside every hashed output, so a stage without
model arithmetic writes the same bytes on any machine.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import math
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from entropy_lab.errors import UserError

MANIFEST = "manifest.json"
TRACKED_PACKAGES = (
    "entropy_lab",
    "torch",
    "transformers",
    "tokenizers",
    "safetensors",
    "peft",
    "datasets",
    "numpy",
    "scipy",
    "statsmodels",
)


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def sha256_tree(path: Path, exclude: frozenset[str] = frozenset()) -> dict[str, str]:
    """Relative path -> sha256 for every file under `path` (or the file itself), sorted."""
    path = Path(path)
    if path.is_file():
        return {path.name: sha256_file(path)}
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.name not in exclude)
    return {p.relative_to(path).as_posix(): sha256_file(p) for p in files}


def sha256_path(path: Path) -> str:
    """One hash for a file or a directory (over its sorted relative paths and file hashes)."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    if not path.exists():
        raise FileNotFoundError(path)
    return sha256_bytes(canonical_json(sha256_tree(path)))


def digest(
    params: Mapping[str, Any],
    inputs: Mapping[str, str],
    seeds: Mapping[str, Any] | None = None,
    pool_ranges: Mapping[str, Any] | None = None,
) -> str:
    """The provenance digest: a function of what determines a stage's result, nothing else."""
    return sha256_bytes(
        canonical_json(
            {
                "params": dict(params),
                "inputs": dict(inputs),
                "seeds": dict(seeds or {}),
                "pool_ranges": dict(pool_ranges or {}),
            }
        )
    )


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def build_manifest(
    stage: str,
    params: Mapping[str, Any],
    inputs: Mapping[str, Path],
    outputs: Path,
    seeds: Mapping[str, Any] | None = None,
    pool_ranges: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    numerics: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest of a stage whose outputs are the files under `outputs`; `numerics` for
    stages whose float results depend on them (stages.common.model_numerics)."""
    input_hashes = {name: sha256_path(Path(p)) for name, p in sorted(inputs.items())}
    return {
        "stage": stage,
        "digest": digest(params, input_hashes, seeds, pool_ranges),
        "params": dict(sorted(params.items())),
        "inputs": input_hashes,
        "outputs": sha256_tree(outputs, exclude=frozenset({MANIFEST})),
        "seeds": dict(seeds or {}),
        "pool_ranges": dict(pool_ranges or {}),
        "versions": package_versions(),
        **({"numerics": dict(numerics)} if numerics else {}),
        **dict(extra or {}),
    }


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def json_safe(obj: Any) -> Any:
    """JSON has no NaN or infinity: null instead, recursively."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (temp file in the same directory, then rename)."""
    with atomic_file(Path(path)) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2, sort_keys=True)
        fh.write("\n")


TMP_TAG, OLD_TAG = ".tmp-", ".old-"  # hidden siblings of an output while it is written


def inside_repository(path: Path) -> Path:
    """`path` made absolute, if it lies inside the repository (the working directory stages
    run in) and no component of it below the repository root is a symbolic link; otherwise
    a one-line error. A params value or CLI argument must never make a stage write elsewhere,
    and a link (`data/tasks -> ../.git`) must never make it replace what the link points to."""
    root = Path.cwd().resolve()
    absolute = Path(os.path.abspath(path))
    resolved = absolute.resolve()
    if not resolved.is_relative_to(root):
        raise UserError(f"output {path} resolves to {resolved}, outside the repository {root}")
    if not absolute.is_relative_to(root):
        raise UserError(f"output {path} reaches the repository {root} through a symbolic link")
    node = root
    for part in absolute.relative_to(root).parts:
        node = node / part
        if node.is_symlink():
            raise UserError(
                f"output {path}: {node.relative_to(root)} is a symbolic link; "
                "outputs are never written through links (remove it)"
            )
    return absolute


def writable(path: Path) -> None:
    """The directory an output is renamed into is a directory this process may write, or can
    be made in one: checked before any work, so that no stage writes some of its outputs and
    then fails on the next (`outputs` in stages.common)."""
    node = Path(os.path.abspath(path)).parent
    while not node.exists() and node != node.parent:
        node = node.parent
    where = os.path.relpath(node)
    if not node.is_dir():
        raise UserError(f"output {path}: {where} is not a directory")
    if not os.access(node, os.W_OK | os.X_OK):
        raise UserError(f"output {path}: {where} is not writable")


# Errors of writing, not of the data: a read-only or full disk, a quota, a file-size limit
WRITE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


@contextlib.contextmanager
def write_errors(final: Path) -> Iterator[None]:
    """An OS error while writing `final` (a full disk, say) as one line; the caller has left
    `final` as it was."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in WRITE_ERRNOS:
            raise
        where = f" ({exc.filename})" if exc.filename else ""
        raise UserError(
            f"output {final}: {exc.strerror or os.strerror(exc.errno)}{where}; left as it was"
        ) from None


def _clear_stale(final: Path) -> None:
    """Remove the temporary siblings an interrupted write left (`.NAME.tmp-*`, `.NAME.old-*`)."""
    for tag in (TMP_TAG, OLD_TAG):
        for stale in final.parent.glob(f".{final.name}{tag}*"):
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_file(final: Path) -> Iterator[Path]:
    """Yield a temp path beside `final`; on success it is renamed over `final`."""
    with write_errors(final):
        final = inside_repository(final)
        final.parent.mkdir(parents=True, exist_ok=True)
        _clear_stale(final)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}{TMP_TAG}", dir=final.parent)
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())
        try:
            yield Path(tmp)
            inside_repository(final)
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where the
    platform or file system cannot."""
    if sys.platform != "linux":
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    return fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


@contextlib.contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield an empty temp directory beside `final`; on success it replaces `final`.

    `final` must lie inside the repository. Stale temporaries of earlier interrupted runs are
    removed first. A stage killed or failing inside the block leaves `final` as it was (or
    absent) and removes its temp directory, so DVC never sees a partial output; the swap is
    one atomic exchange where Linux allows it, so `final` is never missing in between.
    """
    with write_errors(final):
        final = inside_repository(final)
        final.parent.mkdir(parents=True, exist_ok=True)
        _clear_stale(final)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}{TMP_TAG}", dir=final.parent))
        os.chmod(tmp, 0o777 & ~_umask())
        try:
            yield tmp
            inside_repository(final)  # a link may have appeared while the stage worked
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if final.is_dir() and _exchange(tmp, final):
            shutil.rmtree(tmp, ignore_errors=True)  # now holds the previous output
            return
        old = final.with_name(f".{final.name}{OLD_TAG}{os.getpid()}")
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
