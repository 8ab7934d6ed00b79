"""`reports/report.md`, rendered from the report's numbers and provenance alone (so `verify`
can render it again and compare it with the file).

`context` computes what each section shows (tables as rows of text, sentences from
report.findings); the prose around it lives in one Jinja2 template per section under
report/templates/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from entropy_lab.report import findings as f
from entropy_lab.report.format import ci, fmt, mean_ci, pct, pct_ci, table
from entropy_lab.report.numbers import by_run, sft_curves
from entropy_lab.stats.inference import MIXED_STATUSES

TEMPLATES = Path(__file__).parent / "templates"
VERDICT_LETTER = {
    "difference": "D",
    "trivial difference": "T",
    "equivalent": "E",
    "inconclusive": "I",
    "no variation": "–",
    "n = 1": "1",
}


def source(p: dict[str, Any]) -> str:
    """Which stage, params and inputs a table or figure came from (12-digit prefixes; the full
    hashes are in reports/provenance.json)."""
    inputs = ", ".join(f"{k} `{v[:12]}`" for k, v in p["inputs"].items()) or "none"
    outs = ", ".join(f"{k} `{v[:12]}`" for k, v in p["outs_md5"].items())
    return (
        f"*Source:* stage `{p['stage']}` · manifest digest `{p['digest'][:12]}` · "
        f"params sha256 `{p['params_sha256'][:12]}` · inputs (sha256): {inputs} · "
        f"outputs (dvc.lock md5): {outs}."
    )


def value_range(values: list) -> str:
    values = sorted(v for v in values if v is not None)
    if not values:
        return "–"
    return fmt(values[0]) if values[0] == values[-1] else f"{fmt(values[0])}–{fmt(values[-1])}"


def harvest(n: dict[str, Any]) -> dict[str, Any]:
    h = n["harvest"]
    header = ["source", "min-entropy (bits/byte)", "set by", "90B non-binary", "90B bitstring ×8",
              "raw bytes per 32", "SP 800-22 passed", "pool χ² p", "pool serial corr.",
              "raw Shannon"]  # fmt: skip
    rows = [
        [name, fmt(s["min_entropy"]), s["limiting_estimator"], fmt(s["h_original"]),
         fmt(s["h_bitstring_per_byte"]), str(s["raw_per_32_bytes"]),
         f"{s['sts_passed']}/{s['sts_tests']}", fmt(s["conditioned"]["chi_square_p"]),
         fmt(s["conditioned"]["serial_correlation"]), fmt(s["raw"]["shannon_bits_per_byte"])]
        for name, s in h.items()
    ]  # fmt: skip
    sentence = "; ".join(
        f"{name} {fmt(s['min_entropy'])} bits per raw byte (set by {s['limiting_estimator']}), "
        f"its pool segment passing {s['sts_passed']} of {s['sts_tests']} SP 800-22 tests"
        for name, s in h.items()
    )
    return {"table": table(header, rows), "sentence": sentence}


def claim_tables(result: dict[str, Any], margins: dict[str, str]) -> dict[str, str]:
    """A primary-style claim's tables: per comparison and run, per endpoint, and its plan."""
    rows, endpoint_rows, plan_rows = [], [], []
    for name, x in result.items():
        run, comparison = f.split_run(name)
        rows.append(
            [f.label(comparison), run, x["verdict"], fmt(x["p_iut"]),
             f"{x['informative']} of {len(x['endpoints'])}",
             f"{sum(e['reachable'] for e in x['endpoints'].values())} of {len(x['endpoints'])}",
             fmt(x["power"]), fmt(x["power_simulated"]), str(x["replicates"])]
        )  # fmt: skip
        for m, e in x["endpoints"].items():
            sd = e["sd_within"] or None
            flat = m in x["no_variation"]
            tost = (
                f"[{fmt(e['tost_low'] / sd)}, {fmt(e['tost_high'] / sd)}]"
                if sd and not flat
                else "–"
            )
            interaction = fmt(e["interaction_sd"] / sd) if sd and not flat else "–"
            defined = pct(e["defined_share"]) if e["defined_share"] is not None else "groups"
            endpoint_rows.append(
                [f.label(comparison), run, m, f"{e['n_treatment']} / {e['n_control']} ({defined})",
                 "no variation" if flat else f.d_ci(e), tost, "–" if flat else fmt(e["p_tost"]),
                 "–" if flat else fmt(x["p_diff_holm"].get(m)), margins.get(m, "–"), interaction]
            )  # fmt: skip
        for p in x["plan"]:
            plan_rows.append(
                [f.label(comparison), run, str(p["prompts"]), fmt(p["replicates"]),
                 fmt(p["samples_per_arm"]), fmt(p["power"]), fmt(p["power_simulated"])]
            )  # fmt: skip
    return {
        "table": table(["comparison", "run", "verdict", "p (IUT)", "endpoints that vary",
                        "equivalence reachable", "power (lower bound)", "power (simulated)",
                        "replicates per arm"], rows),
        "endpoints": table(["comparison", "run", "endpoint", "n (treatment / control; defined)",
                            "difference d [95% CI]", "90% CI (TOST)", "TOST p",
                            "difference p (Holm)", "margin (raw scale)", "prompt × arm SD"],
                           endpoint_rows),
        "plan": table(["comparison", "run", "prompts", "replicates per arm", "samples per arm",
                       "power (lower bound)", "power (simulated)"], plan_rows),
    }  # fmt: skip


def primary(n: dict[str, Any]) -> dict[str, Any]:
    """The primary claim as declared, each deviation beside it (labelled), and the
    confirmatory test where this run is its design."""
    ab_profile = n["profile"]["ab"]
    spec, result = ab_profile["primary"], n["ab"]["primary"]
    alpha = ab_profile["alpha"]
    margins = f.raw_margins(result)
    deviations = []
    for d in ab_profile["deviations"]:
        found = n["ab"]["deviations"][d["name"]]
        tables = claim_tables(found, f.raw_margins(found))
        deviations.append({
            "name": d["name"], "commit": d["commit"], "reason": d["reason"],
            "endpoint_names": d["endpoints"], "table": tables["table"],
            "answer": f.seeding_answer(found, spec, alpha), "power": f.power_sentence(found, spec),
        })  # fmt: skip
    conf = ab_profile["confirmatory"]
    confirmatory = None
    if conf is not None:
        confirmatory = {
            "spec": conf,
            "declared": f.declared_text(conf["declared"], "The confirmatory test"),
            "sentences": f.confirmatory_sentences(n["ab"].get("confirmatory", {}), conf),
        }
    return {
        "declared": f.declared_text(spec["declared"], "The primary claim"),
        "answer": f.seeding_answer(result, spec, alpha),
        "scope": f.scope_sentence(result, spec, ab_profile["models"]),
        "margins": ", ".join(f"{m} {v}" for m, v in margins.items()),
        "power": f.power_sentence(result, spec),
        "deviations": deviations,
        "confirmatory": confirmatory,
        "spec": spec,
        **claim_tables(result, margins),
    }


def secondary(n: dict[str, Any]) -> dict[str, Any]:
    """The exploratory tests: verdict counts, each metric's letters, distribution tests, arms."""
    ab = n["ab"]
    by = by_run(ab["tests"])
    verdicts = list(VERDICT_LETTER)
    rows = []
    for comparison, runs in by.items():
        tests = [m for metrics in runs.values() for m in metrics.values()]
        counts = [ab["verdicts"][comparison].get(v, 0) for v in verdicts]
        reachable = sum(t["equivalence_reachable"] for t in tests)
        rows.append([comparison.replace("_vs_", " vs "), value_range([min(t["n"]) for t in tests]),
                     value_range([t["mde_d"] for t in tests]), *map(str, counts),
                     f"{reachable} of {len(tests)}"])  # fmt: skip
    tested = [
        t for runs in by.values() for m in runs.values() for t in m.values() if t["lmm_status"]
    ]
    statuses = ", ".join(f"{sum(t['lmm_status'] == s for t in tested)} {s}" for s in MIXED_STATUSES)
    alphas = [t["alpha_eff"] for t in tested if t["alpha_eff"] is not None]
    metrics = list(dict.fromkeys(m for runs in by.values() for t in runs.values() for m in t))
    letters = [
        [m, *(" ".join(VERDICT_LETTER[t[m]["verdict"]] if m in t else "·" for t in runs.values())
              for runs in by.values())]
        for m in metrics
    ]  # fmt: skip
    dist_rows = [
        [comparison.replace("_vs_", " vs "), run, f"{fmt(d['embedding']['p_adj'])} / {fmt(d['embedding']['power'])}",
         f"{fmt(d['ngram']['p_adj'])} / {fmt(d['ngram']['power'])}", f"{fmt(d['embedding']['mauve'])} (null {fmt(d['embedding']['mauve_null_median'])}, p {fmt(d['embedding']['mauve_p'])})",
         f"{d['embedding']['verdict']} / {d['ngram']['verdict']}"]
        for comparison, runs in by_run(ab["distribution"]).items()
        for run, d in runs.items()
    ]  # fmt: skip
    arm_rows = [
        [run, arm, str(a["n"]), fmt(a["empty_pct"]), fmt(a["repetition_pct"]),
         f"{mean_ci(a['self_bleu4'], a['self_bleu4_ci'], a['self_bleu4_groups'])} "
         f"({a['self_bleu4_groups']} group{'s' * (a['self_bleu4_groups'] != 1)})", fmt(a["zipf"]), fmt(a["mean_tokens"])]
        for run, arms in ab["arms"].items()
        for arm, a in arms.items()
        if not arm.startswith("aa")
    ]  # fmt: skip
    aa_rows = [
        [label, f"{c['rejections']} of {c['tests']}", f"{fmt(c['rate'])} {ci([c['ci_low'], c['ci_high']])}",
         fmt(c["design_effect"]), c["status"]]
        for name, label in (("per_metric", "per-metric"), ("distribution", "distribution"))
        for c in [ab["aa"][name]]
        if c["tests"]
    ]  # fmt: skip
    runs_order = next(iter(by.values()), {})
    return {
        "counts": table(
            ["comparison", "n per arm", "MDE d", *verdicts, "equivalence reachable"], rows
        ),
        "statuses": statuses,
        "alphas": value_range(alphas),
        "letters_runs": ", ".join(runs_order),
        "letters": table(["metric", *(c.replace("_vs_", " vs ") for c in by)], letters),
        "distribution": table(
            [
                "comparison",
                "run",
                "embeddings p / power",
                "n-grams p / power",
                "MAUVE (within prompt; null median, p)",
                "verdict",
            ],
            dist_rows,
        )
        if dist_rows
        else "",
        "arms": table(
            [
                "run",
                "arm",
                "n",
                "empty %",
                "repetition %",
                "Self-BLEU4 [95% CI]",
                "Zipf",
                "mean tokens",
            ],
            arm_rows,
        )
        if arm_rows
        else "",
        "aa": table(
            [
                "A/A tests",
                "reject at alpha",
                "rate [95% CI]",
                "design effect",
                "status",
            ],
            aa_rows,
        )
        if aa_rows
        else "",
        "aa_sentences": f.aa_sentences(ab["aa"], ab["verdicts"]),
        "mde": value_range([t["mde_d"] for t in tested]),
    }


def family_cell(name: str, c: dict[str, Any]) -> str:
    """What one family's records show: full-space TVD where the support is enumerable,
    accuracy for `deterministic`, validity and pass rate for structured answers."""
    if name == "deterministic":
        return f"acc {pct(c.get('accuracy'))}"
    if c["tvd"] is None:
        return f"valid {pct(c['valid_rate'])}, pass {pct(c['gof_pass_rate'])}"
    return mean_ci(c["tvd"], c["tvd_ci"], c["exact_records"])


def by_length(bins: dict[str, Any]) -> list[str]:
    """Answer-length bin labels from the shortest up (JSON sorts them as strings)."""
    return sorted(bins, key=lambda b: int(b.split("-")[0].rstrip("+")))


def teaching_model(model: str, n: dict[str, Any], prov: dict[str, Any]) -> dict[str, Any]:
    """One taught model's tables and sentences."""
    evaluated = n["teaching"][model]
    summary, seeded, sweep = evaluated["variants"], evaluated["seeded"], evaluated["temperature"]
    variants = list(summary)
    splits = list(summary[variants[0]])
    main = [
        [v, s, f"{b['records']} ({b['exact_records']})", mean_ci(b["tvd"], b["tvd_ci"], b["exact_records"]),
         mean_ci(b["tvd_median"], b["tvd_median_ci"], b["exact_records"]),
         pct_ci(b["close_rate"], b["close_ci"]),
         mean_ci(b["kl"], b["kl_ci"], b["exact_records"]), pct(b["kl_infinite_share"]),
         mean_ci(b["tvd_sampled"], b["tvd_sampled_ci"], b["exact_records"]),
         pct_ci(b["valid_rate"], b["valid_rate_ci"]), pct_ci(b["gof_pass_rate"], b["gof_pass_ci"]),
         pct_ci(b["gof_pass_valid_rate"], b["gof_pass_valid_ci"])]
        for v in variants for s in splits for b in [summary[v][s]]
    ]  # fmt: skip
    primary_rows = [
        [split, fmt(x["mean"]) + " " + ci(x["ci"]), fmt(x["p"]), fmt(x["p_holm"]), x["verdict"]]
        for split, x in (evaluated.get("primary") or {}).get("splits", {}).items()
    ]  # fmt: skip
    transfer_rows = [
        [family, pair, mean_ci(d["mean"], d["ci"], d["n"]), f.paired_verdict(d["ci"])]
        for family, pairs in (evaluated.get("transfer") or {}).items()
        for pair, d in pairs.items()
    ]  # fmt: skip
    paired = [
        [split, pair, f.estimate(d["tvd"]), f.paired_verdict(d["tvd"]["ci"]), f.estimate(d["kl"]),
         f.paired_verdict(d["kl"]["ci"]), f.estimate(d["valid_rate"]), f.paired_verdict(d["valid_rate"]["ci"])]
        for split, by_pair in (evaluated.get("paired") or {}).items()
        for pair, d in by_pair.items()
    ]  # fmt: skip
    diagnostics = [
        [f"{v} / {s}", mean_ci(b["support_mass"], b["support_mass_ci"], b["exact_records"]),
         mean_ci(b["tvd_conditional"], b["tvd_conditional_ci"], b["exact_records"]),
         mean_ci(b["kl_conditional"], b["kl_conditional_ci"], b["exact_records"]),
         mean_ci(b["entropy_ratio"], b["entropy_ratio_ci"], b["exact_records"]), pct(b["parsed_rate"]),
         pct_ci(b["agreement_reject_rate"], b["agreement_reject_ci"])]
        for v in variants for s in splits for b in [summary[v][s]]
    ]  # fmt: skip
    families = [
        [f"{s} / {fam}", *(family_cell(fam, summary[v][s]["families"][fam]) for v in variants)]
        for s in splits for fam in summary[variants[0]][s]["families"]
    ]  # fmt: skip
    temps = sorted({t for v in sweep.values() for t in v}, key=float)
    temperature = [
        [v, *(f"{mean_ci(b['tvd'], b['tvd_ci'], b['exact_records'])} · {pct_ci(b['valid_rate'], b['valid_rate_ci'])} · "
              f"{pct_ci(b['gof_pass_rate'], b['gof_pass_ci'])}" for t in temps for b in [sweep[v][t]])]
        for v in sweep
    ]  # fmt: skip
    out: dict[str, Any] = {
        "name": model,
        "untaught": model in n["profile"]["teaching"]["untaught"],
        "answer": f.teaching_answer(model, evaluated, n["profile"]["teaching"]),
        "main": table(
            [
                "variant",
                "split",
                "prompts (with an exact TVD)",
                "TVD exact (mean)",
                "TVD exact (median)",
                f"within TVD {fmt(n['profile']['teaching']['close_tvd'])} (exact)",
                "KL exact (finite)",
                "KL infinite",
                "TVD sampled",
                "valid sampled",
                "GOF pass (full space)",
                "GOF pass, valid answers only (diagnostic)",
            ],
            main,
        ),
        "primary": table(
            ["split", "Δ TVD exact [95% CI]", "p (sign-flip)", "p (Holm)", "verdict"], primary_rows
        )
        if primary_rows
        else "",
        "transfer_families": table(
            ["held-out family", "variant - reference", "Δ TVD exact", "at 95%"], transfer_rows
        )
        if transfer_rows
        else "",
        "paired": table(
            [
                "split",
                "variant - reference",
                "Δ TVD",
                "at 95%",
                "Δ KL",
                "at 95%",
                "Δ valid share",
                "at 95%",
            ],
            paired,
        )
        if paired
        else "",
        "diagnostics": table(
            [
                "variant / split",
                "support mass",
                "TVD given valid",
                "KL given valid",
                "entropy ratio",
                "parsed",
                "agreement rejects",
            ],
            diagnostics,
        ),
        "families": table(["split / family", *variants], families),
        "saturated": f.saturated(summary, n["profile"]["teaching"]["close_tvd"]),
        "short": f.short_families(evaluated.get("short") or {}, n["profile"]["teaching"]),
        "temperature": table(["variant", *(f"T = {t}" for t in temps)], temperature)
        if len(temps) > 1
        else "",
        "temperature_said": [
            f.temperature_sentence(v, by_t, summary[v]["validation"]) for v, by_t in sweep.items()
        ],
        "transfer": [
            f.transfer_verdict(v, summary)
            for v in summary
            if v != "base" and {"validation", "test_family"} <= set(splits)
        ],
        "source": source(prov[f"teaching/{model}"]),
    }
    if model in n["training"]:
        out |= learning(model, n, prov)
    else:
        out["curve"] = ""
    if seeded:
        seeded_splits = list(next(iter(seeded.values())))
        out["seeded"] = table(
            ["variant", "split", "accuracy", "mode baseline", "valid", "GOF pass (full space)", "prompts"],
            [[v, s, mean_ci(b["accuracy"], b["accuracy_ci"], b["records"]), fmt(b["mode_accuracy"]),
              pct(b["valid_rate"]), pct_ci(b["gof_pass_rate"], b["gof_pass_ci"]), str(b["records"])]
             for v in seeded for s in seeded_splits for b in [seeded[v][s]]],
        )  # fmt: skip
        out["uses_u"] = f.uses_u_sentence(seeded)
    return out


def learning(model: str, n: dict[str, Any], prov: dict[str, Any]) -> dict[str, Any]:
    """What limits learning: the SFT curves, per family, and against answer length."""
    summary = n["teaching"][model]["variants"]
    curves = sft_curves(n, model)
    if not curves:
        return {"curve": ""}
    steps = [p["step"] for p in next(iter(curves.values()))]
    measures = (
        ("support mass", "validation", "val_support_mass"),
        ("support mass", "train", "train_support_mass"),
        ("TVD exact", "validation", "val_tvd"),
        ("TVD exact", "train", "train_tvd"),
    )
    measures = [m for m in measures if all(m[2] in p for c in curves.values() for p in c)]
    curve = table(
        ["variant", "measure", "records", *(f"step {s}" for s in steps)],
        [[v, measure, records, *(fmt(p[key]) for p in c)]
         for v, c in curves.items() for measure, records, key in measures],
    )  # fmt: skip
    families = sorted({fam for c in curves.values() for fam in c[-1]["families"]})
    per_family = table(
        ["family (last step)", *curves],
        [[fam, *(fmt(c[-1]["families"].get(fam)) for c in curves.values())] for fam in families],
    )
    bins = by_length(summary["base"]["validation"]["answer_length"])
    lengths = table(
        ["answer bytes", "records", *summary],
        [[b, str(summary["base"]["validation"]["answer_length"][b]["records"]),
          *(f"{fmt(c['support_mass'])} · {pct(c['valid_rate'])}"
            for v in summary for c in [summary[v]["validation"]["answer_length"][b]])]
         for b in bins],
    )  # fmt: skip
    return {
        "curve": curve,
        "curve_families": per_family,
        "lengths": lengths,
        "curve_sources": [source(prov[f"training/{model}/{v}"]) for v in curves],
    }


def sizes(n: dict[str, Any]) -> dict[str, Any]:
    """The evaluated models side by side (different architectures and pretraining, not a clean
    size sweep): exact full-space TVD and GOF pass rate per split, each model's own variants."""
    taught = [m for m in n["teaching"] if m in n["sizes"]]
    if len(taught) < 2:
        return {"taught": taught, "table": ""}
    splits = ("validation", "test_template", "test_family")
    rows = [
        [m, f"{n['sizes'][m]:,}", v,
         *(f"{mean_ci(b['tvd'], b['tvd_ci'], b['exact_records'])} · {pct(b['gof_pass_rate'])}"
           if (b := n["teaching"][m]["variants"][v].get(s)) else "–" for s in splits)]
        for m in taught for v in n["teaching"][m]["variants"]
    ]  # fmt: skip
    return {"taught": taught, "table": table(["model", "parameters", "variant", *splits], rows)}


def context(n: dict[str, Any], prov: dict[str, Any]) -> dict[str, Any]:
    """Everything the templates show, computed here and in report.findings."""
    pr = n["profile"]
    weights = ", ".join(
        f"{m} {name} `{h[:12]}`" for m, files in prov["profile"]["weights"].items()
        for name, h in files.items()
    )  # fmt: skip
    return {
        "n": n,
        "profile": {
            "models": table(["model", "source"], [[k, v] for k, v in pr["models"].items()]),
            "weights": weights,
            "source": source(prov["profile"]),
            "built": [k for k, v in pr["models"].items() if v.startswith("built here")],
            "imported": [k for k, v in pr["models"].items() if v.startswith("imported")],
        },
        "harvest": harvest(n) | {"source": source(prov["harvest"])},
        "primary": primary(n),
        "secondary": secondary(n) | {"source": source(prov["ab"])},
        "teaching": [teaching_model(m, n, prov) for m in n["teaching"]],
        "sizes": sizes(n),
    }


def render(numbers: dict[str, Any], prov: dict[str, Any]) -> str:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # Markdown, not HTML
    )
    env.filters |= {"fmt": fmt, "pct": pct, "ci": ci}
    text = env.get_template("report.md.j2").render(**context(numbers, prov))
    return "\n".join(line.rstrip() for line in text.strip().splitlines()) + "\n"
