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


def declared_text(d: dict[str, Any] | None, what: str) -> str:
    """When an analysis was declared, said only as git and its digest support it: a run whose
    fields differ from the declaration is post hoc."""
    if d is None:
        return f"{what} is not declared in params: exploratory"
    note = f"; {d['note']}" if d.get("note") else ""
    if d["as_declared"]:
        return f"{what} was declared in commit {d['commit']} ({d['date']}{note}), before this run"
    return (f"{what} is post hoc here: this run changes the analysis declared in commit "
            f"{d['commit']} ({d['date']})")  # fmt: skip


def counted(x: dict[str, Any]) -> str:
    """How many endpoints carried information, and which had no variation."""
    k, flat = x["informative"], x["no_variation"]
    total = k + len(flat)
    if not flat:
        return f"all {total} endpoints"  # every one varies
    return f"the {k} of {total} endpoints that vary ({', '.join(flat)}: no variation)"


def seeding_answer(primary: dict[str, Any], spec: dict[str, Any], alpha: float) -> list[str]:
    """The answer, one sentence per comparison, from the verdicts; an endpoint with no
    variation is named and counted out, never counted as equivalent."""
    margin = fmt(spec["margin_sd"])
    out = []
    for comparison, runs in by_run(primary).items():
        parts = []
        for run, x in runs.items():
            length = run.split("/")[1]
            if x["verdict"] == "equivalent":
                parts.append(f"equivalent within ±{margin} within-prompt SD on {counted(x)} at "
                             f"length {length} (largest TOST p {fmt(x['p_iut'])})")  # fmt: skip
            elif x["verdict"] == "difference":
                said = "; ".join(f"{m} {d_ci(x['endpoints'][m])}" for m in x["differ"])
                parts.append(f"different at length {length}: {said} (Holm over endpoints)")
            else:
                missing = x["not_shown_equivalent"]
                said = ", ".join(f"{m}: {d_ci(x['endpoints'][m])}" for m in missing)
                flat = (
                    f"; {', '.join(x['no_variation'])}: no variation" if x["no_variation"] else ""
                )
                parts.append(f"not shown equivalent at length {length} on {len(missing)} of the "
                             f"{x['informative']} endpoints that vary ({said}{flat}), and none "
                             "differs after Holm's correction")  # fmt: skip
        out.append(f"{label(comparison)}: " + "; ".join(parts) + ".")
    return out


def scope_sentence(primary: dict[str, Any], spec: dict[str, Any], models: list[str]) -> str:
    """What the claim is about: these models, prompts and lengths; how far the prompts' own
    differences (prompt x arm SD) reach against the margin; the margin on the raw scale."""
    if not primary:
        return ""
    runs = sorted({name.rsplit("/", 1)[0] for name in primary})
    prompts = next(iter(primary.values()))["prompts"]
    worst, where = 0.0, ""
    for x in primary.values():
        for m, e in x["endpoints"].items():
            if m in x["no_variation"]:
                continue  # no test, so no claim to scope
            if e["sd_within"] and e["interaction_sd"] / e["sd_within"] > worst:
                worst, where = e["interaction_sd"] / e["sd_within"], m
    spread = (f"the prompt × arm SD reaches {fmt(worst)} within-prompt SD ({where}), "
              + ("above the margin, so nothing follows for other prompts" if worst > spec["margin_sd"]
                 else "within the margin; still, these prompts only")) if worst else \
        "no prompt × arm variation beyond noise was estimated; still, only these prompts were asked"  # fmt: skip
    return (f"Scope: {', '.join(models)} on these {prompts} prompts, at {', '.join(runs)} "
            f"(model/length); {spread}.")  # fmt: skip


def raw_margins(primary: dict[str, Any]) -> dict[str, str]:
    """Each endpoint's margin on its own scale (its range over runs and comparisons)."""
    out: dict[str, list[float]] = {}
    for x in primary.values():
        for m, e in x["endpoints"].items():
            if e["margin"] and e["margin"] == e["margin"]:  # finite, non-zero
                out.setdefault(m, []).append(e["margin"])
    return {m: f"±{fmt(min(v))}" if fmt(min(v)) == fmt(max(v)) else f"±{fmt(min(v))}–{fmt(max(v))}"
            for m, v in out.items()}  # fmt: skip


def power_sentence(primary: dict[str, Any], spec: dict[str, Any]) -> str:
    """What this run could show (the claim's power: a lower bound that holds whatever the
    endpoints' correlation, and simulated with their estimated correlation), and what the plan
    from its variance components asks for."""
    if not primary:
        return ""
    bounds = [x["power"] for x in primary.values() if x["power"] is not None]
    sims = [x["power_simulated"] for x in primary.values() if x["power_simulated"] is not None]
    plans = [x["plan"][0] for x in primary.values()]
    run = next(iter(primary.values()))
    needed = [p["replicates"] for p in plans]
    if not needed or any(n is None for n in needed):
        plan = (f"with {run['prompts']} prompts no number of replicates reaches "
                f"{pct(spec['power'])} power for every comparison (see the plan below)")  # fmt: skip
    else:
        worst = max(plans, key=lambda p: p["replicates"])
        plan = (f"{pct(spec['power'])} power (lower bound) for every comparison needs "
                f"{max(needed)} replicates per prompt and arm with {run['prompts']} prompts "
                f"(simulated power there: {fmt(worst['power_simulated'])})")  # fmt: skip

    def span(v: list[float]) -> str:
        lo, hi = fmt(min(v)), fmt(max(v))
        return lo if lo == hi else f"{lo}–{hi}"

    said = f"at least {span(bounds)} (Bonferroni bound)" if bounds else "–"
    if sims:
        said += (
            f", {span(sims)} simulated (the endpoints jointly normal, their correlation estimated)"
        )
    return (f"This run ({run['prompts']} prompts x {run['replicates']} replicates per arm) had "
            f"power {said} for the claim at ±{fmt(spec['margin_sd'])} SD; {plan}.")  # fmt: skip


def confirmatory_sentences(result: dict[str, Any], spec: dict[str, Any]) -> list[str]:
    out = []
    for name, x in result.items():
        run, comparison = split_run(name)
        e = x["estimate"]
        out.append(
            f"{x['endpoint']}, {label(comparison)} at {run}: **{x['verdict']}**: d = "
            f"{fmt(e['d'])} {d_ci(e).split(' ', 3)[-1] if e['sd_within'] else ''}, difference p "
            f"{fmt(e['p_diff'])}, TOST p (±{fmt(spec['effect_d'])} SD) {fmt(e['p_tost'])}; "
            f"n {e['n_treatment']} / {e['n_control']} texts with the endpoint defined "
            f"({pct(x['defined_share'])} of texts); power {fmt(x['power_difference'])} for "
            f"d = {fmt(spec['effect_d'])}, {fmt(x['power_equivalence'])} for equivalence."
        )
    return out


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


def split_figures(b: dict[str, Any], close: float) -> str:
    """What one variant gives on one split: the sampled view first (what a user gets), then the
    exact view (teacher forcing), each labelled; the graded criterion beside."""
    parts = []
    if b.get("sampled_records"):
        parts.append(f"valid {pct_ci(b['valid_rate'], b['valid_rate_ci'])} sampled, GOF pass "
                     f"{pct_ci(b['gof_pass_rate'], b['gof_pass_ci'])}, TVD sampled "
                     f"{mean_ci(b['tvd_sampled'], b['tvd_sampled_ci'], b['exact_records'])}")  # fmt: skip
    else:
        parts.append(f"valid (exact: the probability of a valid answer) "
                     f"{mean_ci(b['support_mass'], b['support_mass_ci'], b['exact_records'])}")  # fmt: skip
    parts.append(f"TVD exact {mean_ci(b['tvd'], b['tvd_ci'], b['exact_records'])}, KL exact "
                 f"{mean_ci(b['kl'], b['kl_ci'], b['exact_records'])}, within TVD {fmt(close)} "
                 f"{pct_ci(b['close_rate'], b['close_ci'])} of prompts")  # fmt: skip
    return ", ".join(parts)


def primary_teaching(evaluated: dict[str, Any], profile: dict[str, Any]) -> str:
    """The primary teaching comparison per split, with Holm's adjustment over the splits, and
    when it was fixed in params."""
    p = evaluated.get("primary") or {}
    if not p.get("splits"):
        return ""
    head = fixed_text(profile.get("declared"))
    said = [f"{split} {fmt(x['mean'])} {ci(x['ci'])} (Holm p {fmt(x['p_holm'])}: {x['verdict']})"
            for split, x in p["splits"].items()]  # fmt: skip
    worse = [s for s, x in p["splits"].items() if x["verdict"] == "higher"]
    against = (f" On {', '.join(worse)} {p['variant']} is farther from the target than "
               f"{p['reference']}." if worse else "")  # fmt: skip
    return (
        f"{head}: {p['variant']} minus {p['reference']}, exact full-space TVD "
        f"per prompt: " + "; ".join(said) + "." + against + per_family_transfer(evaluated)
    )


def saturated(summary: dict[str, Any], close: float) -> str:
    """Said when the share within `close` is 0 for every variant and split: then it does not
    separate variants either, and the median exact TVD is the graded figure that can."""
    rates = [b["close_rate"] for by_split in summary.values() for b in by_split.values()]
    if any(r for r in rates if r is not None):
        return ""
    return (f"The share within TVD {fmt(close)} is 0% for every variant and split here: like the "
            "GOF pass rate it saturates, and the median exact TVD is the graded figure that can "
            "separate variants.")  # fmt: skip


def short_families(short: dict[str, dict[str, int]], profile: dict[str, Any]) -> str:
    """The families a split holds fewer of than `evaluate.records_per_family` asks: the tasks
    stage ran out of distinct prompts for them (a family with no parameters has one prompt
    per template, and test_template holds only its held-out templates)."""
    said = [f"{s}: {', '.join(f'{fam} {n}' for fam, n in fams.items())} (of "
            f"{profile['records_per_family'][s]})" for s, fams in short.items() if fams]  # fmt: skip
    if not said:
        return ""
    return (
        "Fewer prompts than the quota, because the family has no more distinct prompts in "
        "that split (no parameters: one prompt per template): " + "; ".join(said) + "."
    )


def fixed_text(d: dict[str, Any] | None) -> str:
    """When the primary teaching comparison was fixed in params, said as git supports it: it
    came after earlier runs had reported both variants, so it is never called declared before
    the data."""
    if d is None:
        return "Primary comparison (not fixed in params: exploratory)"
    if not d["as_declared"]:
        return (f"Primary comparison (post hoc: this run changes what commit {d['commit']} "
                "fixed)")  # fmt: skip
    return f"Primary comparison (fixed in commit {d['commit']}, {d['date']}: {d['note']})"


def per_family_transfer(evaluated: dict[str, Any]) -> str:
    """The primary teaching comparison per held-out family (exploratory): the pooled
    test_family figure can hide families that go opposite ways."""
    p = evaluated["primary"]
    key = f"{p['variant']} - {p['reference']}"
    fams = {f: x[key] for f, x in (evaluated.get("transfer") or {}).items()
            if key in x and x[key]["mean"] is not None}  # fmt: skip
    if not fams:
        return ""
    side = {f: "higher" if x["ci"] and x["ci"][0] > 0 else "lower" if x["ci"] and x["ci"][1] < 0
            else "no difference shown" for f, x in fams.items()}  # fmt: skip
    said = "; ".join(f"{f} {fmt(x['mean'])} {ci(x['ci'])} ({side[f]})" for f, x in fams.items())
    split = {"higher", "lower"} <= set(side.values())
    return (f" Per held-out family ({len(fams)} with an exact TVD; exploratory): {said}"
            + (": the families go opposite ways, which the pooled test_family figure hides."
               if split else "."))  # fmt: skip


def teaching_answer(model: str, evaluated: dict[str, Any], profile: dict[str, Any]) -> list[str]:
    """What a user gets from the declared variant (and base) on every split, the unfavourable
    ones included, each figure labelled sampled or exact; led by the primary comparison."""
    summary, close = evaluated["variants"], profile["close_tvd"]
    variant = profile["primary"][0]
    if model in profile["untaught"] or variant not in summary:
        base = summary["base"]
        return ["Untaught (no samples: the exact view at T = 1): " + "; ".join(
            f"{s}: {split_figures(b, close)}" for s, b in base.items()) + "."]  # fmt: skip
    out = [primary_teaching(evaluated, profile)]
    for name in (variant, "base"):
        out.append(f"{name}, sampled at T = 1 ({profile['samples_per_record']} answers per "
                   "prompt): " + "; ".join(f"{s}: {split_figures(b, close)}"
                                           for s, b in summary[name].items()) + ".")  # fmt: skip
    out.append(
        "TVD exact is the teacher-forced distribution's distance; TVD sampled is the "
        "empirical one's, which exceeds it by sampling noise; a GOF pass needs nearly "
        "every answer valid. Held-out families are only the ones named in section 3."
    )
    return [s for s in out if s]


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
                f"given a valid answer, more random than the target (entropy ratio {mean_ci(ratio, ratio_ci, at_one['exact_records'])})"
            )
        elif ratio_ci and ratio_ci[1] < 1:
            said.append(
                f"given a valid answer, less random than the target (entropy ratio {mean_ci(ratio, ratio_ci, at_one['exact_records'])})"
            )
        else:
            said.append(
                f"given a valid answer, as random as the target within its CI (entropy ratio {mean_ci(ratio, ratio_ci, at_one['exact_records'])})"
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
