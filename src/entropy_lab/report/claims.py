"""Claim-level reproduction: does a re-run support what the committed report claims?

Bytes repeat only on a machine whose numerics match the committing one's; a reviewer elsewhere
still needs an answer. A claim is read off the report's numbers (`reports/metrics.json`):

- every verdict and status (`verdict`, `status`, `..._verdict`): the re-run's must be equal;
- every estimate reported with a 95% CI (`x` beside `x_ci`, or `mean` beside `ci`): the
  re-run's estimate must fall inside the committed CI;
- the entropy assessment of the committed pool (`harvest.<source>.min_entropy`): equal, since
  the pool is in git and the estimators are exact;
- an estimate whose CI is absent (fewer than two records, or no variation): within
  `ABSOLUTE_TOLERANCE` of the committed value.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

ABSOLUTE_TOLERANCE = 0.01
CATEGORICAL = ("verdict", "status")
MISSING = object()


@dataclass(frozen=True)
class Claim:
    name: str
    committed: Any
    rerun: Any
    rule: str  # "equal", "in CI [lo, hi]", "within 0.01", "exact"
    holds: bool


def _at(tree: Any, path: tuple) -> Any:
    for key in path:
        if not isinstance(tree, dict) or key not in tree:
            return MISSING
        tree = tree[key]
    return tree


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _ci_key(node: dict, key: str) -> str | None:
    for name in (f"{key}_ci", f"{key.removesuffix('_rate')}_ci"):
        if name in node and name != key:
            return name
    return None


def _estimate(name: str, committed: Any, ci: Any, rerun: Any) -> Claim:
    if not _number(rerun):
        return Claim(name, committed, None if rerun is MISSING else rerun, "estimate", False)
    if isinstance(ci, list) and len(ci) == 2 and all(_number(c) for c in ci):
        lo, hi = ci
        return Claim(name, committed, rerun, f"in CI [{lo:.4g}, {hi:.4g}]", lo <= rerun <= hi)
    holds = abs(rerun - committed) <= ABSOLUTE_TOLERANCE
    return Claim(name, committed, rerun, f"within {ABSOLUTE_TOLERANCE}", holds)


def _walk(node: Any, rerun_root: Any, path: tuple) -> Iterator[Claim]:
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        here = (*path, key)
        name = ".".join(map(str, here))
        if isinstance(value, dict):
            yield from _walk(value, rerun_root, here)
            continue
        if key in CATEGORICAL or key.endswith("_verdict"):
            rerun = _at(rerun_root, here)
            rerun = None if rerun is MISSING else rerun
            yield Claim(name, value, rerun, "equal", rerun == value)
        elif key == "mean" and "ci" in node and _number(value):
            yield _estimate(".".join(map(str, path)), value, node["ci"], _at(rerun_root, here))
        elif _number(value) and (ci := _ci_key(node, key)) is not None:
            yield _estimate(name, value, node[ci], _at(rerun_root, here))


def claims(committed: dict[str, Any], rerun: dict[str, Any]) -> list[Claim]:
    """Every claim of the committed numbers, checked against a re-run's."""
    out = []
    for source, numbers in committed.get("harvest", {}).items():
        path = ("harvest", source, "min_entropy")
        value, again = numbers.get("min_entropy"), _at(rerun, path)
        out.append(Claim(".".join(path), value, again, "exact", again == value))
    return out + list(_walk({k: v for k, v in committed.items() if k != "harvest"}, rerun, ()))


def table(found: list[Claim]) -> list[str]:
    """The claims as a text table, then 'N of M claims hold'."""

    def show(x: Any) -> str:
        return f"{x:.4g}" if isinstance(x, float) else str(x)

    lines = ["claim | committed | re-run | rule | holds"]
    lines += [
        f"{c.name} | {show(c.committed)} | {show(c.rerun)} | {c.rule} | {'yes' if c.holds else 'NO'}"
        for c in found
    ]
    lines.append(f"{sum(c.holds for c in found)} of {len(found)} claims hold")
    return lines
