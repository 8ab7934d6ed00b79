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
    """SP 800-90B estimates per source (on the samples, and on the bit string x 8), and SP 800-22
    uniformity p-values per test."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), gridspec_kw={"wspace": 0.6})
    names = list(numbers)
    estimators = sorted(
        {e for n in numbers.values() for part in ("estimators", "estimators_bitstring_per_byte")
         for e in n[part]}
    )  # fmt: skip
    y = {e: i for i, e in enumerate(estimators)}
    for i, n in enumerate(names):
        colour = f"C{i}"
        for part, marker, label in (
            ("estimators", "o", "samples"),
            ("estimators_bitstring_per_byte", "s", "bit string x 8"),
        ):
            est = numbers[n][part]
            left.scatter([est[e] for e in est], [y[e] for e in est], color=colour, marker=marker,
                         facecolors="none" if marker == "s" else colour, label=f"{n}: {label}")  # fmt: skip
        left.axvline(numbers[n]["min_entropy"], color=colour, linewidth=0.8, linestyle="--")
    left.set_yticks(range(len(estimators)), [e.replace("_", " ") for e in estimators])
    left.set_xlabel("bits per 8-bit sample (dashed: assessed min-entropy)")
    left.set_title("SP 800-90B non-IID estimates")
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
    for key, label, marker in (
        ("per_metric", "per-metric", "o"),
        ("distribution", "distribution", "^"),
    ):
        p = ab["aa"][key].get("p_values", [])
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
    """Mean full-space TVD per family with its bootstrap CI: base model and each adapter
    (families whose support cannot be enumerated have no exact TVD and are left out)."""
    plt = _pyplot()
    variants = list(summary)
    splits = list(summary[variants[0]])
    fig, axes = plt.subplots(1, len(splits), figsize=(3.2 * len(splits), 3.4), squeeze=False)
    width = 0.8 / len(variants)
    for ax, split in zip(axes[0], splits, strict=True):
        by_family = summary[variants[0]][split]["families"]
        families = [f for f, c in by_family.items() if c["tvd"] is not None]
        for j, v in enumerate(variants):
            fam = summary[v][split]["families"]
            mean = np.array([fam[f]["tvd"] for f in families], dtype=float)
            ci = np.array([fam[f]["tvd_ci"] or [fam[f]["tvd"]] * 2 for f in families]).T
            ax.barh(
                np.arange(len(families)) + j * width,
                mean,
                width,
                xerr=[mean - ci[0], ci[1] - mean] if len(families) else None,
                label=v,
                error_kw={"linewidth": 0.6},
            )
        ax.set_yticks(np.arange(len(families)) + 0.4 - width / 2, families)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("TVD(target, model), full output space")
        ax.set_title(split)
    axes[0][0].legend(fontsize=6)
    return fig


SAMPLE_PANELS = 4  # validation prompts shown in the sampled-frequency figure


def sample_panel_records(records) -> list[str]:
    """A few validation prompts with small supports, of different families, by record id."""
    d = records[(records.split == "validation") & (records.variant == records.variant.iloc[0])]
    out, seen = [], set()
    for r in d.itertuples():
        if 2 <= len(r.support) <= 8 and r.family not in seen:
            out.append(r.id)
            seen.add(r.family)
        if len(out) == SAMPLE_PANELS:
            break
    return out


def at_temperature_one(records):
    """The headline rows: the temperature sweep repeats the validation records at other T."""
    return records[records.temperature == 1.0]


def teaching_samples(records):
    """Sampled answer frequencies against the target for a few validation prompts: one row per
    variant, one column per prompt; the last bar of each panel is the invalid share."""
    plt = _pyplot()
    records = at_temperature_one(records)
    variants = list(dict.fromkeys(records.variant))
    ids = sample_panel_records(records)
    fig, axes = plt.subplots(
        len(variants), max(1, len(ids)), figsize=(2.6 * max(1, len(ids)), 1.9 * len(variants)),
        squeeze=False, sharey=True,
    )  # fmt: skip
    for row, v in enumerate(variants):
        d = records[records.variant == v].set_index("id")
        for col, rid in enumerate(ids):
            r, ax = d.loc[rid], axes[row][col]
            counts = np.asarray(r["counts"], float)
            n = r["samples"]
            freq = np.r_[counts / n, 1 - counts.sum() / n]
            target = np.r_[np.asarray(r["target"], float), 0.0]
            x = np.arange(len(freq))
            ax.bar(x, freq, color=["tab:blue"] * len(counts) + ["tab:red"])
            ax.scatter(x, target, color="k", marker="_", s=120, zorder=3)
            ax.set_xticks(x, [*r["support"], "invalid"], rotation=60, fontsize=5, ha="right")
            ax.set_ylim(0, 1)
            if row == 0:
                ax.set_title(f"{r['family']}", fontsize=7)
        axes[row][0].set_ylabel(v, fontsize=7)
    fig.tight_layout()
    return fig


def teaching_probs(records):
    """Target vs model probability of every valid answer (the model's unnormalised probability:
    what sampling gives), one panel per variant."""
    plt = _pyplot()
    records = at_temperature_one(records)
    variants = list(dict.fromkeys(records.variant))
    fig, axes = plt.subplots(
        1, len(variants), figsize=(3 * len(variants), 3), sharey=True, squeeze=False
    )
    exact = records[records.model.map(len) > 0]
    for ax, v in zip(axes[0], variants, strict=True):
        d = exact[exact.variant == v]
        for split, g in d.groupby("split", sort=True):
            p = np.concatenate(g.target.to_list())
            q = np.concatenate(
                [np.asarray(m) * w for m, w in zip(g.model, g.support_mass, strict=True)]
            )
            ax.scatter(p, q, s=3, alpha=0.5, label=split, rasterized=True)
        ax.plot([0, 1], [0, 1], color="k", linewidth=0.5)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(v)
        ax.set_xlabel("target probability")
    axes[0][0].set_ylabel("model probability (exact, full space)")
    axes[0][0].legend(fontsize=6, markerscale=3)
    return fig


def teaching_temperature(sweep: dict[str, dict[str, Any]]):
    """Full-space TVD (with its CI), validity and GOF pass rate against sampling temperature,
    one line per variant."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(10, 3), squeeze=False)
    keys = (
        ("tvd", "TVD, full space"),
        ("valid_rate", "valid sampled"),
        ("gof_pass_rate", "GOF pass"),
    )
    for ax, (key, label) in zip(axes[0], keys, strict=True):
        for v, by_t in sweep.items():
            temps = sorted(by_t, key=float)
            x = np.array([float(t) for t in temps])
            y = np.array([by_t[t][key] if by_t[t][key] is not None else np.nan for t in temps])
            ax.plot(x, y, marker="o", label=v)
            if key == "tvd":
                ci = np.array([by_t[t]["tvd_ci"] or [np.nan, np.nan] for t in temps], float).T
                ax.fill_between(x, ci[0], ci[1], alpha=0.15)
        ax.axvline(1.0, color="k", linewidth=0.5, linestyle=":")
        ax.set_xlabel("sampling temperature")
        ax.set_ylabel(label)
        ax.set_ylim(0, 1)
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    return fig


def teaching_seeded(seeded: dict[str, dict[str, Any]]):
    """Accuracy of the u -> answer mapping per family, one panel per split, one bar per variant."""
    plt = _pyplot()
    variants = list(seeded)
    splits = list(seeded[variants[0]])
    fig, axes = plt.subplots(1, len(splits), figsize=(3.2 * len(splits), 3.2), squeeze=False)
    width = 0.8 / len(variants)
    for ax, split in zip(axes[0], splits, strict=True):
        families = list(seeded[variants[0]][split]["families"])
        for j, v in enumerate(variants):
            fam = seeded[v][split]["families"]
            acc = [
                fam[f]["accuracy"] if fam[f]["accuracy"] is not None else np.nan for f in families
            ]
            ax.barh(np.arange(len(families)) + j * width, acc, width, label=v)
        ax.set_yticks(np.arange(len(families)) + 0.4 - width / 2, families)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("accuracy (answer = inverse CDF at u)")
        ax.set_title(split)
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    return fig


def teaching_size(teaching: dict[str, Any], sizes: dict[str, int]):
    """Full-space TVD (95% CI) and GOF pass rate against parameter count, per variant, on
    validation and held-out families."""
    plt = _pyplot()
    models = sorted(sizes, key=sizes.get)
    variants = list(teaching[models[0]]["variants"])
    fig, axes = plt.subplots(1, 2, figsize=(8, 3), squeeze=False)
    x = np.array([sizes[m] for m in models], float)
    present = teaching[models[0]]["variants"][variants[0]]
    for v in variants:
        for split, style in (("validation", "-"), ("test_family", "--")):
            if split not in present:
                continue
            blocks = [teaching[m]["variants"][v][split] for m in models]
            tvd = np.array([b["tvd"] if b["tvd"] is not None else np.nan for b in blocks])
            ci = np.array([b["tvd_ci"] or [np.nan, np.nan] for b in blocks], float).T
            axes[0][0].errorbar(x, tvd, yerr=[tvd - ci[0], ci[1] - tvd], linestyle=style,
                                marker="o", capsize=2, label=f"{v} / {split}")  # fmt: skip
            axes[0][1].plot(x, [b["gof_pass_rate"] for b in blocks], linestyle=style, marker="o")
    for ax, label in zip(axes[0], ("TVD, full space", "GOF pass rate"), strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("parameters")
        ax.set_ylabel(label)
        ax.set_ylim(0, 1)
    axes[0][0].legend(fontsize=5)
    fig.tight_layout()
    return fig


def teaching_curve(curves: dict[str, list[dict[str, Any]]]):
    """Support mass per validation family against the SFT step, one panel per variant, with the
    mean on validation and on train records."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(curves), figsize=(3.2 * len(curves), 2.8), squeeze=False)
    families = sorted({f for c in curves.values() for p in c for f in p["families"]})
    for ax, (variant, curve) in zip(axes[0], curves.items(), strict=True):
        steps = [p["step"] for p in curve]
        for i, f in enumerate(families):
            ax.plot(steps, [p["families"].get(f, np.nan) for p in curve], marker=".",
                    color=f"C{i % 10}", label=f)  # fmt: skip
        ax.plot(steps, [p["val_support_mass"] for p in curve], "k--", label="mean, validation")
        ax.plot(steps, [p["train_support_mass"] for p in curve], "k:", label="mean, train records")
        ax.set_title(variant)
        ax.set_xlabel("SFT step")
        ax.set_ylim(0, 1)
    axes[0][0].set_ylabel("support mass")
    axes[0][-1].legend(fontsize=5, loc="upper left", bbox_to_anchor=(1, 1))
    fig.tight_layout()
    return fig


def save_all(numbers: dict[str, Any], records: dict[str, Any], directory: Path) -> None:
    """Every figure of the report into `directory`; `records` are each taught model's
    evaluation records (the sampled-frequency panels)."""
    from entropy_lab.report.numbers import sft_curves

    save(harvest(numbers["harvest"]), directory, "harvest")
    margin = numbers["profile"]["ab"]["equivalence_margin_sd"]
    save(forest(numbers["ab"]["tests"], margin), directory, "ab_forest")
    save(aa_pvalues(numbers["ab"]), directory, "ab_aa_pvalues")
    for model, summary in numbers["teaching"].items():
        save(teaching_tvd(summary["variants"]), directory, f"teaching_tvd_{model}")
        if summary["temperature"]:
            save(
                teaching_temperature(summary["temperature"]),
                directory,
                f"teaching_temperature_{model}",
            )
        if summary["seeded"]:
            save(teaching_seeded(summary["seeded"]), directory, f"teaching_seeded_{model}")
        if curves := sft_curves(numbers, model):
            save(teaching_curve(curves), directory, f"teaching_curve_{model}")
        save(teaching_samples(records[model]), directory, f"teaching_samples_{model}")
        save(teaching_probs(records[model]), directory, f"teaching_probs_{model}")
    if len(numbers["sizes"]) > 1:
        save(teaching_size(numbers["teaching"], numbers["sizes"]), directory, "teaching_size")
