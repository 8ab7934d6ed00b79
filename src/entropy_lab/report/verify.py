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
- `dvc status` (artefacts, code and params that no longer match the lock; an output that is
  simply absent is not a difference, its claims are unchecked);
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
    "configure (docs/reproducibility.md#remotes), or `entropy-lab verify --bundle FILE`"
)


def dvc_changes(root: Path) -> list[str]:
    """Artefacts, code or params that no longer match `dvc.lock` (DVC's own `status`). An
    output or dependency that is absent from the workspace is not listed: its claims are
    checked from the cache or a bundle, or listed as unchecked."""
    import logging

    from dvc.repo import Repo

    logging.getLogger("dvc").setLevel(logging.ERROR)  # "harvest is frozen": by design
    try:
        with Repo(str(root)) as repo:
            status = repo.status()
            stages = {s.name for s in repo.index.stages}
    except Exception as exc:  # DVC's own errors about its files, as one line
        return [f"dvc status failed: {str(exc).strip().splitlines()[0][:200]}"]
    lock = read_yaml(root / "dvc.lock")
    out = [f"dvc.lock: stage {s} is in no stage of dvc.yaml (a stale entry DVC keeps)"
           for s in sorted(set(lock.get("stages", {})) - stages)]  # fmt: skip
    for stage, changes in sorted(status.items()):
        for change in changes:
            if isinstance(change, str):
                out.append(f"dvc status: {stage}: {change}")
                continue
            for kind, entries in change.items():
                for path, state in entries.items() if isinstance(entries, dict) else []:
                    if state != "deleted":
                        out.append(f"dvc status: {stage}: {kind} {path} {state}")
    return out


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
    result = Verification(problems=dvc_changes(root))
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
