"""Every statement of the report that depends on the data, decided from the data.

A sentence is chosen only when the numbers support it: "closest" only when CIs separate,
"not calibrated" only when T = 1's CI excludes the best temperature's, the A/A licence only
when there are difference verdicts for it to license. The templates (report/templates) hold
the fixed prose; this module computes what they fill in, so the report's numbers and words
come from one place (`context`).
"""

from __future__ import annotations

from typing import Any

from entropy_lab.report.format import ci, fmt, mean_ci, pct, pct_ci
from entropy_lab.report.numbers import by_run

MIN_VALID = 0.01  # below this share of valid answers, a temperature's TVD is noise around 1
SEED_LABELS = {
    "entropy_seed_vs_prng_seed": "pool seeds vs PRNG seeds",
    "entropy_stream_vs_prng_stream": "pool per-token streams vs PRNG streams",
}


def label(comparison: str) -> str:
    return SEED_LABELS.get(comparison, comparison.replace("_vs_", " vs "))


def split_run(name: str) -> tuple[str, str]:
    """`model/length/comparison` -> (`model/length`, comparison)."""
    run, comparison = name.rsplit("/", 1)
    return run, comparison


def lengths_text(runs: list[str]) -> str:
    return ", ".join(r.split("/")[1] for r in runs)


def d_ci(e: dict[str, Any]) -> str:
    """An endpoint's difference in within-prompt SDs, with its 95% CI."""
    sd = e["sd_within"]
    if not sd:
        return fmt(e["diff"])
    return f"d = {fmt(e['d'])} [{fmt(e['ci_low'] / sd)}, {fmt(e['ci_high'] / sd)}]"


def seeding_answer(primary: dict[str, Any], spec: dict[str, Any], alpha: float) -> list[str]:
    """The study's answer, one sentence per primary comparison, from the primary verdicts."""
    by = by_run(primary)  # comparison -> run -> result, lengths in numeric order
    k, margin = len(spec["endpoints"]), fmt(spec["margin_sd"])
    out = []
    for comparison, runs in by.items():
        equivalent = [r for r, x in runs.items() if x["verdict"] == "equivalent"]
        parts = []
        if equivalent:
            worst = max(runs[r]["p_iut"] for r in equivalent)
            parts.append(
                f"equivalent within ±{margin} within-prompt SD on all {k} primary endpoints at "
                f"length {lengths_text(equivalent)} (largest TOST p {fmt(worst)})"
            )
        for run, x in runs.items():
            if x["verdict"] == "difference":
                said = "; ".join(f"{m} {d_ci(x['endpoints'][m])}" for m in x["differ"])
                parts.append(
                    f"different at length {run.split('/')[1]}: {said} (Holm over endpoints)"
                )
            elif x["verdict"] == "inconclusive":
                missing = x["not_shown_equivalent"]
                said = ", ".join(f"{m}: {d_ci(x['endpoints'][m])}" for m in missing)
                parts.append(
                    f"not shown equivalent at length {run.split('/')[1]} on {len(missing)} of {k} "
                    f"endpoints ({said}), and none differs after Holm's correction"
                )
        out.append(f"{label(comparison)}: " + "; ".join(parts) + ".")
    return out


def power_sentence(primary: dict[str, Any], spec: dict[str, Any]) -> str:
    """What this run could show, and what the plan from its variance components asks for."""
    if not primary:
        return ""
    powers = [x["power"] for x in primary.values()]
    plans = [x["plan"][0] for x in primary.values()]
    run = next(iter(primary.values()))
    needed = [p["replicates"] for p in plans]
    if any(n is None for n in needed):
        plan = (
            f"with {run['prompts']} prompts no number of replicates reaches "
            f"{pct(spec['power'])} power for every comparison (the prompt-by-arm variance needs "
            "more prompts: see the plan below)"
        )
    else:
        plan = (
            f"{pct(spec['power'])} power for every comparison needs {max(needed)} replicates per "
            f"prompt and arm with {run['prompts']} prompts"
        )
    low, high = fmt(min(powers)), fmt(max(powers))
    return (
        f"This run ({run['prompts']} prompts x {run['replicates']} replicates per arm) had power "
        f"{low if low == high else f'{low}–{high}'} for the claim at ±{fmt(spec['margin_sd'])} SD "
        f"(a lower bound over the endpoints); {plan}."
    )


def aa_sentences(aa: dict[str, Any], verdicts: dict[str, dict[str, int]]) -> list[str]:
    """The A/A calibration, and what it licenses: only difference verdicts it could license."""
    c = aa["per_metric"]
    if not c["tests"]:
        return [
            "There are no A/A pairs (`ab.generate.aa_pairs: 0`): nothing calibrates the analysis."
        ]
    above = c["status"] == "anti-conservative"
    out = [
        f"{aa['pairs']} A/A pairs (arms that differ only in their PRNG keys): {c['rejections']} of "
        f"{c['tests']} per-metric tests reject at alpha before correction, rate {fmt(c['rate'])} "
        f"{ci([c['ci_low'], c['ci_high']])} (Korn-Graubard, clustered by pair): "
        + ("above alpha." if above else "not above alpha.")
    ]
    declared = sum(
        v.get("difference", 0) + v.get("trivial difference", 0)
        for comparison, v in verdicts.items()
        if not comparison.startswith("aa")  # the A/A pairs are the calibration itself
    )
    if declared == 0:
        out.append(
            "No secondary comparison declares a difference, so there is no difference verdict "
            "for the calibration to license; it bounds how often the analysis errs."
        )
    elif above:
        out.append(
            f"The analysis declares differences between identical arms more often than alpha, "
            f"so the {declared} difference verdicts of the secondary comparisons cannot be taken "
            "at face value."
        )
    else:
        out.append(
            f"The analysis is not shown to declare differences between identical arms more often "
            f"than alpha, which supports reading the {declared} difference verdicts of the "
            "secondary comparisons as more than an artefact of the analysis."
        )
    return out


def best_variant(summary: dict[str, Any], split: str = "validation") -> str | None:
    """The variant closest to the target on `split` by full-space TVD (a TVD of 0 is best;
    variants without an exact view last)."""
    scored = [v for v in summary if summary[v].get(split, {}).get("tvd") is not None]
    return min(scored, key=lambda v: summary[v][split]["tvd"]) if scored else None


def paired_verdict(interval: list | None) -> str:
    """What a paired difference's 95% CI says (negative: the variant is lower)."""
    if interval is None:
        return "no interval"
    if interval[1] < 0:
        return "lower"
    if interval[0] > 0:
        return "higher"
    return "no difference at 95%"


def estimate(d: dict[str, Any]) -> str:
    return mean_ci(d["mean"], d["ci"], d["n"])


def closest_clause(best: str, evaluated: dict[str, Any]) -> str:
    """'closest' only where the paired TVD CIs against every other variant say so."""
    pairs = (evaluated.get("paired") or {}).get("validation", {})
    tied = []
    for other in evaluated["variants"]:
        if other == best:
            continue
        if f"{best} - {other}" in pairs:
            lower = (pairs[f"{best} - {other}"]["tvd"]["ci"] or [0, 0])[1] < 0
        elif f"{other} - {best}" in pairs:
            lower = (pairs[f"{other} - {best}"]["tvd"]["ci"] or [0, 0])[0] > 0
        else:
            lower = False
        if not lower:
            tied.append(other)
    if not tied:
        return f"the variant closest to the target on seen families (paired, at 95%), {best},"
    return (
        f"the variant with the lowest full-space TVD on seen families, {best} (a point estimate: "
        f"paired, not distinguishable at 95% from {', '.join(tied)}),"
    )


def teaching_answer(model: str, evaluated: dict[str, Any], samples: int) -> list[str]:
    """What a user gets by sampling the taught model, led by the full-space figures."""
    summary = evaluated["variants"]
    best = best_variant(summary)
    if best is None:
        return [f"{model}: no variant has an exact view on validation."]
    b, base = summary[best]["validation"], summary["base"]["validation"]
    out = [
        f"Sampled at temperature 1 ({samples} answers per prompt), {closest_clause(best, evaluated)} "
        f"answers validly {pct_ci(b['valid_rate'], b['valid_rate_ci'])} of the time (base: "
        f"{pct(base['valid_rate'])}), at a full-space TVD of "
        f"{mean_ci(b['tvd'], b['tvd_ci'], b['exact_records'])}, and "
        f"{pct_ci(b['gof_pass_rate'], b['gof_pass_ci'])} of prompts pass the goodness-of-fit "
        f"test over the whole output space (an invalid answer fails it, so at this validity a "
        f"pass is out of reach; counting the valid answers alone, a diagnostic, "
        f"{pct(b['gof_pass_valid_rate'])})."
    ]
    pair = (evaluated.get("paired") or {}).get("validation", {}).get(f"{best} - ce_multisample")
    if pair is not None:
        out.append(
            f"On the same prompts its TVD minus ce_multisample's is {estimate(pair['tvd'])} "
            f"({paired_verdict(pair['tvd']['ci'])}), its KL difference {estimate(pair['kl'])} "
            f"({paired_verdict(pair['kl']['ci'])})."
        )
    held = summary[best].get("test_family")
    if held is not None and held["tvd"] is not None:
        out.append(
            f"On held-out families it answers validly {pct(held['valid_rate'])} of the time, "
            f"TVD {mean_ci(held['tvd'], held['tvd_ci'], held['exact_records'])}."
        )
    return out


def temperature_sentence(variant: str, by_t: dict[str, Any], at_one: dict[str, Any]) -> str:
    """Which temperature is closest (only when its TVD CI separates from the others'), whether
    T = 1 is calibrated (only 'not' when its CI lies above the closest one's), and whether a
    valid answer is more or less random than the target (only when its CI excludes 1)."""
    scored = {t: b for t, b in by_t.items() if b["tvd"] is not None}
    if not scored:
        return f"{variant}: no exact view at any temperature"
    top = max(b.get("valid_rate", 1) or 0 for b in by_t.values())
    if top < MIN_VALID:  # distances between near-1 TVDs say nothing about calibration
        return (
            f"{variant}: valid answers at most {pct(top)} at any temperature, nothing to calibrate"
        )
    best = min(scored, key=lambda t: scored[t]["tvd"])
    hi = (scored[best]["tvd_ci"] or [scored[best]["tvd"]] * 2)[1]
    others = [b["tvd_ci"] for t, b in scored.items() if t != best]
    separated = bool(others) and all(o is not None and hi < o[0] for o in others)
    said = [
        f"closest to the target at T = {best} (TVD {fmt(scored[best]['tvd'])})"
        if separated
        else f"no temperature is closest beyond sampling error (lowest TVD at T = {best}, "
        "CIs overlap)"
    ]
    one = scored.get("1")
    if one is not None and best != "1":
        lo_one = (one["tvd_ci"] or [one["tvd"]] * 2)[0]
        said.append(
            "not calibrated: T = 1 is farther, beyond its CI"
            if lo_one > hi
            else "T = 1 is not distinguishable from it"
        )
    ratio, ratio_ci = at_one.get("entropy_ratio"), at_one.get("entropy_ratio_ci")
    if ratio is not None:
        if ratio_ci and ratio_ci[0] > 1:
            said.append(
                f"given a valid answer, more random than the target (entropy ratio {mean_ci(ratio, ratio_ci, 2)})"
            )
        elif ratio_ci and ratio_ci[1] < 1:
            said.append(
                f"given a valid answer, less random than the target (entropy ratio {mean_ci(ratio, ratio_ci, 2)})"
            )
        else:
            said.append(
                f"given a valid answer, as random as the target within its CI (entropy ratio {mean_ci(ratio, ratio_ci, 2)})"
            )
    return f"{variant}: " + "; ".join(said)


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


def disjoint_below(a: dict[str, Any], b: dict[str, Any]) -> bool:
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
            "worse than seen" if disjoint_below(seen, b) else "within sampling error of seen"
        )
        than_base = "better than base" if disjoint_below(b, base[s]) else "not better than base"
        parts.append(f"{s} {fmt(b['tvd'])} ({than_seen}, {than_base})")
    return f"{variant}: seen {fmt(seen['tvd'])}, " + ", ".join(parts)
