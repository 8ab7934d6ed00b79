"""The report's figures, drawn from the report's numbers (and, for the sampled-frequency and
probability plots, the evaluation records). Each is saved as PNG and SVG with no timestamps,
so two runs write the same bytes; `save_all` writes exactly the figures the templates link."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from entropy_lab.report.findings import label
from entropy_lab.report.format import fmt, pct
from entropy_lab.report.numbers import by_run, sft_curves

VERDICT_COLOURS = {  # the secondary (exploratory) tests' verdicts
    "difference": "tab:red",
    "trivial difference": "tab:orange",
    "equivalent": "tab:green",
    "inconclusive": "tab:gray",
    "no variation": "tab:olive",
    "n = 1": "tab:purple",
}
CLAIM_COLOURS = {  # an endpoint's part in its primary claim
    "equivalent (TOST)": "tab:green",
    "not shown equivalent": "tab:gray",
    "differs (Holm)": "tab:red",
    "differs, within the margin": "tab:orange",
    "no variation: no test": "tab:olive",
}
MARKERS = "o^sv"  # one per run (model/length)
SPLIT_ORDER = ("validation", "test_template", "test_family")
SAMPLE_PANELS = 6  # validation prompts shown in the sampled-frequency figure
SAMPLE_MAX_ANSWERS = 12  # the most answers a prompt shown there may have


def _pyplot():
    """pyplot on the Agg backend, with a fixed SVG hash salt (reproducible files)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "entropy-lab", "font.size": 8})
    return plt


def save(fig, directory: Path, name: str) -> list[str]:
    """`name`.png and `name`.svg under `directory`; returns their file names."""
    directory.mkdir(parents=True, exist_ok=True)
    fig.savefig(directory / f"{name}.png", dpi=120, bbox_inches="tight")
    fig.savefig(directory / f"{name}.svg", bbox_inches="tight", metadata={"Date": None})
    _pyplot().close(fig)
    return [f"{name}.png", f"{name}.svg"]


def _value(x: Any) -> float:
    """A number from the report's JSON, NaN for null."""
    return np.nan if x is None else float(x)


def _footnote(fig, text: str) -> None:
    """A note under the figure's axes, wrapped to its width (bbox_inches="tight" keeps it)."""
    import textwrap

    width = int(fig.get_figwidth() * 20)
    lines = [textwrap.fill(part, width) for part in text.split("\n")]
    fig.text(0.01, 0, "\n".join(lines), ha="left", va="top", fontsize=6.5)


def _splits(blocks: dict[str, Any]) -> list[str]:
    """A variant's splits in the report's order (JSON sorts them)."""
    known = [s for s in SPLIT_ORDER if s in blocks]
    return known + sorted(s for s in blocks if s not in SPLIT_ORDER)


def _estimates(ax, numbers: dict[str, Any]) -> None:
    """SP 800-90B estimates per source and estimator (dashed: the assessed min-entropy)."""
    estimators = sorted(
        {e for n in numbers.values() for part in ("estimators", "estimators_bitstring_per_byte")
         for e in n[part]}
    )  # fmt: skip
    for i, (name, n) in enumerate(numbers.items()):
        for part, marker, kind in (
            ("estimators", "o", "samples"),
            ("estimators_bitstring_per_byte", "s", "bit string x 8"),
        ):
            est = n[part]
            ax.scatter(list(est.values()), [estimators.index(e) for e in est], color=f"C{i}",
                       marker=marker, facecolors="none" if marker == "s" else f"C{i}",
                       label=f"{name}: {kind}")  # fmt: skip
        ax.axvline(n["min_entropy"], color=f"C{i}", linewidth=0.8, linestyle="--")
    ax.set_yticks(range(len(estimators)), [e.replace("_", " ") for e in estimators])
    ax.set_ylim(len(estimators) - 0.5, -0.5)
    ax.set_xlabel("bits per 8-bit sample (dashed: assessed min-entropy)")
    ax.set_title("SP 800-90B non-IID estimates")
    ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, frameon=False)


def _uniformity(ax, numbers: dict[str, Any]) -> None:
    """SP 800-22 uniformity p-values per source and test (dashed: the 1e-4 threshold)."""
    tests = sorted({t for n in numbers.values() for t in n["sts_uniformity_p"]})
    for i, (name, n) in enumerate(numbers.items()):
        p = n["sts_uniformity_p"]
        ax.scatter(list(p.values()), [tests.index(t) for t in p], label=name, marker=MARKERS[i % 4])
    ax.set_yticks(range(len(tests)), tests)
    ax.set_ylim(len(tests) - 0.5, -0.5)
    ax.axvline(1e-4, color="tab:red", linestyle="--", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("uniformity p of per-sequence p-values (fail below 1e-4)")
    ax.set_title("SP 800-22 on the conditioned pool")
    ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=4, frameon=False)


def harvest(numbers: dict[str, Any]):
    """SP 800-90B estimates per source (on the samples, and on the bit string x 8), and SP 800-22
    uniformity p-values per test."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), gridspec_kw={"wspace": 0.6})
    _estimates(left, numbers)
    _uniformity(right, numbers)
    return fig


def _run_offsets(n: int) -> np.ndarray:
    """Vertical offsets of `n` runs around an endpoint's row."""
    return (np.arange(n) - (n - 1) / 2) * (0.7 / max(n, 2))


def endpoint_status(claim: dict[str, Any], name: str) -> str:
    """An endpoint's part in its primary claim, as the claim's lists state it."""
    if name in claim["no_variation"]:
        return "no variation: no test"
    if name in claim["differ"]:
        shown = name not in claim["not_shown_equivalent"]
        return "differs, within the margin" if shown else "differs (Holm)"
    return "not shown equivalent" if name in claim["not_shown_equivalent"] else "equivalent (TOST)"


def _claim_rows(ax, claim: dict[str, Any], endpoints: list[str], dy: float, marker: str) -> None:
    """One claim's endpoints on a forest panel: d (marker), its 95% CI (thin line) and 90% TOST
    interval (thick line), all in within-prompt SDs; an endpoint with no variation an x."""
    for y, name in enumerate(endpoints):
        e = claim["endpoints"].get(name)
        if e is None:
            continue
        status = endpoint_status(claim, name)
        colour, sd = CLAIM_COLOURS[status], e["sd_within"]
        if status == "no variation: no test" or not sd or e["d"] is None:
            _no_test(ax, 0, y + dy, colour, "no variation")
            continue
        ci95 = [_value(e["ci_low"]) / sd, _value(e["ci_high"]) / sd]
        tost = [_value(e["tost_low"]) / sd, _value(e["tost_high"]) / sd]
        ax.plot(ci95, [y + dy] * 2, color=colour, linewidth=0.8)
        ax.plot(tost, [y + dy] * 2, color=colour, linewidth=3.5, alpha=0.45, solid_capstyle="butt")
        ax.plot(e["d"], y + dy, marker, color=colour, markersize=4, markeredgecolor="k",
                markeredgewidth=0.4)  # fmt: skip


def _no_test(ax, x: float, y: float, colour: str, text: str) -> None:
    """An x where an endpoint has no test, and why."""
    ax.plot(x, y, "x", color=colour, markersize=5)
    ax.annotate(text, (x, y), xytext=(5, 0), textcoords="offset points", fontsize=5.5,
                va="center", color=colour)  # fmt: skip


def _forest_legend(fig, colours: dict[str, str], title: str, runs: list[str], extra: list):
    """Under the panels: the colours (left), and the runs' markers and `extra` handles (right)."""
    plt = _pyplot()
    status = [plt.Line2D([], [], color=c, linewidth=3, label=v) for v, c in colours.items()]
    marks = [
        plt.Line2D([], [], color="k", marker=MARKERS[k % 4], linestyle="", label=run)
        for k, run in enumerate(runs)
    ]
    for handles, name, loc, x in (
        (status, title, "upper right", 0.48),
        (marks + extra, "marks", "upper left", 0.52),
    ):
        fig.legend(handles=handles, title=name, loc=loc, bbox_to_anchor=(x, 0), ncol=2,
                   fontsize=6.5, title_fontsize=7, frameon=False)  # fmt: skip


def _forest_axes(plt, panels: int, rows: list[str], width: float, row_height: float):
    """A forest's panels side by side, one x-scale and one y-scale, `rows` top to bottom."""
    fig, axes = plt.subplots(
        1, panels, figsize=(width * panels + 1, row_height * len(rows) + 1.4),
        sharex=True, sharey=True, squeeze=False,
    )  # fmt: skip
    axes[0][0].set_yticks(np.arange(len(rows)), rows)
    axes[0][0].set_ylim(len(rows) - 0.5, -0.5)
    return fig, list(axes[0])


def _forest_frame(ax, margin: float, title: str, xlabel: str) -> None:
    """A forest panel's margin (shaded), zero line, title and x-label."""
    ax.axvspan(-margin, margin, color="tab:green", alpha=0.1, linewidth=0)
    ax.axvline(0, color="k", linewidth=0.5)
    ax.set_title(title, fontsize=7)
    ax.set_xlabel(xlabel)
    ax.margins(x=0.08)


def declared_first(primary: dict[str, Any], declared: list[str]) -> list[str]:
    """The claims' endpoints, the declared ones first in their declared order."""
    found = dict.fromkeys(m for x in primary.values() for m in x["endpoints"])
    return [m for m in declared if m in found] + [m for m in found if m not in declared]


def primary_forest(primary: dict[str, Any], spec: dict[str, Any]):
    """The primary claim: per comparison (a panel) and run (a marker), each endpoint's
    within-prompt difference d with its 95% CI and 90% TOST interval against the ±margin
    (shaded); the colours and the panel titles are the claim's own verdicts. One x-scale;
    `spec` is the profile's primary declaration (margin, endpoints in their order)."""
    plt = _pyplot()
    from matplotlib.patches import Patch

    by_comparison, margin = by_run(primary), spec["margin_sd"]
    runs = list(dict.fromkeys(r for claims in by_comparison.values() for r in claims))
    endpoints = declared_first(primary, spec["endpoints"])
    fig, axes = _forest_axes(plt, len(by_comparison), endpoints, 3.6, 0.3 * max(2, len(runs)))
    offsets = _run_offsets(len(runs))
    for ax, (comparison, claims) in zip(axes, by_comparison.items(), strict=True):
        for k, run in enumerate(runs):
            if run in claims:
                _claim_rows(ax, claims[run], endpoints, offsets[k], MARKERS[k % 4])
        verdicts = "\n".join(f"{run}: {x['verdict']}" for run, x in claims.items())
        _forest_frame(ax, margin, f"{label(comparison)}\n{verdicts}",
                      "d: difference in within-prompt SDs")  # fmt: skip
    extra = [
        plt.Line2D([], [], color="k", linewidth=0.8, label="95% CI (difference)"),
        plt.Line2D([], [], color="k", linewidth=3.5, alpha=0.45, label="90% CI (TOST)"),
        Patch(color="tab:green", alpha=0.1, label=f"±{fmt(margin)} SD"),
    ]
    _forest_legend(fig, CLAIM_COLOURS, "endpoint in the claim", runs, extra)
    return fig


def _test_rows(ax, tests: dict[str, Any], metrics: list[str], dy: float, marker: str) -> None:
    """One run's secondary tests on a forest panel: pooled-SD d and its BCa CI, coloured by
    verdict; a test with no d (no variation, n = 1) an x."""
    for y, m in enumerate(metrics):
        t = tests.get(m)
        if t is None:
            continue
        colour = VERDICT_COLOURS[t["verdict"]]
        if t["d"] is None:
            _no_test(ax, 0, y + dy, colour, t["verdict"])
            continue
        if None not in t["d_ci"]:
            ax.plot(t["d_ci"], [y + dy] * 2, color=colour, linewidth=1)
        ax.plot(t["d"], y + dy, marker, color=colour, markersize=3)


def forest(tests: dict[str, dict[str, Any]], margin: float):
    """Exploratory: every metric's Cohen's d on the pooled SD with its BCa CI, coloured by the
    secondary analysis's verdict, one panel per main comparison (the A/A pairs are in
    `aa_pvalues`), one x-scale. A point without a bar has no CI (an arm is constant)."""
    plt = _pyplot()
    from matplotlib.patches import Patch

    by_comparison = {c: r for c, r in by_run(tests).items() if not c.startswith("aa")}
    runs = list(dict.fromkeys(r for by_r in by_comparison.values() for r in by_r))
    metrics = list(dict.fromkeys(m for by_r in by_comparison.values() for v in by_r.values()
                                 for m in v))  # fmt: skip
    fig, axes = _forest_axes(plt, len(by_comparison), metrics, 2.6, 0.24)
    offsets = _run_offsets(len(runs))
    for ax, (comparison, by_r) in zip(axes, by_comparison.items(), strict=True):
        for run, values in by_r.items():
            k = runs.index(run)
            _test_rows(ax, values, metrics, offsets[k], MARKERS[k % 4])
        _forest_frame(ax, margin, comparison.replace("_vs_", "\nvs "), "Cohen's d (pooled SD)")
    fig.suptitle("Exploratory: secondary tests, pooled-SD d (not the primary claim's d)", y=1.0,
                 va="bottom")  # fmt: skip
    margin_patch = Patch(color="tab:green", alpha=0.1, label=f"±{fmt(margin)} pooled SD")
    _forest_legend(fig, VERDICT_COLOURS, "secondary verdict", runs, [margin_patch])
    return fig


def aa_summary(p_values: list[float]) -> dict[str, Any]:
    """The A/A p-values against uniform: their count, mean (0.5 if uniform), how many equal 1
    (a permutation p of 1: the arms' means are equal) and whether they sit above uniform (their
    mean more than 2 SE above 0.5, the SE of the mean of as many independent uniforms)."""
    p = np.asarray(p_values, float)
    if not len(p):
        return {"n": 0, "mean": None, "ones": 0, "ones_share": None, "conservative": False}
    ones, mean = int((p == 1).sum()), float(p.mean())
    return {"n": len(p), "mean": mean, "ones": ones, "ones_share": ones / len(p),
            "conservative": bool(mean > 0.5 + 2 * np.sqrt(1 / 12 / len(p)))}  # fmt: skip


def _aa_note(ab: dict[str, Any], alpha: float) -> str:
    """What the per-metric A/A p-values show; where they sit above uniform, why (conservative
    tests) and what that costs in power."""
    s = aa_summary(ab["aa"]["per_metric"].get("p_values", []))
    said = (
        f"Per-metric A/A p-values: {s['n']}, mean {fmt(s['mean'])} (uniform: 0.5), {s['ones']} "
        f"({pct(s['ones_share'])}) equal to 1; {pct(ab['aa']['per_metric'].get('rate'))} reject "
        f"at alpha = {fmt(alpha)}."
    )
    if not s["conservative"]:
        return said + " Their mean is within 2 SE of a uniform's."
    return said + (
        "\nConservative: the metrics are discrete with many ties, so a permutation p-value is 1 "
        "whenever the arms' means are equal, as when an endpoint takes few values. Such a test "
        "rejects less often than alpha under the null and has "
        "less power than a continuous one: the MDE, computed at the effective alpha as for a "
        "continuous test, is optimistic for these metrics."
    )


def aa_pvalues(ab: dict[str, Any], alpha: float = 0.05):
    """The A/A pairs' uncorrected p-values against the uniform distribution they would follow
    for a continuous statistic, with alpha marked and a note on why they sit above it."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    for key, kind, marker in (
        ("per_metric", "per-metric", "o"),
        ("distribution", "distribution", "^"),
    ):
        p = ab["aa"][key].get("p_values", [])
        if p:
            expected = (np.arange(1, len(p) + 1) - 0.5) / len(p)
            ax.plot(expected, p, marker, markersize=2.5, linestyle="", label=f"{kind} ({len(p)})")
    ax.plot([0, 1], [0, 1], color="k", linewidth=0.5, label="uniform")
    ax.axhline(alpha, color="tab:red", linewidth=0.6, linestyle="--", label=f"alpha = {fmt(alpha)}")
    ax.set_xlabel("expected p (uniform quantiles)")
    ax.set_ylabel("observed p, A/A pairs (uncorrected)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_aspect("equal")
    ax.legend(fontsize=6, loc="upper left")
    fig.tight_layout()
    _footnote(fig, _aa_note(ab, alpha))
    return fig


def _stacked(plt, bars: list[int], width: float = 6.4):
    """One full-width panel per split, stacked, each as tall as its bars; x shared."""
    heights = [max(b, 6) for b in bars]
    fig, axes = plt.subplots(
        len(heights), 1, figsize=(width, 0.085 * sum(heights) + 0.45 * len(heights) + 0.4),
        sharex=True, squeeze=False, gridspec_kw={"height_ratios": heights},
    )  # fmt: skip
    return fig, list(axes[:, 0])


def _bar_y(rows: int, j: int, variants: int) -> np.ndarray:
    """The centres of variant `j`'s bars in a grouped bar chart of `rows` groups."""
    width = 0.8 / variants
    return np.arange(rows) - 0.4 + (j + 0.5) * width


def _bars(ax, rows: list[str], variants: list[str], cell, values: bool = False) -> None:
    """Grouped horizontal bars, one group per row and one bar per variant; `cell(variant, row)`
    gives (mean, [low, high] or None): a whisker where there is a CI; `values`: each bar's
    value written beside it (so that a zero shows)."""
    for j, v in enumerate(variants):
        cells = [cell(v, r) for r in rows]
        mean = np.array([_value(m) for m, _ in cells])
        ci = np.array([c if c else [np.nan, np.nan] for _, c in cells], float).T.reshape(2, -1)
        y = _bar_y(len(rows), j, len(variants))
        ax.barh(y, mean, 0.8 / len(variants), color=f"C{j}", label=v)
        ax.errorbar(mean, y, xerr=[mean - ci[0], ci[1] - mean], fmt="none", ecolor="k",
                    elinewidth=0.6, capsize=1.5)  # fmt: skip
        for m, hi, yi in zip(mean, ci[1], y, strict=True) if values else ():
            if np.isfinite(m):
                ax.text(np.fmax(m, hi) + 0.01, yi, fmt(float(m), 2), fontsize=5, va="center")
    ax.set_yticks(np.arange(len(rows)), rows)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(0, 1)


def _legend_above(fig, ax, extra: list | None = None) -> None:
    """The variants' legend (and `extra` handles) above the top panel, outside the data."""
    handles = ax.get_legend_handles_labels()[0] + (extra or [])
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0),
               ncol=min(len(handles), 5), fontsize=6.5, frameon=False)  # fmt: skip


def no_exact_tvd(summary: dict[str, Any]) -> list[str]:
    """The families with no exact TVD on any split (no enumerable support)."""
    return sorted(
        {f for blocks in summary.values() for b in blocks.values()
         for f, c in b["families"].items() if c["tvd"] is None}
    )  # fmt: skip


def teaching_tvd(summary: dict[str, Any]):
    """Mean exact full-space TVD per family with its bootstrap CI, one panel per split, one bar
    per variant; a footnote names the families with no exact TVD (no enumerable support)."""
    plt = _pyplot()
    variants = list(summary)
    splits = _splits(summary[variants[0]])
    rows = {
        s: [f for f, c in summary[variants[0]][s]["families"].items() if c["tvd"] is not None]
        for s in splits
    }
    fig, axes = _stacked(plt, [len(rows[s]) * len(variants) for s in splits])
    for ax, split in zip(axes, splits, strict=True):
        fam = {v: summary[v][split]["families"] for v in variants}
        _bars(ax, rows[split], variants, lambda v, f, c=fam: (c[v][f]["tvd"], c[v][f]["tvd_ci"]))
        ax.set_title(split, fontsize=7, loc="left")
    axes[-1].set_xlabel("exact full-space TVD (teacher-forced; every invalid output one outcome)")
    _legend_above(fig, axes[0])
    fig.tight_layout()
    missing = no_exact_tvd(summary)
    note = "Whiskers: bootstrap 95% CI (none: too few prompts for a CI)."
    if missing:
        note += (f"\nNo exact TVD, so not shown: {', '.join(missing)} (no enumerable support: "
                 "the exact view cannot sum over it).")  # fmt: skip
    _footnote(fig, note)
    return fig


def sample_panel_records(records) -> list[str]:
    """The first validation prompt of each family, in the order of the split, where that prompt
    has at most SAMPLE_MAX_ANSWERS answers: the first SAMPLE_PANELS of them, by record id."""
    d = records[(records.split == "validation") & (records.variant == records.variant.iloc[0])]
    first = d.drop_duplicates("family")
    shown = first[first.support.map(len).between(1, SAMPLE_MAX_ANSWERS)]
    return shown.id.iloc[:SAMPLE_PANELS].tolist()


def at_temperature_one(records):
    """The headline rows: the temperature sweep repeats the validation records at other T."""
    return records[records.temperature == 1.0]


def _sample_panel(ax, r, ticks: bool) -> None:
    """One prompt's sampled frequencies (bars; the last, red: invalid) and target (black);
    `ticks`: the answers under it."""
    counts = np.asarray(r["counts"], float)
    n = r["samples"]
    freq = np.r_[counts / n, 1 - counts.sum() / n]
    target = np.r_[np.asarray(r["target"], float), 0.0]
    x = np.arange(len(freq))
    ax.bar(x, freq, color=["tab:blue"] * len(counts) + ["tab:red"])
    ax.scatter(x, target, color="k", marker="_", s=120, zorder=3)
    names = [*r["support"], "invalid"] if ticks else [""] * len(x)
    ax.set_xticks(x, names, rotation=60, fontsize=5.5, ha="right", rotation_mode="anchor")
    ax.set_ylim(0, 1.05)


def teaching_samples(records):
    """Sampled answer frequencies against the target for the prompts `sample_panel_records`
    picks: one row per variant, one column per prompt; the last bar is the invalid share."""
    plt = _pyplot()
    records = at_temperature_one(records)
    variants = list(dict.fromkeys(records.variant))
    ids = sample_panel_records(records)
    fig, axes = plt.subplots(
        len(variants), max(1, len(ids)), figsize=(2.3 * max(1, len(ids)), 1.5 * len(variants) + 0.8),
        squeeze=False, sharey=True,
    )  # fmt: skip
    for row, v in enumerate(variants):
        d = records[records.variant == v].set_index("id")
        for col, rid in enumerate(ids):
            _sample_panel(axes[row][col], d.loc[rid], row == len(variants) - 1)
            if row == 0:
                axes[row][col].set_title(f"{d.loc[rid, 'family']} ({rid})", fontsize=6.5)
        axes[row][0].set_ylabel(f"{v}\nshare of {records.samples.max()} answers", fontsize=7)
    fig.tight_layout()
    return fig


def teaching_probs(records):
    """Target vs model probability of every valid answer (the model's unnormalised probability:
    what sampling gives), one panel per variant."""
    plt = _pyplot()
    records = at_temperature_one(records)
    variants = list(dict.fromkeys(records.variant))
    fig, axes = plt.subplots(
        1, len(variants), figsize=(2.8 * len(variants) + 0.4, 3), sharey=True, squeeze=False
    )
    exact = records[records.model.map(len) > 0]
    for ax, v in zip(axes[0], variants, strict=True):
        d = exact[exact.variant == v]
        for split in _splits(set(d.split)):
            g = d[d.split == split]
            p = np.concatenate(g.target.to_list())
            q = np.concatenate(
                [np.asarray(m) * w for m, w in zip(g.model, g.support_mass, strict=True)]
            )
            ax.scatter(p, q, s=3, alpha=0.5, label=split, rasterized=True)
        ax.plot([0, 1], [0, 1], color="k", linewidth=0.5)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ax.set_title(v)
        ax.set_xlabel("target probability")
    axes[0][0].set_ylabel("model probability (exact, full space)")
    axes[0][0].legend(fontsize=6, markerscale=3, loc="upper left")
    fig.tight_layout()
    return fig


def swept(sweep: dict[str, dict[str, Any]]) -> bool:
    """Whether a variant was swept over more than one temperature (an untaught model's sweep
    is T = 1 alone: no figure)."""
    return max(map(len, sweep.values()), default=0) > 1


def teaching_temperature(sweep: dict[str, dict[str, Any]]):
    """Exact full-space TVD, sampled validity and GOF pass rate, each with its 95% CI, against
    sampling temperature, one line per variant."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.1), squeeze=False)
    keys = (
        ("tvd", "tvd_ci", "exact full-space TVD"),
        ("valid_rate", "valid_rate_ci", "valid share (sampled)"),
        ("gof_pass_rate", "gof_pass_ci", "GOF pass rate (full space)"),
    )
    for ax, (key, ci_key, name) in zip(axes[0], keys, strict=True):
        for j, (v, by_t) in enumerate(sweep.items()):
            temps = sorted(by_t, key=float)
            x = np.array([float(t) for t in temps])
            y = np.array([_value(by_t[t][key]) for t in temps])
            ci = np.array([by_t[t][ci_key] or [np.nan, np.nan] for t in temps], float).T
            ax.plot(x, y, marker="o", markersize=3, color=f"C{j}", label=v)
            ax.fill_between(x, ci[0], ci[1], color=f"C{j}", alpha=0.12, linewidth=0)
        ax.axvline(1.0, color="k", linewidth=0.5, linestyle=":")
        ax.set_xlabel("sampling temperature")
        ax.set_ylabel(name)
        ax.set_ylim(-0.02, 1.02)
    _legend_above(fig, axes[0][0])
    fig.tight_layout()
    _footnote(fig, "Bands: 95% CIs (bootstrap for TVD, Clopper-Pearson for rates); dotted: T = 1.")
    return fig


def teaching_seeded(seeded: dict[str, dict[str, Any]]):
    """Accuracy of the u -> answer mapping with its 95% CI, over the split and per family, one
    panel per split and one bar per variant, against the mode baseline the verdict rests on
    (the accuracy of always giving the target's most probable answer)."""
    plt = _pyplot()
    variants = list(seeded)
    splits = _splits(seeded[variants[0]])
    rows = {s: ["all families", *seeded[variants[0]][s]["families"]] for s in splits}
    fig, axes = _stacked(plt, [len(rows[s]) * len(variants) for s in splits])
    for ax, split in zip(axes, splits, strict=True):
        blocks = {v: {"all families": seeded[v][split]} | seeded[v][split]["families"]
                  for v in variants}  # fmt: skip
        _bars(ax, rows[split], variants,
              lambda v, r, b=blocks: (b[v][r]["accuracy"], b[v][r]["accuracy_ci"]), values=True)  # fmt: skip
        for j, v in enumerate(variants):
            mode = [_value(blocks[v][r]["mode_accuracy"]) for r in rows[split]]
            y = _bar_y(len(rows[split]), j, len(variants))
            ax.scatter(mode, y, marker="|", s=40, color="k", linewidths=1.5, zorder=3)
        ax.set_title(split, fontsize=7, loc="left")
    axes[-1].set_xlabel("accuracy (answer = inverse CDF at u)")
    baseline = plt.Line2D([], [], color="k", marker="|", linestyle="", markersize=9,
                          markeredgewidth=1.5, label="mode baseline")  # fmt: skip
    _legend_above(fig, axes[0], [baseline])
    fig.tight_layout()
    _footnote(fig, "Whiskers: bootstrap 95% CI (none: too few prompts for a CI). Mode baseline: "
                   "always the target's most probable answer, on the same u's.")  # fmt: skip
    return fig


def _size_lines(axes, teaching: dict[str, Any], sizes: dict[str, int], models: list[str]) -> None:
    """Per variant (a colour) and split (a line style): exact TVD with its CI, and GOF pass rate,
    over the models that have the variant and split."""
    variants = list(dict.fromkeys(v for m in models for v in teaching[m]["variants"]))
    for j, v in enumerate(variants):
        for split, style in (("validation", "-"), ("test_family", "--")):
            have = [m for m in models if split in teaching[m]["variants"].get(v, {})]
            if not have:
                continue
            blocks = [teaching[m]["variants"][v][split] for m in have]
            x = np.array([sizes[m] for m in have], float)
            tvd = np.array([_value(b["tvd"]) for b in blocks])
            ci = np.array([b["tvd_ci"] or [np.nan, np.nan] for b in blocks], float).T
            axes[0].errorbar(x, tvd, yerr=[tvd - ci[0], ci[1] - tvd], linestyle=style, marker="o",
                             color=f"C{j}", capsize=2, label=f"{v} / {split}")  # fmt: skip
            gof = [_value(b["gof_pass_rate"]) for b in blocks]
            axes[1].plot(x, gof, linestyle=style, marker="o", color=f"C{j}")


def teaching_size(teaching: dict[str, Any], sizes: dict[str, int]):
    """Exact full-space TVD (95% CI) and GOF pass rate against parameter count, per variant, on
    validation and held-out families; a model evaluated untaught has base alone and no GOF."""
    plt = _pyplot()
    models = sorted((m for m in teaching if m in sizes), key=sizes.get)
    fig, axes = plt.subplots(1, 2, figsize=(8, 3), sharex=True, squeeze=False)
    _size_lines(axes[0], teaching, sizes, models)
    names = ("exact full-space TVD", "GOF pass rate (full space)")
    for ax, name in zip(axes[0], names, strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("parameters")
        ax.set_ylabel(name)
        ax.set_ylim(-0.02, 1.02)
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="center left",
               bbox_to_anchor=(1.0, 0.5), fontsize=6, frameon=False)  # fmt: skip
    fig.tight_layout()
    no_gof = [m for m in models if all(b.get("gof_pass_rate") is None
                                       for b in teaching[m]["variants"]["base"].values())]  # fmt: skip
    if no_gof:
        _footnote(fig, f"No GOF for {', '.join(no_gof)}: evaluated untaught, no samples.")
    return fig


def teaching_curve(curves: dict[str, list[dict[str, Any]]]):
    """Support mass per validation family against the SFT step, one panel per variant, with the
    mean on validation and on train records."""
    plt = _pyplot()
    fig, axes = plt.subplots(
        1, len(curves), figsize=(3.2 * len(curves), 2.8), sharey=True, squeeze=False
    )
    families = sorted({f for c in curves.values() for p in c for f in p["families"]})
    for ax, (variant, curve) in zip(axes[0], curves.items(), strict=True):
        steps = [p["step"] for p in curve]
        for i, f in enumerate(families):
            ax.plot(steps, [p["families"].get(f, np.nan) for p in curve], marker=".",
                    color=f"C{i % 10}", linestyle="-" if i < 10 else "-.", label=f)  # fmt: skip
        ax.plot(steps, [p["val_support_mass"] for p in curve], "k--", label="mean, validation")
        ax.plot(steps, [p["train_support_mass"] for p in curve], "k:", label="mean, train records")
        ax.set_title(variant)
        ax.set_xlabel("SFT step")
        ax.set_ylim(0, 1)
    axes[0][0].set_ylabel("support mass")
    axes[0][-1].legend(fontsize=6, loc="upper left", bbox_to_anchor=(1, 1))
    fig.tight_layout()
    return fig


def size_models(numbers: dict[str, Any]) -> list[str]:
    """The models the size figure compares: those with teaching numbers and a parameter count
    (the report's model-size section links the figure for two or more)."""
    return [m for m in numbers["teaching"] if m in numbers["sizes"]]


def save_teaching(numbers: dict[str, Any], model: str, records, directory: Path) -> None:
    """One model's figures, exactly those teaching.md.j2 links: no sampled frequencies for a
    model evaluated untaught, no temperature figure without a sweep."""
    summary = numbers["teaching"][model]
    save(teaching_tvd(summary["variants"]), directory, f"teaching_tvd_{model}")
    if model not in numbers["profile"]["teaching"]["untaught"]:
        save(teaching_samples(records), directory, f"teaching_samples_{model}")
    save(teaching_probs(records), directory, f"teaching_probs_{model}")
    if model in numbers["training"] and (curves := sft_curves(numbers, model)):
        save(teaching_curve(curves), directory, f"teaching_curve_{model}")
    if swept(summary["temperature"]):
        fig = teaching_temperature(summary["temperature"])
        save(fig, directory, f"teaching_temperature_{model}")
    if summary["seeded"]:
        save(teaching_seeded(summary["seeded"]), directory, f"teaching_seeded_{model}")


def save_all(numbers: dict[str, Any], records: dict[str, Any], directory: Path) -> None:
    """Every figure the report links, into `directory`; `records` are each model's evaluation
    records (the sampled-frequency and probability panels)."""
    ab_profile = numbers["profile"]["ab"]
    save(harvest(numbers["harvest"]), directory, "harvest")
    save(primary_forest(numbers["ab"]["primary"], ab_profile["primary"]), directory, "ab_forest")
    save(forest(numbers["ab"]["tests"], ab_profile["equivalence_margin_sd"]), directory,
         "ab_forest_exploratory")  # fmt: skip
    save(aa_pvalues(numbers["ab"], ab_profile["alpha"]), directory, "ab_aa_pvalues")
    for model in numbers["teaching"]:
        save_teaching(numbers, model, records[model], directory)
    if len(size_models(numbers)) > 1:
        save(teaching_size(numbers["teaching"], numbers["sizes"]), directory, "teaching_size")
