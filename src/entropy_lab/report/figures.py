"""The report's figures, drawn from the report's numbers (and, for the probability plot, the
evaluation records). Each is saved as PNG and SVG with no timestamps, so two runs write the
same bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from entropy_lab.report.numbers import by_run

VERDICT_COLOURS = {
    "difference": "tab:red",
    "trivial difference": "tab:orange",
    "equivalent": "tab:green",
    "inconclusive": "tab:gray",
    "no variation": "tab:olive",
    "n = 1": "tab:purple",
}


def _pyplot():
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


def harvest(numbers: dict[str, Any]):
    """SP 800-90B estimates per source, and SP 800-22 uniformity p-values per test."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4), gridspec_kw={"wspace": 0.5})
    names = list(numbers)
    estimators = sorted({e for n in numbers.values() for e in n["estimators"]})
    width = 0.8 / (len(estimators) + 1)
    for j, est in enumerate([*estimators, "h_bitstring_per_byte"]):
        values = [
            numbers[n]["estimators"].get(est, np.nan) if est in estimators else numbers[n][est]
            for n in names
        ]
        left.bar(np.arange(len(names)) + j * width, values, width, label=est.replace("_", " "))
    for i, n in enumerate(names):
        left.hlines(numbers[n]["min_entropy"], i - width / 2, i + 0.8, colors="k")
    left.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names)
    left.set_ylabel("bits per 8-bit sample")
    left.set_title("SP 800-90B estimates (black: assessed min-entropy)")
    left.legend(fontsize=6)
    for i, n in enumerate(names):
        p = numbers[n]["sts_uniformity_p"]
        right.scatter(list(p.values()), list(p), label=n, marker="o^sv"[i % 4])
    right.axvline(1e-4, color="tab:red", linestyle="--", linewidth=0.8)
    right.set_xscale("log")
    right.set_xlabel("uniformity p of per-sequence p-values (fail below 1e-4)")
    right.set_title("SP 800-22 on the conditioned pool")
    right.legend(fontsize=6)
    return fig


def forest(tests: dict[str, dict[str, Any]], margin: float):
    """Cohen's d with its bootstrap CI for every metric, one panel per main comparison (the
    A/A pairs are in `aa_pvalues`). A point without a bar has no CI (an arm is constant)."""
    plt = _pyplot()
    by_comparison = {c: r for c, r in by_run(tests).items() if not c.startswith("aa")}
    comparisons = list(by_comparison)
    runs_seen = list(dict.fromkeys(r for runs in by_comparison.values() for r in runs))
    metrics = list(
        dict.fromkeys(m for runs in by_comparison.values() for v in runs.values() for m in v)
    )
    fig, axes = plt.subplots(
        1,
        len(comparisons),
        figsize=(2.6 * len(comparisons), 0.22 * len(metrics) + 1.2),
        sharey=True,
        squeeze=False,
    )
    for ax, comparison in zip(axes[0], comparisons, strict=True):
        runs = by_comparison[comparison]
        for run, values in runs.items():
            k = runs_seen.index(run)
            y = np.arange(len(metrics)) + (k - (len(runs_seen) - 1) / 2) * 0.25
            for yi, m in zip(y, metrics, strict=True):
                t = values.get(m)
                if t is None or t["d"] is None:
                    continue
                colour = VERDICT_COLOURS[t["verdict"]]
                if None not in t["d_ci"]:
                    ax.plot(t["d_ci"], [yi, yi], color=colour, linewidth=1)
                ax.plot(t["d"], yi, "o^sv"[k % 4], color=colour, markersize=3)
        ax.axvspan(-margin, margin, color="tab:green", alpha=0.08)
        ax.axvline(0, color="k", linewidth=0.5)
        ax.set_title(comparison.replace("_vs_", "\nvs "), fontsize=7)
        ax.set_xlabel("Cohen's d")
    axes[0][0].set_yticks(np.arange(len(metrics)), metrics)
    axes[0][0].invert_yaxis()
    handles = [
        plt.Line2D([], [], color=c, marker="o", linewidth=1, label=v)
        for v, c in VERDICT_COLOURS.items()
    ] + [
        plt.Line2D([], [], color="k", marker="o^sv"[k % 4], linestyle="", label=run)
        for k, run in enumerate(runs_seen)
    ]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=7, frameon=False)
    fig.subplots_adjust(bottom=0.22)
    return fig


def aa_pvalues(ab: dict[str, Any]):
    """The A/A pairs' uncorrected p-values against the uniform distribution they should
    follow: points below the diagonal at small p are false positives beyond alpha."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(3.6, 3.4))
    for key, label, marker in (("tests", "per-metric", "o"), ("distribution", "distribution", "^")):
        p = sorted(
            t["p"]
            for name, metrics in ab[key].items()
            if name.rsplit("/", 1)[1].startswith("aa")
            for t in metrics.values()
            if t["p"] is not None
        )
        if p:
            expected = (np.arange(1, len(p) + 1) - 0.5) / len(p)
            ax.plot(expected, p, marker, markersize=2.5, linestyle="", label=f"{label} ({len(p)})")
    ax.plot([0, 1], [0, 1], color="k", linewidth=0.5)
    ax.set_xlabel("expected p (uniform quantiles)")
    ax.set_ylabel("observed p, A/A pairs")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=6)
    return fig


def teaching_tvd(summary: dict[str, Any]):
    """Mean exact TVD per family with its bootstrap CI: base model and each adapter."""
    plt = _pyplot()
    variants = list(summary)
    splits = list(summary[variants[0]])
    fig, axes = plt.subplots(1, len(splits), figsize=(3.2 * len(splits), 3.4), squeeze=False)
    width = 0.8 / len(variants)
    for ax, split in zip(axes[0], splits, strict=True):
        families = list(summary[variants[0]][split]["families"])
        for j, v in enumerate(variants):
            fam = summary[v][split]["families"]
            mean = np.array([fam[f]["tvd"] for f in families])
            ci = np.array([fam[f]["tvd_ci"] for f in families]).T
            ax.barh(
                np.arange(len(families)) + j * width,
                mean,
                width,
                xerr=[mean - ci[0], ci[1] - mean],
                label=v,
                error_kw={"linewidth": 0.6},
            )
        ax.set_yticks(np.arange(len(families)) + 0.4 - width / 2, families)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("TVD(target, model), exact")
        ax.set_title(split)
    axes[0][0].legend(fontsize=6)
    return fig


def teaching_probs(records):
    """Target vs model probability of every support element, one panel per variant."""
    plt = _pyplot()
    variants = list(dict.fromkeys(records.variant))
    fig, axes = plt.subplots(
        1, len(variants), figsize=(3 * len(variants), 3), sharey=True, squeeze=False
    )
    for ax, v in zip(axes[0], variants, strict=True):
        d = records[records.variant == v]
        for split, g in d.groupby("split", sort=True):
            p = np.concatenate(g.target.to_list())
            q = np.concatenate(g.model.to_list())
            ax.scatter(p, q, s=3, alpha=0.5, label=split, rasterized=True)
        ax.plot([0, 1], [0, 1], color="k", linewidth=0.5)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(v)
        ax.set_xlabel("target probability")
    axes[0][0].set_ylabel("model probability (exact, over the support)")
    axes[0][0].legend(fontsize=6, markerscale=3)
    return fig
