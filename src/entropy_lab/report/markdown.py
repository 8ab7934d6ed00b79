"""`reports/report.md`, rendered from the report's numbers and provenance alone (so `verify`
can render it again and compare it with the file)."""

from __future__ import annotations

from typing import Any

from entropy_lab.report.numbers import by_run

VERDICT_LETTER = {"difference": "D", "equivalent": "E", "inconclusive": "I", "no variation": "–"}


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
    lines += [f"Model weights (sha256, `models/resolved.json`): {weights}.", ""]
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
            f"- Sensitivity: the minimal detectable effect at 80% power ranges from d = "
            f"{fmt(mde[0])} to d = {fmt(mde[-1])} across the tests (smaller arms, such as "
            "fixed42's one sample per prompt, have the larger values). A smaller effect can be "
            'missed; "equivalent" is claimed only where TOST bounds the difference within the '
            "margin."
        )
    for model, summary in n["teaching"].items():
        base = summary["base"]["validation"]
        lines.append(
            f"- Teaching on {model}: the base model puts {fmt(base['support_mass'])} of its "
            f"probability on well-formed answers (mean over validation prompts), and "
            f"{fmt(100 * base['valid_rate'])}% of sampled answers are valid. Where that is "
            "small, the sampled-view tests (chi-square, G, KS) have almost no data and the "
            "exact view (teacher forcing over the support) carries the result."
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


def ab_section(n: dict[str, Any], prov: dict[str, Any]) -> list[str]:
    ab = n["ab"]
    by = by_run(ab["tests"])
    lines = ["## 2. Seeding A/B study", ""]
    rows = []
    for comparison, runs in by.items():
        tests = [m for metrics in runs.values() for m in metrics.values()]
        ns = sorted({min(t["n"]) for t in tests})
        mde = [t["mde_d"] for t in tests if t["mde_d"] is not None]
        v = ab["verdicts"][comparison]
        rows.append(
            [
                comparison.replace("_vs_", " vs "),
                fmt(ns[0]) if ns[0] == ns[-1] else f"{fmt(ns[0])}–{fmt(ns[-1])}",
                fmt(max(mde)) if mde else "–",
                *(str(v[k]) for k in ("difference", "equivalent", "inconclusive", "no variation")),
            ]
        )
    lines += table(
        [
            "comparison",
            "n per arm",
            "MDE d",
            "difference",
            "equivalent",
            "inconclusive",
            "no variation",
        ],
        rows,
    )
    obs, sim = ab["aa_observed"], ab["aa_simulation"]
    lines += [
        f"A/A control: {obs['rejections']} of {obs['tests']} tests reject at alpha before "
        f"correction ({obs['differences_after_correction']} after); re-splitting the PRNG arms, "
        f"{sim['rejections']} of {sim['tests']} simulated tests reject, rate {fmt(sim['rate'])} "
        f"{ci([sim['ci_low'], sim['ci_high']])}, which "
        f"{'contains' if sim['alpha_in_ci'] else 'does NOT contain'} alpha.",
        "",
        "Verdict per metric (D difference, E equivalent, I inconclusive, – no variation), "
        "one letter per " + ", ".join(next(iter(by.values()))) + ":",
        "",
    ]
    metrics = sorted({m for runs in by.values() for t in runs.values() for m in t})
    rows = [
        [m]
        + [
            " ".join(VERDICT_LETTER[t[m]["verdict"]] if m in t else "·" for t in runs.values())
            for runs in by.values()
        ]
        for m in metrics
    ]
    lines += table(["metric", *(c.replace("_vs_", " vs ") for c in by)], rows)
    lines += figure(
        "ab_forest",
        "Cohen's d with BCa 95% CI per metric and comparison (shaded: equivalence margin)",
    )
    lines += source_line(prov["ab"])
    return lines


def teaching_section(n: dict[str, Any], prov: dict[str, Any]) -> list[str]:
    lines = ["## 3. Teaching randomness", ""]
    for model, summary in n["teaching"].items():
        variants = list(summary)
        splits = list(summary[variants[0]])
        lines += [f"### {model}", "", "Mean exact TVD(target, model) [bootstrap 95% CI]:", ""]
        lines += table(
            ["variant", *splits],
            [
                [v, *(f"{fmt(summary[v][s]['tvd'])} {ci(summary[v][s]['tvd_ci'])}" for s in splits)]
                for v in variants
            ],
        )
        lines += table(
            [
                "variant / split",
                "KL (nats)",
                "entropy ratio",
                "support mass",
                "valid sampled",
                "agreement rejects",
            ],
            [
                [
                    f"{v} / {s}",
                    fmt(summary[v][s]["kl"]),
                    fmt(summary[v][s]["entropy_ratio"]),
                    fmt(summary[v][s]["support_mass"]),
                    fmt(summary[v][s]["valid_rate"]),
                    fmt(summary[v][s]["agreement_reject_rate"]),
                ]
                for v in variants
                for s in splits
            ],
        )
        rows = []
        for s in splits:
            for f in summary[variants[0]][s]["families"]:
                cells = [summary[v][s]["families"][f] for v in variants]
                rows.append([f"{s} / {f}", *(f"{fmt(c['tvd'])} {ci(c['tvd_ci'])}" for c in cells)])
        lines += ["TVD per family:", ""]
        lines += table(["split / family", *variants], rows)
        lines += figure(f"teaching_tvd_{model}", f"{model}: mean exact TVD per family, 95% CI")
        lines += figure(
            f"teaching_probs_{model}",
            f"{model}: target vs model probability of every support element",
        )
        lines += source_line(prov[f"teaching/{model}"])
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
