"""`reports/report.md`, rendered from the report's numbers and provenance alone (so `verify`
can render it again and compare it with the file)."""

from __future__ import annotations

from typing import Any

from entropy_lab.report.numbers import by_run, sft_curves
from entropy_lab.stats.inference import MIXED_STATUSES

VERDICT_LETTER = {
    "difference": "D",
    "trivial difference": "T",
    "equivalent": "E",
    "inconclusive": "I",
    "no variation": "–",
    "n = 1": "1",
}
AA_LICENSE = {
    "consistent with alpha": (
        "The analysis is not shown to declare differences between identical arms more often "
        "than alpha: at most {hi} of its per-metric tests would, by the interval's upper end. "
        "That licenses reading the main comparisons' *difference* verdicts as more than an "
        "artefact of the analysis, for this model, these lengths and arms of this size "
        "(prng_stream arms); it does not calibrate the smaller fixed42 and listed_seeds arms, "
        "and says nothing about power."
    ),
    "anti-conservative": (
        "The analysis declares differences between identical arms more often than alpha "
        "(the whole interval is above it): the main comparisons' *difference* verdicts cannot "
        "be taken at face value."
    ),
    "conservative": (
        "The tests reject identical arms less often than alpha: verdicts of *difference* stand, "
        "but the tests have less power than their nominal minimal detectable effects say."
    ),
    "no tests": "There are no A/A pairs (`ab.generate.aa_pairs: 0`): nothing calibrates the analysis.",
}


def fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, bool | str):
        return str(x)
    if isinstance(x, int):
        return f"{x:,}"
    return f"{x:.{digits}g}"


def ci(pair: list) -> str:
    return f"[{fmt(pair[0])}, {fmt(pair[1])}]"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(r) + " |" for r in rows),
        "",
    ]


def source_line(p: dict[str, Any]) -> list[str]:
    """Which stage, params and inputs a table or figure came from (12-digit prefixes; the
    full hashes are in reports/provenance.json)."""
    inputs = ", ".join(f"{k} `{v[:12]}`" for k, v in p["inputs"].items()) or "none"
    outs = ", ".join(f"{k} `{v[:12]}`" for k, v in p["outs_md5"].items())
    return [
        f"*Source:* stage `{p['stage']}` · manifest digest `{p['digest'][:12]}` · "
        f"params sha256 `{p['params_sha256'][:12]}` · inputs (sha256): {inputs} · "
        f"outputs (dvc.lock md5): {outs}.",
        "",
    ]


def figure(name: str, caption: str) -> list[str]:
    return [f"![{caption}](figures/{name}.png)", "", f"*{caption}* ([SVG](figures/{name}.svg))", ""]


def profile_section(n: dict[str, Any], prov: dict[str, Any]) -> list[str]:
    pr = n["profile"]
    ab, t = pr["ab"], pr["teaching"]
    lines = ["## Profile: what produced these numbers", ""]
    lines += table(["model", "source"], [[k, v] for k, v in pr["models"].items()])
    lines += [
        f"- Seeding study: models {', '.join(ab['models'])}; lengths "
        f"{', '.join(map(str, ab['lengths']))} tokens; {ab['prompts']} prompts; "
        f"{ab['replicates']} replicates per prompt and condition ({ab['listed_seeds']} for "
        f"listed_seeds, 1 for fixed42); conditions {', '.join(ab['conditions'])}; "
        f"{ab['aa_pairs']} A/A pairs of prng_stream arms; "
        f"alpha {fmt(ab['alpha'])}, {ab['correction']} correction, equivalence margin "
        f"±{fmt(ab['equivalence_margin_sd'])} SD.",
        f"- Teaching: models {', '.join(t['models'])}; base and adapters "
        f"{', '.join(t['variants'])}; {t['records_per_split']} records per split; "
        f"{t['samples_per_record']} sampled answers per record.",
        "",
    ]
    weights = ", ".join(
        f"{m} {f} `{h[:12]}`"
        for m, files in prov["profile"]["weights"].items()
        for f, h in files.items()
    )
    lines += [f"Model weights (sha256, `data/models/resolved.json`): {weights}.", ""]
    lines += source_line(prov["profile"])
    return lines


def limits_section(n: dict[str, Any]) -> list[str]:
    """What the profile can and cannot show, in numbers taken from the report itself."""
    built = [k for k, v in n["profile"]["models"].items() if v.startswith("built here")]
    tests = [m for t in n["ab"]["tests"].values() for m in t.values() if m["mde_d"] is not None]
    mde = sorted(m["mde_d"] for m in tests)
    lines = ["### What this profile can and cannot show", ""]
    if built:
        lines.append(
            f"- {', '.join(built)} is a small byte-level model trained by the `models` stage so "
            "that `dvc repro` runs offline on a CPU. It writes Bible-flavoured text, not answers. "
            "On it, the seeding study tests the machinery (sampler, pool ranges, metrics, "
            "analysis, A/A calibration) and the seed source's effect on this model only; it says "
            "nothing about pretrained instruction models. Point `models.profiles`, `ab.models` "
            "and `training.models` at local checkpoints to ask that question (README)."
        )
    if mde:
        lines.append(
            f"- Sensitivity: the minimal detectable effect at 80% power, at the alpha each "
            f"verdict used after correction, ranges from d = {fmt(mde[0])} to d = "
            f"{fmt(mde[-1])} across the tests (smaller arms, such as fixed42's one sample per "
            'prompt, have the larger values). A smaller effect can be missed; "equivalent" is '
            "claimed only where TOST bounds the difference within the margin."
        )
    for model, evaluated in n["teaching"].items():
        summary = evaluated["variants"]
        best = min(summary, key=lambda v: summary[v]["validation"]["tvd"] or 1)
        b, base = summary[best]["validation"], summary["base"]["validation"]
        lines.append(
            f"- Teaching on {model}: sampled, the base model gives a valid answer "
            f"{pct(base['valid_rate'])} of the time; the closest variant on validation, {best}, "
            f"{pct(b['valid_rate'])}, with a full-space TVD of {fmt(b['tvd'])} and "
            f"{pct(b['gof_pass_rate'])} of prompts passing the goodness-of-fit test"
            + paired_clause(evaluated, best)
            + ". A pass needs valid answers: where validity is low, a prompt's test has few "
            "answers and little power, so read the pass rate beside validity. The conditional "
            "figures (given a valid answer) describe the model only in the runs where it answers."
        )
        lengths = b["answer_length"]
        curve = n["training"][model].get(best)
        scored = [k for k in by_length(lengths) if lengths[k]["support_mass"] is not None]
        if len(scored) > 1 and curve:
            low = sorted(curve[-1]["families"].items(), key=lambda kv: kv[1])[:2]
            lines.append(
                f"- What limits {best}: its support mass on validation by expected answer length "
                "is "
                + ", ".join(f"{fmt(lengths[k]['support_mass'])} at {k} bytes" for k in scored)
                + "; at the end of training it is lowest for "
                + " and ".join(f"{f} ({fmt(m)})" for f, m in low)
                + f", and on as many train records of the same families, which it was taught, "
                f"it is {fmt(curve[-1]['train_support_mass'])} (validation "
                f"{fmt(curve[-1]['val_support_mass'])}): train records far above validation "
                "would mean it fits what it was shown and does not carry it over, both low that "
                "it has not fitted it (*what limits learning*, below)."
            )
    lines += [
        "- Harvest: the jitter source is measured on the machine that ran `harvest`; the "
        "SP 800-90B estimates are for those raw samples, and passing SP 800-22 is necessary, "
        "not sufficient, for a good source.",
        "",
    ]
    return lines


def harvest_section(n: dict[str, Any], prov: dict[str, Any]) -> list[str]:
    h = n["harvest"]
    lines = ["## 1. Entropy harvest", ""]
    rows = [
        [
            name,
            fmt(s["min_entropy"]),
            s["limiting_estimator"],
            fmt(s["h_original"]),
            fmt(s["h_bitstring_per_byte"]),
            str(s["raw_per_32_bytes"]),
            f"{s['sts_passed']}/{s['sts_tests']}",
            fmt(s["conditioned"]["chi_square_p"]),
            fmt(s["conditioned"]["serial_correlation"]),
            fmt(s["raw"]["shannon_bits_per_byte"]),
        ]
        for name, s in h.items()
    ]
    lines += table(
        [
            "source",
            "min-entropy (bits/byte)",
            "set by",
            "90B non-binary",
            "90B bitstring ×8",
            "raw bytes per 32",
            "SP 800-22 passed",
            "pool χ² p",
            "pool serial corr.",
            "raw Shannon",
        ],
        rows,
    )
    lines += figure("harvest", "SP 800-90B estimates and SP 800-22 uniformity per source")
    lines += source_line(prov["harvest"])
    return lines


def _is_aa(comparison: str) -> bool:
    return comparison.startswith("aa")


def _range(values: list) -> str:
    values = sorted(v for v in values if v is not None)
    if not values:
        return "–"
    return fmt(values[0]) if values[0] == values[-1] else f"{fmt(values[0])}–{fmt(values[-1])}"


def aa_lines(aa: dict[str, Any]) -> list[str]:
    """The A/A calibration: its false-positive rate and what it licenses."""
    lines = []
    for name, label in (("per_metric", "Per-metric tests"), ("distribution", "Distribution tests")):
        c = aa[name]
        if c["tests"] == 0:
            continue
        per = ", ".join(f"{k} {v}" for k, v in c["per_split"].items())
        lines.append(
            f"- {label}: {c['rejections']} of {c['tests']} reject at alpha before correction, "
            f"rate {fmt(c['rate'])} {ci([c['ci_low'], c['ci_high']])} (95%, Korn-Graubard, "
            f"clustered by split; design effect {fmt(c['design_effect'])}); per split: {per}; "
            f"after correction {c['differences_after_correction']}: **{c['status']}**."
        )
    c = aa["per_metric"]
    hi = fmt(c["ci_high"]) if c["tests"] else "–"
    return [*lines, "", AA_LICENSE[c["status"]].format(hi=hi), ""]


def ab_section(n: dict[str, Any], prov: dict[str, Any]) -> list[str]:
    ab = n["ab"]
    by = by_run(ab["tests"])
    main = {c: runs for c, runs in by.items() if not _is_aa(c)}
    aa_runs = {c: runs for c, runs in by.items() if _is_aa(c)}
    lines = ["## 2. Seeding A/B study", ""]
    verdicts = list(VERDICT_LETTER)
    rows = []
    groups = [(c.replace("_vs_", " vs "), [c]) for c in main]
    if aa_runs:
        groups.append((f"A/A pairs ({len(aa_runs)})", list(aa_runs)))
    for label, names in groups:
        tests = [m for c in names for metrics in by[c].values() for m in metrics.values()]
        counts = [sum(ab["verdicts"][c][v] for c in names) for v in verdicts]
        reachable = sum(t["equivalence_reachable"] for t in tests)
        rows.append(
            [
                label,
                _range([min(t["n"]) for t in tests]),
                _range([t["mde_d"] for t in tests]),
                *map(str, counts),
                f"{reachable} of {len(tests)}",
            ]
        )
    lines += table(["comparison", "n per arm", "MDE d", *verdicts, "equivalence reachable"], rows)
    tested = [
        t for runs in by.values() for m in runs.values() for t in m.values() if t["lmm_status"]
    ]
    statuses = {s: sum(t["lmm_status"] == s for t in tested) for s in MIXED_STATUSES}
    alphas = [t["alpha_eff"] for t in tested if t["alpha_eff"] is not None]
    lines += [
        "*Trivial difference*: different, and within the equivalence margin. The MDE (80% "
        "power) is at each test's effective alpha, the raw p-value at which the correction "
        f"would declare it given the family's other tests (here {_range(alphas)}). "
        "*Equivalence reachable*: a zero observed difference would pass TOST at this n and "
        "spread. No CI where an arm has one record or no variation. Mixed model (prompt as "
        "random intercept) fits: "
        + ", ".join(f"{v} {k}" for k, v in statuses.items())
        + " (boundary: prompt variance estimated at zero, the fit is OLS).",
        "",
        f"A/A calibration ({ab['aa']['pairs']} pairs of prng_stream arms under keys of their "
        "own; one independent split per pair, model and length):",
        "",
    ]
    lines += aa_lines(ab["aa"])
    lines += figure("ab_aa_pvalues", "A/A pairs: uncorrected p-values against uniform quantiles")
    if main:
        lines += [
            "Verdict per metric (D difference, T trivial difference, E equivalent, "
            "I inconclusive, – no variation, 1 n = 1), one letter per "
            + ", ".join(next(iter(main.values())))
            + ":",
            "",
        ]
        metrics = list(dict.fromkeys(m for runs in main.values() for t in runs.values() for m in t))
        rows = [
            [m]
            + [
                " ".join(VERDICT_LETTER[t[m]["verdict"]] if m in t else "·" for t in runs.values())
                for runs in main.values()
            ]
            for m in metrics
        ]
        lines += table(["metric", *(c.replace("_vs_", " vs ") for c in main)], rows)
    lines += figure(
        "ab_forest",
        "Cohen's d with BCa 95% CI per metric and comparison (shaded: equivalence margin; "
        "no bar: no CI)",
    )
    lines += distribution_lines(ab)
    lines += literature_lines(ab)
    lines += source_line(prov["ab"])
    return lines


def mean_ci(mean: Any, interval: list | None, n: int) -> str:
    """A mean with its CI; a one-record group says n = 1 instead of a zero-width interval."""
    if mean is None:
        return "–"
    if interval is None:
        return f"{fmt(mean)} (n = 1)" if n == 1 else fmt(mean)
    return f"{fmt(mean)} {ci(interval)}"


def pct(x: Any) -> str:
    return "–" if x is None else f"{fmt(100 * x)}%"


def pct_ci(x: Any, interval: list | None) -> str:
    """A rate and its CI, both in percent; no interval where there is none (n = 1)."""
    if not interval:
        return pct(x)
    return f"{pct(x)} [{fmt(100 * interval[0])}, {fmt(100 * interval[1])}]"


def family_cell(name: str, c: dict[str, Any]) -> str:
    """What one family's records show for one variant: full-space TVD where the support is
    enumerable, accuracy for `deterministic`, validity and pass rate for structured answers."""
    if name == "deterministic":
        return f"acc {pct(c.get('accuracy'))}"
    if c["tvd"] is None:
        return f"valid {pct(c['valid_rate'])}, pass {pct(c['gof_pass_rate'])}"
    return mean_ci(c["tvd"], c["tvd_ci"], c["exact_records"])


def verdict(interval: list | None) -> str:
    """What a paired difference's 95% CI says (negative: the variant is lower)."""
    if interval is None:
        return "no interval"
    if interval[1] < 0:
        return "lower"
    if interval[0] > 0:
        return "higher"
    return "no difference at 95%"


def estimate(d: dict[str, Any]) -> str:
    """A `{mean, ci, n}` estimate (evaluation's `mean_ci`) as text."""
    return mean_ci(d["mean"], d["ci"], d["n"])


def paired_clause(evaluated: dict[str, Any], variant: str) -> str:
    """`variant` against hard targets on the same validation prompts, as a clause."""
    d = (evaluated.get("paired") or {}).get("validation", {}).get(f"{variant} - ce_multisample")
    if d is None:
        return ""
    t = d["tvd"]
    return (
        f"; on the same prompts its TVD minus ce_multisample's is "
        f"{estimate(t)} ({verdict(t['ci'])})"
    )


def paired_lines(evaluated: dict[str, Any]) -> list[str]:
    """Each variant against base and against hard targets on the same prompts, and Baldelli
    et al.'s hard vs soft comparison read off the same differences."""
    pairs = evaluated.get("paired") or {}
    if not pairs:
        return []
    lines = [
        "Paired on the same prompts (variant minus reference, mean per-prompt difference with "
        "a bootstrap 95% CI; the prompts' difficulty cancels, so this is the comparison to "
        "read where the CIs above overlap):",
        "",
    ]
    lines += table(
        ["split", "variant - reference", "Δ TVD (full space)", "at 95%", "Δ valid share", "at 95%"],
        [
            [
                split,
                pair,
                estimate(d["tvd"]),
                verdict(d["tvd"]["ci"]),
                estimate(d["valid_rate"]),
                verdict(d["valid_rate"]["ci"]),
            ]
            for split, by_pair in pairs.items()
            for pair, d in by_pair.items()
        ],
    )
    soft = {s: p["soft_trie - ce_multisample"]["tvd"] for s, p in pairs.items()
            if "soft_trie - ce_multisample" in p}  # fmt: skip
    if soft:
        closer = [s for s, d in soft.items() if verdict(d["ci"]) == "lower"]
        farther = [s for s, d in soft.items() if verdict(d["ci"]) == "higher"]
        lines += [
            "Hard vs soft targets (soft_trie minus ce_multisample, full-space TVD): "
            + "; ".join(f"{s} {estimate(d)}" for s, d in soft.items())
            + f". Soft targets are closer at 95% on {len(closer)} of {len(soft)} splits"
            + (f" ({', '.join(closer)})" if closer else "")
            + f" and farther on {len(farther)}"
            + (f" ({', '.join(farther)})" if farther else "")
            + ".",
            "",
        ]
    return lines


def distribution_lines(ab: dict[str, Any]) -> list[str]:
    """The texts compared as wholes: energy distance per feature set, and MAUVE."""
    rows = []
    for comparison, runs in by_run(ab["distribution"]).items():
        if _is_aa(comparison):
            continue
        for run, d in runs.items():
            e, g = d["embedding"], d["ngram"]
            rows.append(
                [
                    comparison.replace("_vs_", " vs "),
                    run,
                    f"{fmt(e['p_adj'])} / {fmt(e['power'])}",
                    f"{fmt(g['p_adj'])} / {fmt(g['power'])}",
                    fmt(e["mauve"]),
                    f"{e['verdict']} / {g['verdict']}",
                ]
            )
    if not rows:
        return []
    return [
        "Texts compared as distributions: a stratified energy-distance permutation test on "
        "sentence embeddings and on word 1-2-gram profiles (corrected p / power against a shift "
        "of one margin along the texts' first principal axis), and MAUVE on the embeddings "
        "(1: indistinguishable; descriptive, no test).",
        "",
        *table(
            ["comparison", "run", "embeddings p / power", "n-grams p / power", "MAUVE", "verdict"],
            rows,
        ),
    ]


def literature_lines(ab: dict[str, Any]) -> list[str]:
    """Holtzman et al. 2020's Table 1 numbers per arm."""
    rows = [
        [
            run,
            arm,
            str(a["n"]),
            fmt(a["repetition_pct"]),
            fmt(a["self_bleu4"]),
            fmt(a["zipf"]),
            fmt(a["mean_tokens"]),
        ]
        for run, arms in ab["arms"].items()
        for arm, a in arms.items()
        if not _is_aa(arm)
    ]
    if not rows:
        return []
    return [
        "Per arm, as Holtzman et al. 2020 (Table 1) report them, on the model's token ids: "
        "repetition % (texts ending in a phrase repeated back to back), Self-BLEU4 (each text "
        "against the rest of its arm, nltk, smoothing method 1), Zipf coefficient. One number "
        "per arm, so no CI; both pool the arm's texts and depend on its size, so compare arms "
        "of equal n. Repetition is also tested per sample above.",
        "",
        *table(["run", "arm", "n", "repetition %", "Self-BLEU4", "Zipf", "mean tokens"], rows),
    ]


def teaching_section(n: dict[str, Any], prov: dict[str, Any]) -> list[str]:
    lines = ["## 3. Teaching randomness", ""]
    alpha = n["profile"]["teaching"]["alpha"]
    samples = n["profile"]["teaching"]["samples_per_record"]
    for model, evaluated in n["teaching"].items():
        summary = evaluated["variants"]
        variants = list(summary)
        splits = list(summary[variants[0]])
        lines += [
            f"### {model}",
            "",
            f"What a user gets by sampling the model ({samples} answers per prompt, temperature "
            "1). *TVD* is over the full output space: every output that is not exactly a valid "
            "answer followed by end-of-text is one *invalid* outcome. *GOF pass*: the share of "
            f"prompts whose valid answers are not rejected against the target at alpha = "
            f"{fmt(alpha)} (KS for numeric answers, chi-square or its Monte Carlo version "
            "otherwise, per-position marginals for passwords, UUIDs and lottery lines); a prompt "
            "with no valid answer does not pass. For comparison, frontier LLMs pass for a median "
            f"{fmt(100 * n['profile']['teaching']['zhao_2026_median_pass_rate'])}% of "
            "distributions at N = 1000 (Zhao et al. 2026, *LLMs Are Bad Dice Players*). Splits: "
            "validation (seen families and templates), test_template (held-out templates), "
            "test_family (held-out families). Brackets: bootstrap 95% CIs (Clopper-Pearson for "
            "pass rates).",
            "",
        ]
        lines += table(
            ["variant", "split", "TVD (full space)", "valid sampled", "GOF pass rate", "prompts"],
            [
                [
                    v,
                    s,
                    mean_ci(b["tvd"], b["tvd_ci"], b["exact_records"]),
                    pct_ci(b["valid_rate"], b["valid_rate_ci"]),
                    pct_ci(b["gof_pass_rate"], b["gof_pass_ci"]),
                    str(b["records"]),
                ]
                for v in variants
                for s in splits
                for b in [summary[v][s]]
            ],
        )
        lines += paired_lines(evaluated)
        lines += [
            "Diagnostics, conditional on a valid answer (the model renormalised over the "
            "support; a figure that holds only when the model answers validly, which the "
            "support mass says how often it does):",
            "",
        ]
        lines += table(
            [
                "variant / split",
                "support mass",
                "TVD given valid",
                "KL full (nats)",
                "KL given valid",
                "entropy ratio",
                "parsed",
                "agreement rejects",
            ],
            [
                [
                    f"{v} / {s}",
                    fmt(b["support_mass"]),
                    fmt(b["tvd_conditional"]),
                    fmt(b["kl"]),
                    fmt(b["kl_conditional"]),
                    fmt(b["entropy_ratio"]),
                    pct(b["parsed_rate"]),
                    fmt(b["agreement_reject_rate"]),
                ]
                for v in variants
                for s in splits
                for b in [summary[v][s]]
            ],
        )
        rows = []
        for s in splits:
            for f in summary[variants[0]][s]["families"]:
                cells = [summary[v][s]["families"][f] for v in variants]
                rows.append([f"{s} / {f}", *(family_cell(f, c) for c in cells)])
        lines += [
            "Per family: full-space TVD [95% CI]; `deterministic` (one right answer): accuracy; "
            "password, UUID and lottery: valid share and GOF pass rate.",
            "",
        ]
        lines += table(["split / family", *variants], rows)
        lines += figure(f"teaching_tvd_{model}", f"{model}: full-space TVD per family, 95% CI")
        lines += figure(
            f"teaching_samples_{model}",
            f"{model}: sampled answer frequencies (bars) against the target (black), with the "
            "invalid share, for a few validation prompts",
        )
        lines += figure(
            f"teaching_probs_{model}",
            f"{model}: target vs model probability of every valid answer (full space)",
        )
        lines += learning_lines(model, n, prov)
        lines += temperature_lines(model, evaluated)
        lines += seeded_lines(model, evaluated)
        lines += transfer_lines(model, evaluated)
        lines += source_line(prov[f"teaching/{model}"])
    lines += size_lines(n)
    return lines


def cell(b: dict[str, Any], key: str) -> str:
    return mean_ci(b[key], b[f"{key}_ci"], b["records"] if key != "tvd" else b["exact_records"])


def seeded_lines(model: str, evaluated: dict[str, Any]) -> list[str]:
    """The entropy-driven mode: u from the pool in the prompt, greedy answers."""
    seeded = evaluated["seeded"]
    if not seeded:
        return []
    splits = list(next(iter(seeded.values())))
    lines = [
        f"#### {model}: a model driven by external entropy",
        "",
        "Each prompt carries a uniform u drawn from the entropy pool (`tasks.seeded`; its ranges "
        "are in the tasks stage's ledger) and asks for the answer at u under the target's "
        "inverse CDF; answers by greedy decoding, so the only randomness is the pool's. "
        "Accuracy: answers equal to the inverse CDF at u; *mode baseline*: the accuracy of "
        "ignoring u and always giving the target's most probable answer, on the same u's (a "
        "mapping that beats it uses u); GOF pass: the share of prompts whose answers over their "
        "u's fit the target.",
        "",
    ]
    lines += table(
        ["variant", "split", "accuracy", "mode baseline", "valid", "GOF pass rate", "prompts"],
        [
            [v, s, cell(b, "accuracy"), fmt(b["mode_accuracy"]), pct(b["valid_rate"]),
             pct_ci(b["gof_pass_rate"], b["gof_pass_ci"]), str(b["records"])]
            for v in seeded for s in splits for b in [seeded[v][s]]
        ],
    )  # fmt: skip
    lines += [uses_u_sentence(seeded), ""]
    rows = []
    for s in splits:
        for f in seeded[next(iter(seeded))][s]["families"]:
            rows.append(
                [f"{s} / {f}", *(pct(seeded[v][s]["families"][f]["accuracy"]) for v in seeded)]
            )
    lines += ["Accuracy of the mapping per family:", ""]
    lines += table(["split / family", *seeded], rows)
    lines += figure(
        f"teaching_seeded_{model}", f"{model}: accuracy of the u -> answer mapping per family"
    )
    return lines


def uses_u_sentence(seeded: dict[str, Any]) -> str:
    """Does a taught variant's mapping use u? Its accuracy CI against the mode baseline."""
    said = []
    for v, by_split in seeded.items():
        if v == "base":
            continue
        for s, b in by_split.items():
            lo, hi = b["accuracy_ci"] or (b["accuracy"], b["accuracy"])
            if hi < b["mode_accuracy"]:
                verdict = "below the mode baseline: it does not use u"
            elif lo > b["mode_accuracy"]:
                verdict = "above the mode baseline: it uses u"
            else:
                verdict = "not distinguishable from the mode baseline"
            said.append(f"{v} on {s}: {fmt(b['accuracy'])} vs {fmt(b['mode_accuracy'])}, {verdict}")
    return (
        "Does the mapping use u (accuracy CI against the mode baseline)? " + "; ".join(said) + "."
    )


def transfer_lines(model: str, evaluated: dict[str, Any]) -> list[str]:
    """Does it transfer? Seen, held-out templates and held-out families side by side, per mode."""
    summary, seeded = evaluated["variants"], evaluated["seeded"]
    splits = list(next(iter(summary.values())))
    rows = [
        ["sampling: full-space TVD", v, *(cell(summary[v][s], "tvd") for s in splits)]
        for v in summary
    ]
    rows += [
        ["sampling: GOF pass rate", v, *(pct(summary[v][s]["gof_pass_rate"]) for s in splits)]
        for v in summary
    ]
    rows += [
        ["pool u: accuracy", v, *(cell(seeded[v][s], "accuracy") for s in splits)] for v in seeded
    ]
    lines = [
        f"#### {model}: does it transfer?",
        "",
        "The same measures on seen families and templates (validation), held-out templates "
        "(test_template) and held-out families (test_family), with 95% CIs:",
        "",
    ]
    lines += table(["mode", "variant", *splits], rows)
    said = [transfer_verdict(v, summary) for v in summary if v != "base"]
    if said and "validation" in splits:
        lines += ["In words (full-space TVD, sampled): " + "; ".join(said) + ".", ""]
    return lines


def _disjoint_below(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """a's TVD CI lies wholly below b's (a is closer to the target, beyond sampling error)."""
    return bool(a["tvd_ci"] and b["tvd_ci"] and a["tvd_ci"][1] < b["tvd_ci"][0])


def transfer_verdict(variant: str, summary: dict[str, Any]) -> str:
    """Per held-out split: worse than on seen prompts or not, and better than base or not."""
    by_split, base = summary[variant], summary["base"]
    seen = by_split["validation"]
    parts = []
    for s in (s for s in by_split if s != "validation"):
        b = by_split[s]
        if b["tvd"] is None:
            continue
        than_seen = (
            "worse than seen" if _disjoint_below(seen, b) else "within sampling error of seen"
        )
        than_base = "better than base" if _disjoint_below(b, base[s]) else "not better than base"
        parts.append(f"{s} {fmt(b['tvd'])} ({than_seen}, {than_base})")
    return f"{variant}: seen {fmt(seen['tvd'])}, " + ", ".join(parts)


def size_lines(n: dict[str, Any]) -> list[str]:
    """Model size: one row per built model, when the profile trains more than one."""
    sizes = n["sizes"]
    taught = [m for m in n["teaching"] if m in sizes]
    if len(taught) < 2:
        return [
            "### Model size",
            "",
            f"This profile teaches one model size ({', '.join(taught) or 'none built'}). The sweep "
            "over the built sizes (kjv-tiny, kjv-small, kjv-base: about 10x in parameters) is "
            "`dvc exp run -S 'models.use=[kjv-tiny,kjv-small,kjv-base]' -S "
            "'models.build=[kjv-tiny,kjv-small,kjv-base]' -S "
            "'training.models=[kjv-tiny,kjv-small,kjv-base]'`; with it this section shows "
            "full-space TVD and GOF pass rate against parameter count.",
            "",
        ]
    variants = list(n["teaching"][taught[0]]["variants"])
    present = n["teaching"][taught[0]]["variants"][variants[0]]
    splits = [s for s in ("validation", "test_family") if s in present]
    rows = [
        [m, f"{sizes[m]:,}", v,
         *(f"{cell(n['teaching'][m]['variants'][v][s], 'tvd')} · "
           f"{pct(n['teaching'][m]['variants'][v][s]['gof_pass_rate'])}"
           for s in splits)]
        for m in taught for v in variants
    ]  # fmt: skip
    lines = ["### Model size", "", "Full-space TVD [95% CI] · GOF pass rate, per built model:", ""]
    lines += table(["model", "parameters", "variant", *splits], rows)
    lines += figure("teaching_size", "Full-space TVD and GOF pass rate against parameter count")
    return lines


def by_length(bins: dict[str, Any]) -> list[str]:
    """Answer-length bin labels ("1-2", "11-20", "41+") from the shortest up (JSON sorts them
    as strings)."""
    return sorted(bins, key=lambda label: int(label.split("-")[0].rstrip("+")))


def learning_lines(model: str, n: dict[str, Any], prov: dict[str, Any]) -> list[str]:
    """What limits learning: support mass per family along SFT (the train stages' curves), and
    mass and validity against answer length (the evaluation's validation records)."""
    summary = n["teaching"][model]["variants"]
    curves = sft_curves(n, model)
    if not curves:
        return []
    steps = [p["step"] for p in next(iter(curves.values()))]
    lines = [
        f"#### {model}: what limits learning",
        "",
        "Support mass (the probability of a valid answer followed by end-of-text) on the "
        "validation records each train stage scores exactly at every evaluation step, and on "
        "as many train records of the same families, which the loop draws its batches from: "
        "where both are low the model has not fitted the taught prompts, where only validation "
        "is low it fits them and does not carry that over. Per family at the last step "
        "(validation); recorded by the train stages (checked against `dvc.lock`).",
        "",
    ]
    lines += table(
        ["variant", "records", *(f"step {s}" for s in steps)],
        [
            [v, records, *(fmt(p[key]) for p in c)]
            for v, c in curves.items()
            for records, key in (
                ("validation", "val_support_mass"),
                ("train", "train_support_mass"),
            )
        ],
    )
    families = sorted({f for c in curves.values() for f in c[-1]["families"]})
    lines += table(
        ["family (last step)", *curves],
        [[f, *(fmt(c[-1]["families"].get(f)) for c in curves.values())] for f in families],
    )
    lines += figure(f"teaching_curve_{model}", f"{model}: support mass per family during SFT")
    bins = by_length(summary["base"]["validation"]["answer_length"])
    lines += [
        "Against the expected answer length (validation records with an enumerable support, "
        "temperature 1); cells: support mass · valid sampled (support mass – where no record "
        "of that length has a support small enough to score exactly):",
        "",
    ]
    lines += table(
        ["answer bytes", "records", *summary],
        [
            [
                b,
                str(summary["base"]["validation"]["answer_length"][b]["records"]),
                *(
                    f"{fmt(c['support_mass'])} · {pct(c['valid_rate'])}"
                    for v in summary
                    for c in [summary[v]["validation"]["answer_length"][b]]
                ),
            ]
            for b in bins
        ],
    )
    for v in curves:
        lines += source_line(prov[f"training/{model}/{v}"])
    return lines


def temperature_lines(model: str, evaluated: dict[str, Any]) -> list[str]:
    """Can sampling temperature make a model as random as the target? The sweep on validation."""
    sweep = evaluated["temperature"]
    if not sweep:
        return []
    temps = sorted({t for v in sweep.values() for t in v}, key=float)
    lines = [
        f"#### {model}: sampling temperature",
        "",
        "Validation prompts sampled at each temperature (the exact view rescales the logits the "
        "same way); cells: full-space TVD · valid sampled · GOF pass rate.",
        "",
    ]
    lines += table(
        ["variant", *(f"T = {t}" for t in temps)],
        [
            [v, *(" · ".join((fmt(b["tvd"]), pct(b["valid_rate"]), pct(b["gof_pass_rate"])))
                  for t in temps for b in [sweep[v][t]])]
            for v in sweep
        ],
    )  # fmt: skip
    said = []
    for v, by_t in sweep.items():
        best = min(by_t, key=lambda t: by_t[t]["tvd"] if by_t[t]["tvd"] is not None else 2)
        ratio = evaluated["variants"][v]["validation"]["entropy_ratio"]
        if not any(b["valid_rate"] for b in by_t.values()):
            said.append(f"{v}: no valid answer at any temperature")
            continue
        if ratio is None:
            continue
        kind = "more" if ratio > 1 else "less"
        calibrated = "calibrated" if float(best) == 1 else "not calibrated: best away from T = 1"
        said.append(
            f"{v}: closest to the target at T = {best} (TVD {fmt(by_t[best]['tvd'])}; "
            f"{calibrated}); at T = 1, given a valid answer, {kind} random than the target "
            f"(entropy ratio {fmt(ratio)})"
        )
    lines += ["Best temperature per variant: " + "; ".join(said) + ".", ""]
    lines += figure(
        f"teaching_temperature_{model}",
        f"{model}: full-space TVD, validity and GOF pass rate against sampling temperature",
    )
    return lines


def render(numbers: dict[str, Any], prov: dict[str, Any]) -> str:
    lines = [
        "# entropy-lab report",
        "",
        "Written by the `report` stage. Every number below is in `reports/metrics.json`; "
        "`make verify` recomputes each of them from the artefacts (`dvc pull`) and checks this "
        "file, the provenance and the artefacts' hashes against `dvc.lock`.",
        "",
    ]
    lines += profile_section(numbers, prov)
    lines += limits_section(numbers)
    lines += harvest_section(numbers, prov)
    lines += ab_section(numbers, prov)
    lines += teaching_section(numbers, prov)
    return "\n".join(lines).rstrip() + "\n"
