"""The reviewer's `verify`: check every claim of the report whose inputs are here, and say what
could not be checked and what it needs.

Git holds the report (`reports/`), the entropy pool, `dvc.lock` and the experiment records;
the larger artefacts (evaluation records, A/B metric tables, models, manifests of DVC-cached
outputs) are found by the md5 `dvc.lock` records for them (`store.Store`): in the workspace,
the local DVC cache or a bundle (`entropy-lab bundle`). Each part of the report is checked
where its inputs are found, and listed as unchecked, with what it needs, where they are not:

- the numbers: harvest re-assessed from the committed pool; the seeding study from the
  ab-metrics tables; each taught model's teaching numbers from its evaluation records; the
  built models' sizes from their weights; the profile from params; the SFT curves and the
  report's own files against `dvc.lock`;
- the provenance rebuilt from the stage manifests; the pool ledgers checked for overlaps;
  the headline rebuilt from the numbers; `report.md` rendered again and compared line by line;
- `dvc status` (artefacts, code and params that no longer match the lock; an output or
  dependency that is simply absent is not a difference: an output's claims are checked from
  the cache or a bundle or listed as unchecked, and so is a dependency that no stage writes);
- every experiment record (`experiments.check`).
"""

from __future__ import annotations

import itertools
from pathlib import Path

from entropy_lab.artefacts import read_json_object, read_yaml
from entropy_lab.checks import Verification
from entropy_lab.errors import UserError
from entropy_lab.experiments import check_all
from entropy_lab.report import markdown
from entropy_lab.report.numbers import (
    ab_tables,
    built_parameters,
    check_ledgers,
    diff,
    evaluated,
    headline,
    manifests,
    profile,
    provenance,
    recompute_ab,
    recompute_harvest,
    recompute_teaching,
    sized,
    taught_built,
    training_curves,
    weights_file,
)
from entropy_lab.store import Store

REPORTS = Path("reports")
ROUTES = (
    "`make repro` (docs/reproducibility.md gives the time), `dvc pull` from a remote you "
    "configure (docs/reproducibility.md#remotes), or `entropy-lab verify --bundle FILE`; "
    "a record's numbers that today's code cannot recompute: its own commit, checked out"
)


ABSENT = {"deleted", "not in cache"}  # DVC 3.x: no workspace copy; no cache object either


def dvc_changes(root: Path, store: Store) -> Verification:
    """DVC's own `status`: artefacts, code or params that no longer match `dvc.lock`."""
    import logging

    from dvc.repo import Repo

    logging.getLogger("dvc").setLevel(logging.ERROR)  # "harvest is frozen": by design
    try:
        with Repo(str(root)) as repo:
            status = repo.status()
            stages = {s.name for s in repo.index.stages}
    except Exception as exc:  # DVC's own errors about its files, as one line
        return Verification(
            problems=[f"dvc status failed: {str(exc).strip().splitlines()[0][:200]}"]
        )
    out = Verification(problems=[
        f"dvc.lock: stage {s} is in no stage of dvc.yaml (a stale entry DVC keeps)"
        for s in sorted(set(store.lock.get("stages", {})) - stages)
    ])  # fmt: skip
    out.add(status_changes(status, store))
    return out


def status_changes(status: dict, store: Store) -> Verification:
    """What `dvc status` says, judged: a change is a difference only where the bytes here are
    not the lock's. Absent (DVC: "deleted", or "not in cache" when the cache has no copy
    either) is not a difference: an output's claims are checked by its lock hash from the
    cache or a bundle, or listed as unchecked by the part of the report that needs them; an
    absent dependency that no stage writes is listed as unchecked. A directory dependency that
    holds other stages' outputs (`models` holds `models/kjv-tiny`) is "modified" whenever one
    of them is absent: it is compared again with each inner output taken at its lock hash."""
    out = Verification(
        checked=["dvc status: the code, params and artefacts here, against dvc.lock"]
    )
    for stage, changes in sorted(status.items()):
        for change in changes:
            if isinstance(change, str):
                out.problems.append(f"dvc status: {stage}: {change}")
                continue
            for kind, entries in change.items():
                for path, state in entries.items() if isinstance(entries, dict) else []:
                    line = f"dvc status: {stage}: {kind} {path}"
                    if state in ABSENT:
                        if not _stage_written(store, path):
                            out.unchecked.append(
                                f"{line}, against dvc.lock; needs {path}, which no stage "
                                "writes (`git checkout` it, or fetch it as its stage says)")  # fmt: skip
                    elif state == "modified" and (inner := _inner_absent(store, path)):
                        out.add(_rebuilt(store, stage, kind, path, line, inner))
                    else:
                        out.problems.append(f"{line} {state}")
    return out


def _stage_written(store: Store, path: str) -> bool:
    """`path` is an output of a stage, inside one, or a directory holding one."""
    p = path.rstrip("/")
    return any(p == o or p.startswith(o + "/") or o.startswith(p + "/") for o in store.outs)


def _inner_absent(store: Store, path: str) -> list[str]:
    here = store.root / path
    if not here.is_dir() or here.is_symlink():
        return []
    return [o for o in store.inside(path) if not (store.root / o).exists()]


def _rebuilt(store: Store, stage: str, kind: str, path: str, line: str, inner) -> Verification:
    """A directory DVC calls modified while outputs inside it are absent: its hash recomputed
    with each inner output at its lock hash, against the lock's."""
    entry = (store.lock.get("stages") or {}).get(stage) or {}
    section = "outs" if kind.endswith("outs") else "deps"
    recorded = [e.get("md5") for e in entry.get(section) or []
                if isinstance(e, dict) and e.get("path") == path]  # fmt: skip
    try:
        md5, missing = store.rebuilt_md5(path)
    except UserError as exc:
        return Verification(problems=[f"{line}: {exc}"])
    if missing:
        needs = "; ".join(store.needs(o) for o in missing)
        return Verification(unchecked=[f"{line}, against dvc.lock; needs {needs}"])
    if not recorded or md5 != recorded[0]:
        return Verification(problems=[f"{line} modified (absent here: {', '.join(inner)})"])
    return Verification()


def section(name: str, what: str, store: Store, files: list[str], check) -> Verification:
    """Check one part of the report when every file it needs is found, else list it."""
    found = {rel: store.find(rel) for rel in files}
    if missing := [rel for rel, p in found.items() if p is None]:
        needs = "; ".join(store.needs(rel) for rel in missing)
        return Verification(unchecked=[f"{name}: {what}; needs {needs}"])
    return Verification(problems=check(found), checked=[f"{name}: {what}"])


def numbers(params, reported: dict, store: Store, root: Path) -> Verification:
    """Each section of reports/metrics.json against its recomputation."""
    out = Verification()
    covered = {"profile", "harvest", "ab", "teaching", "training", "sizes"}
    if extra := sorted(set(reported) - covered):
        out.problems += [f"{k}: reported, but nothing recomputes it" for k in extra]
    out.problems += diff(reported.get("profile"), profile(params), "profile")
    out.problems += diff(reported.get("harvest"), recompute_harvest(params, root), "harvest")
    out.checked.append("harvest: re-assessed from the committed pool and raw samples")
    out.problems += diff(reported.get("training"), training_curves(params, root), "training")
    out.checked.append("training: the SFT curves, against dvc.lock")
    tables = ab_tables(params)
    out.add(section(
        "ab", "the seeding study recomputed from the A/B metric tables", store,
        [rel for pair in tables for rel in pair],
        lambda f: diff(reported.get("ab"), recompute_ab(params, [(f[s], f[g]) for s, g in tables]), "ab"),
    ))  # fmt: skip
    teaching = reported.get("teaching") or {}
    if set(teaching) != set(evaluated(params)):
        out.problems.append(f"teaching: reported for {sorted(teaching)}, params evaluate "
                            f"{sorted(evaluated(params))}")  # fmt: skip
    for m in evaluated(params):
        rel = f"data/eval/{m}/records.parquet"
        seeded = f"data/eval/{m}/seeded.parquet"
        files = [rel] + ([seeded] if store.expected(seeded) else [])
        out.add(section(
            f"teaching/{m}", "recomputed from its evaluation records", store, files,
            lambda f, m=m, rel=rel, s=seeded: diff(
                teaching.get(m), recompute_teaching(params, m, f[rel], f.get(s)), f"teaching.{m}"),
        ))  # fmt: skip
    sizes = reported.get("sizes") or {}
    if set(sizes) != set(sized(params)):
        out.problems.append(
            f"sizes: reported for {sorted(sizes)}, expected {sorted(sized(params))}"
        )
    for m in taught_built(params):
        out.add(section(
            f"sizes/{m}", "parameter count from its weights", store, [weights_file(m)],
            lambda f, m=m: diff(sizes.get(m), built_parameters(f[weights_file(m)]), f"sizes.{m}"),
        ))  # fmt: skip
    return out


def verify(params, root: Path = Path("."), caches: list[Path] | None = None) -> Verification:
    out_dir = root / REPORTS
    for name in ("metrics.json", "headline.json", "provenance.json", "report.md"):
        if not (out_dir / name).is_file():
            raise UserError(f"no {out_dir / name}; `git checkout` it (it is committed)")
    reported = read_json_object(out_dir / "metrics.json")
    recorded_prov = read_json_object(out_dir / "provenance.json")
    lock = read_yaml(root / "dvc.lock")
    if not isinstance(lock, dict) or not isinstance(lock.get("stages"), dict):
        raise UserError(f"{root / 'dvc.lock'}: not a DVC lock file; `git checkout dvc.lock`")
    store = Store(root, lock, list(caches or []))
    result = dvc_changes(root, store)
    result.add(numbers(params, reported, store, root))
    result.add(section(
        "provenance", "rebuilt from dvc.lock and the stage manifests", store, manifests(params),
        lambda f: [f"provenance.{d}" for d in diff(
            recorded_prov, provenance(params, root, locate=lambda rel: f[rel]))],
    ))  # fmt: skip
    pool_ledgers = [p for p in store.outs if p == "data/tasks" or p.startswith("data/ab/")]
    result.add(section(
        "ledgers", "no pool byte read by two stages", store,
        [f"{p}/ledger.json" for p in pool_ledgers], lambda f: _ledgers(list(f.values())),
    ))  # fmt: skip
    headline_file = read_json_object(out_dir / "headline.json")
    result.problems += [f"headline.{d}" for d in diff(headline_file, headline(reported))]
    on_disk = (out_dir / "report.md").read_text(encoding="utf-8").splitlines()
    rendered = markdown.render(reported, recorded_prov).splitlines()
    for i, (a, b) in enumerate(itertools.zip_longest(on_disk, rendered), 1):
        if a != b:
            result.problems.append(f"report.md line {i} is {a!r}; metrics.json renders {b!r}")
    result.checked.append("report: headline.json and report.md rendered again from the numbers")
    result.add(check_all(root, list(caches or [])))
    return result


def _ledgers(paths: list[Path]) -> list[str]:
    try:
        check_ledgers(paths)
    except UserError as exc:
        return [str(exc)]
    return []
