"""`entropy-lab bundle`: one tarball of the DVC-cached artefacts that `verify` needs, and
`verify --bundle` reading it back.

A bundle is a slice of the DVC cache: each file under `files/md5/<2>/<30>` named by its md5
(directory listings as `<md5>.dir`, as DVC stores them), with `bundle.json` listing, per
dvc.lock (the default profile's and each experiment record's), which repository file each
object is. It holds only what git does not: evaluation records, A/B metric tables, the
manifests of cached outputs, pool ledgers and built models' weights. A maintainer attaches
it to a release; a reviewer checks every claim from a fresh clone with it:

    entropy-lab verify --bundle entropy-lab-<commit>.tar.gz

Reading one back is defensive: members must be regular files with content-addressed names,
each of bounded size, and each object must hash to its name (so a bundle can add bytes only
where dvc.lock already names their hash).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
import time
from pathlib import Path
from typing import Any

from entropy_lab.errors import UserError
from entropy_lab.store import MAX_BYTES, Store

MANIFEST = "bundle.json"
OBJECT = re.compile(r"files/md5/([0-9a-f]{2})/([0-9a-f]{30}(?:\.dir)?)")
MAX_TOTAL = 4 * 2**30


def default_files(params, store: Store) -> list[str]:
    """Every DVC-cached file the default profile's claims are recomputed from."""
    from entropy_lab.report.numbers import (
        ab_tables,
        evaluated,
        manifests,
        taught_built,
        weights_file,
    )

    files = [rel for pair in ab_tables(params) for rel in pair]
    for m in evaluated(params):
        files.append(f"data/eval/{m}/records.parquet")
        if store.expected(f"data/eval/{m}/seeded.parquet"):
            files.append(f"data/eval/{m}/seeded.parquet")
    files += [weights_file(m) for m in taught_built(params)] + manifests(params)
    files += [
        f"{p}/ledger.json" for p in store.outs if p == "data/tasks" or p.startswith("data/ab/")
    ]
    # each model folder's manifest, and with it the folder's listing: the `models` stage
    # depends on models/, whose hash verify rebuilds from its outputs' listings
    files += [
        f"{p}/manifest.json" for p in store.outs
        if p.startswith("models/") and f"{p}/manifest.json" not in files
        and store.expected(f"{p}/manifest.json")
    ]  # fmt: skip
    return files


def record_files(store: Store, metrics: dict[str, Any]) -> list[str]:
    """The DVC-cached files an experiment record's numbers are recomputed from, named by its
    own dvc.lock (so a record whose params today's schema no longer reads is bundled too)."""
    from entropy_lab.generation.metrics import METRICS_DIR

    tables = sorted(p for p in store.outs if p.startswith(f"{METRICS_DIR.as_posix()}/"))
    files = [f"{p}/{name}" for p in tables for name in ("samples.parquet", "groups.parquet")]
    for m in metrics.get("teaching", {}):
        files.append(f"data/eval/{m}/records.parquet")
        if store.expected(f"data/eval/{m}/seeded.parquet"):
            files.append(f"data/eval/{m}/seeded.parquet")
    return files


def wanted(params, root: Path) -> dict[str, tuple[Store, list[str]]]:
    """lock name -> (its store, the files it needs), the default's and every record's."""
    from entropy_lab.artefacts import read_yaml
    from entropy_lab.experiments import RECORDS, read_lock
    from entropy_lab.store import read_bounded

    store = Store(root, read_yaml(root / "dvc.lock"))
    out = {"dvc.lock": (store, default_files(params, store))}
    for d in sorted((root / RECORDS).glob("*/dvc.lock")):
        rec = Store(root, read_lock(d))
        metrics = json.loads(read_bounded(d.parent / "metrics.json"))
        out[d.relative_to(root).as_posix()] = (rec, record_files(rec, metrics))
    return out


def write(params, root: Path, target: Path) -> dict[str, Any]:
    """Write the bundle to `target` (atomically, anywhere the user names: it is not a stage
    output); returns its manifest. Every file must be found, in the workspace or the DVC
    cache, with the bytes its lock names."""
    from entropy_lab.store import user_file

    objects: dict[str, Path] = {}
    files: dict[str, dict[str, str]] = {}
    for lock_name, (store, rels) in wanted(params, root).items():
        files[lock_name] = {}
        for rel in rels:
            md5, out = store.expected(rel) or (None, None)
            path = store.find(rel)
            if md5 is None or path is None:
                raise UserError(f"cannot bundle {store.needs(rel)} for {lock_name}: it is not in "
                                "the workspace or the DVC cache; `make repro` or `dvc pull` it")  # fmt: skip
            objects[md5] = path
            files[lock_name][rel] = md5
            if out != rel:  # a file inside a directory output: its listing too
                objects[store.outs[out][0]] = store.listing_bytes(out)  # type: ignore[assignment]
    manifest = {
        "format": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "files": files,
        "objects": {k: _size(v) for k, v in sorted(objects.items())},
    }
    with user_file(target) as tmp, tarfile.open(tmp, "w:gz") as tar:
        _add(tar, MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())
        for md5, src in sorted(objects.items()):
            _add(
                tar,
                f"files/md5/{md5[:2]}/{md5[2:]}",
                src if isinstance(src, bytes) else src.read_bytes(),
            )
    return manifest


def _size(src: Path | bytes) -> int:
    return len(src) if isinstance(src, bytes) else src.stat().st_size


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    tar.addfile(info, io.BytesIO(data))


def open_bundle(bundle: Path, into: Path) -> Path:
    """Unpack `bundle` into `into` after checking every member; returns the cache directory
    its objects are in (for `store.Store`'s caches)."""
    from entropy_lab.store import regular_file

    regular_file(bundle, MAX_TOTAL)
    total = 0
    try:
        with tarfile.open(bundle, "r:*") as tar:
            for member in tar:
                if member.name == MANIFEST and member.isfile():
                    continue
                match = OBJECT.fullmatch(member.name)
                if not member.isfile() or match is None:
                    raise UserError(f"{bundle}: member {member.name[:80]!r} is not a bundle object")
                if member.size > MAX_BYTES or (total := total + member.size) > MAX_TOTAL:
                    raise UserError(f"{bundle}: member {member.name[:80]!r} is too large")
                data = tar.extractfile(member).read()  # type: ignore[union-attr]
                md5 = match[1] + match[2]
                if hashlib.md5(data).hexdigest() != md5.removesuffix(".dir"):
                    raise UserError(f"{bundle}: {member.name} does not hash to its name")
                path = into / "files" / "md5" / match[1] / match[2]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise UserError(f"{bundle}: not a readable bundle ({type(exc).__name__}: {exc})") from None
    return into / "files" / "md5"


def summary(manifest: dict[str, Any]) -> str:
    size = sum(manifest["objects"].values())
    locks = len(manifest["files"])
    return f"{len(manifest['objects'])} objects, {size / 2**20:.1f} MiB, for {locks} dvc.lock files"
