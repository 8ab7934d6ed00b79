"""How the report writes a number: three significant digits, percentages, CIs, tables."""

from __future__ import annotations

from typing import Any


def fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, bool | str):
        return str(x)
    if isinstance(x, int):
        return f"{x:,}"
    return f"{x:.{digits}g}"


def ci(pair: list | None) -> str:
    return "" if not pair else f"[{fmt(pair[0])}, {fmt(pair[1])}]"


def mean_ci(mean: Any, interval: list | None, n: int) -> str:
    """A mean with its CI; without one (too few records, or no variation) it says its n."""
    if mean is None:
        return "–"
    if interval is None:
        return f"{fmt(mean)} (n = {n}, no CI)" if n else fmt(mean)
    return f"{fmt(mean)} {ci(interval)}"


def pct(x: Any) -> str:
    return "–" if x is None else f"{fmt(100 * x)}%"


def pct_ci(x: Any, interval: list | None) -> str:
    """A rate and its CI, both in percent; no interval where there is none."""
    if not interval:
        return pct(x)
    return f"{pct(x)} [{fmt(100 * interval[0])}, {fmt(100 * interval[1])}]"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"
