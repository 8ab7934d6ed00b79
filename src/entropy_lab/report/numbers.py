"""Every number the report shows, two ways.

`gather` reads what the stages recorded (their metrics files); `recompute` derives the same
numbers again from the stored artefacts alone (raw entropy samples and the pool, the A/B
metric tables, the evaluation records) with the stages' own functions, and no model.
The report is rendered from `gather`; `verify` checks it against `recompute`.

`provenance` names, for each section, the stage it came from: the stage's manifest digest
(params, input hashes, seeds), the sha256 of its params and inputs, and the md5 of its
outputs as `dvc.lock` records them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from entropy_lab.artefacts import REPRO, read_json, read_parquet, read_yaml
from entropy_lab.errors import UserError
from entropy_lab.evaluation.evaluate import ZHAO_2026_MEDIAN_PASS_RATE
from entropy_lab.models import RESOLVED
from entropy_lab.provenance import MANIFEST, canonical_json, json_safe, sha256_bytes
from entropy_lab.tasks.families import instantiate

HARVEST_METRICS = Path("reports/harvest/metrics.json")
AB_METRICS = Path("reports/ab/metrics.json")
EVAL_METRICS = Path("reports/eval")
BUILD_METRICS = Path("reports/models")
TRAIN_METRICS = Path("reports/train")


def normalise(obj: Any) -> Any:
    """The JSON form of a result (NaN as null, tuples as lists, numpy scalars as numbers)."""
    return json.loads(json.dumps(json_safe(obj), default=lambda o: o.item()))


def by_run(tests: dict[str, dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """`model/length/comparison` keys -> {comparison: {model/length: metrics}}, lengths in
    numeric order."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name in sorted(tests, key=lambda n: (n.split("/")[0], int(n.split("/")[1]), n)):
        run, comparison = name.rsplit("/", 1)
        out.setdefault(comparison, {})[run] = tests[name]
    return out


def built_parameters(path: Path) -> int:
    """A built model's parameter count, from its safetensors header (no model is loaded)."""
    from safetensors import safe_open

    with safe_open(path, "pt") as f:
        return sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())  # noqa: SIM118


def weights_file(name: str) -> str:
    return f"models/{name}/model.safetensors"


def evaluated(params) -> list[str]:
    """The models with teaching numbers: the taught ones, then those evaluated untaught."""
    return [*params.training.models, *params.evaluate.untaught]


def declaration(declared, fields: dict[str, Any]) -> dict[str, Any] | None:
    """An analysis' declaration, and whether this run's fields are the declared ones (a run
    that changed them after the declaration is post hoc)."""
    from entropy_lab.generation.params import claim_digest

    if declared is None:
        return None
    return declared.model_dump() | {"as_declared": claim_digest(fields) == declared.digest}


def model_source(m, name: str) -> str:
    if name in m.built:
        b = m.built[name]
        return (f"built here: byte-level GPT-2, {b.n_layer} layers, {b.n_embd} wide, {b.steps} "
                "steps on the King James Bible")  # fmt: skip
    if name in m.imported:
        i = m.imported[name]
        return (f"imported: {name}, the GGUF in the registry's {i.package}=={i.version} wheel "
                f"({i.licence}), converted here")  # fmt: skip
    return m.profiles[name].repo or name


def confirmatory_profile(conf, ab) -> dict[str, Any] | None:
    if conf is None:
        return None
    return conf.model_dump(exclude={"declared"}) | {
        "declared": declaration(conf.declared, conf.claim()),
        "applies": conf.applies(ab),
    }


def profile(params) -> dict[str, Any]:
    """Which models and design sizes produced the numbers, and what was declared when."""
    m, ab, e, t = params.models, params.ab, params.evaluate, params.training
    g, a = ab.generate, ab.analysis
    return {
        "models": {
            name: model_source(m, name) for name in dict.fromkeys([*ab.models, *evaluated(params)])
        },
        "ab": {
            "models": ab.models,
            "lengths": ab.lengths,
            "prompts": len(ab.prompts),
            "conditions": g.conditions,
            "replicates": g.replicates,
            "listed_seeds": len(g.listed_seeds),
            "aa_pairs": g.aa_pairs,
            "aa_replicates": g.aa_replicates,
            "primary": {
                "comparisons": [f"{t}_vs_{c}" for t, c in a.primary.comparisons],
                "endpoints": a.primary.endpoints,
                "margin_sd": a.primary.margin_sd,
                "power": a.primary.power,
                "min_varying": a.primary.min_varying,
                "declared": declaration(a.primary.declared, a.primary.claim(a.alpha)),
            },
            "deviations": [d.model_dump() for d in a.deviations],
            "confirmatory": confirmatory_profile(a.confirmatory, ab),
            "best_of_k": ab.metrics.best_of_k,
            "mauve_permutations": a.mauve_permutations,
            "pool_skip": g.pool_skip,
            "seed": g.seed,
            "equivalence_margin_sd": ab.analysis.equivalence_margin_sd,
            "correction": ab.analysis.correction,
            "alpha": ab.analysis.alpha,
        },
        "teaching": {
            "models": t.models,
            "untaught": e.untaught,
            "variants": t.variants,
            "records_per_family": e.records_per_family.model_dump(),
            "min_records_ci": e.min_records_ci,
            "close_tvd": e.close_tvd,
            "primary": e.primary,
            "declared": declaration(e.declared, e.claim()),
            "samples_per_record": e.samples,
            "alpha": e.alpha,
            "zhao_2026_median_pass_rate": ZHAO_2026_MEDIAN_PASS_RATE,
        },
    }


def harvest_numbers(by_source: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The assessment of each source, from the per-source harvest report."""
    out = {}
    for name, r in by_source.items():
        a, sts = r["assessment"], r["sts"]
        bits = a["bitstring"] or {}  # none when the samples are binary: assessed as bits
        out[name] = {
            "min_entropy": r["min_entropy"],
            "limiting_estimator": r["min_entropy_estimator"],
            "h_original": a["h_original"],
            "h_bitstring_per_byte": None if a["h_bitstring"] is None else 8 * a["h_bitstring"],
            "estimators": a["original"],
            "estimators_bitstring_per_byte": {k: 8 * v for k, v in bits.items()},
            "raw_per_32_bytes": r["raw_per_32_bytes"],
            "sts_passed": sum(t["passed"] for t in sts.values()),
            "sts_tests": len(sts),
            "sts_uniformity_p": {k: t["uniformity_p"] for k, t in sts.items()},
            "conditioned": r["bytes_conditioned"],
            "raw": r["bytes_raw"],
        }
    return out


def gather(params, root: Path = Path(".")) -> dict[str, Any]:
    """The numbers as the stages recorded them."""
    return normalise(
        {
            "profile": profile(params),
            "harvest": harvest_numbers(read_json(root / HARVEST_METRICS)["sources"]),
            "ab": read_json(root / AB_METRICS),
            "teaching": {
                m: read_json(root / EVAL_METRICS / m / "metrics.json") for m in evaluated(params)
            },
            "training": training_curves(params, root),
            "sizes": {
                m: read_json(root / BUILD_METRICS / m / "metrics.json")["parameters"]
                for m in sized(params)
            },
        }
    )


def training_curves(params, root: Path) -> dict[str, dict[str, Any]]:
    """Each adapter's validation curve as its train stage recorded it (support mass and
    full-space TVD, per family too, at every evaluation step). Not recomputable without the
    model: `verify` checks these files against `dvc.lock` instead."""
    return {
        m: {
            v: read_json(root / TRAIN_METRICS / m / v / "metrics.json")["curve"]
            for v in params.training.variants
        }
        for m in params.training.models
    }


def sft_curves(n: dict[str, Any], model: str) -> dict[str, list[dict[str, Any]]]:
    """The sampling variants' curves of a model from the report's numbers, in the order of its
    evaluation summary (whatever order they were stored in); `seeded` answers other prompts."""
    trained = n["training"][model]
    return {
        v: trained[v] for v in n["teaching"][model]["variants"] if v in trained and v != "seeded"
    }


def taught_built(params) -> list[str]:
    """The built models that the teaching strand evaluates: their sizes recompute from the
    weights' header (an imported model's count is its convert stage's, checked by dvc.lock)."""
    return [m for m in evaluated(params) if params.models.is_built(m)]


def sized(params) -> list[str]:
    """The evaluated models with a recorded parameter count (built or imported)."""
    return [
        m for m in evaluated(params) if params.models.is_built(m) or m in params.models.imported
    ]


def recompute_teaching(params, model: str, records: Path, seeded: Path | None) -> dict[str, Any]:
    """One taught model's teaching numbers, from its evaluation records."""
    from entropy_lab.evaluation.evaluate import rescore, summarize
    from entropy_lab.evaluation.seeded import rescore_seeded, summarize_seeded

    hint = f"run `dvc pull` or evaluate@{model} first"
    rows = rescore(read_parquet(records, hint), instantiate(params.tasks), params.evaluate, model)
    out = summarize(rows, params.evaluate)
    found = rescore_seeded(read_parquet(seeded, hint), params.evaluate, model) if seeded else []
    out["seeded"] = summarize_seeded(found, params.evaluate)
    return normalise(out)


def recompute_ab(params, tables: list[tuple[Path, Path]]) -> dict[str, Any]:
    """The seeding study's numbers, from every ab-metrics stage's (samples, groups) tables."""
    import pandas as pd

    from entropy_lab.stats.ab import results

    read = [(read_parquet(s, REPRO), read_parquet(g, REPRO)) for s, g in tables]
    samples = pd.concat([s for s, _ in read], ignore_index=True)
    groups = pd.concat([g for _, g in read], ignore_index=True)
    return normalise(results(samples, groups, params)[2])


def recompute_harvest(params, root: Path = Path(".")) -> dict[str, Any]:
    """Every source's assessment, again from the raw samples and the pool (both in git)."""
    from entropy_lab.entropy.harvest import reassess
    from entropy_lab.entropy.pool import POOL_DIR

    return normalise(harvest_numbers(reassess(params.harvest, root / POOL_DIR)))


def ab_tables(params) -> list[tuple[str, str]]:
    """The (samples, groups) tables of every ab-metrics stage, repository-relative."""
    from entropy_lab.generation.metrics import METRICS_DIR

    return [
        (f"{METRICS_DIR}/{m}/{n}/samples.parquet", f"{METRICS_DIR}/{m}/{n}/groups.parquet")
        for m in params.ab.models
        for n in params.ab.lengths
    ]


def sources(params) -> dict[str, tuple[str, Path]]:
    """Report section -> (dvc.lock stage, its manifest)."""
    out = {
        "profile": ("models", RESOLVED.parent / MANIFEST),
        "harvest": ("harvest", Path("data/entropy") / MANIFEST),
        "ab": ("ab-analyze", Path("reports/ab") / MANIFEST),
    }
    for m in params.evaluate.untaught:
        out[f"teaching/{m}"] = (f"evaluate-untaught@{m}", Path("data/eval") / m / MANIFEST)
    for m in params.training.models:
        out[f"teaching/{m}"] = (f"evaluate@{m}", Path("data/eval") / m / MANIFEST)
        for v in params.training.variants:
            out[f"training/{m}/{v}"] = (f"train@{m}-{v}", Path("adapters") / m / v / MANIFEST)
    return out


def manifests(params) -> list[str]:
    """Every file `provenance` reads, repository-relative."""
    return [p.as_posix() for _stage, p in sources(params).values()] + [RESOLVED.as_posix()]


def provenance(params, root: Path = Path("."), locate=None) -> dict[str, Any]:
    """Where each section's numbers come from, from `dvc.lock` and the stage manifests.
    `locate` maps a repository-relative file to where its bytes are (default: `root`)."""
    locate = locate or (lambda rel: root / rel)
    lock = read_yaml(root / "dvc.lock") if (root / "dvc.lock").is_file() else {}
    if not isinstance(lock, dict):
        raise UserError(f"{root / 'dvc.lock'}: not a DVC lock file; {REPRO}")
    out = {}
    for section, (stage, manifest_path) in sources(params).items():
        entry = lock.get("stages", {}).get(stage)
        if entry is None:
            raise UserError(f"stage {stage!r} is not in dvc.lock; run `dvc repro` first")
        manifest = read_json(locate(manifest_path.as_posix()))
        out[section] = {
            "stage": stage,
            "manifest": manifest_path.as_posix(),
            "digest": manifest["digest"],
            "params_sha256": sha256_bytes(canonical_json(manifest["params"])),
            "inputs": manifest["inputs"],
            "seeds": manifest["seeds"],
            "outs_md5": {o["path"]: o["md5"] for o in entry.get("outs", [])},
        }
    resolved = read_json(locate(RESOLVED.as_posix()))
    out["profile"]["weights"] = {m: resolved[m]["weights"] for m in profile(params)["models"]}
    return out


HEADLINE_SPLITS = ("validation", "test_family")  # seen, and held-out families
HEADLINE_VERDICTS = ("difference", "trivial difference", "equivalent", "inconclusive")


def headline(n: dict[str, Any]) -> dict[str, Any]:
    """A handful of numbers per strand, from the report's numbers: what `dvc metrics show` and
    `dvc exp show` compare (the rest stays in metrics.json and the stages' outputs)."""
    main = [c for c in n["ab"]["verdicts"] if c.startswith("entropy_")]  # the source's effect
    aa = n["ab"]["aa"]["per_metric"]
    out: dict[str, Any] = {
        "harvest": {src: h["min_entropy"] for src, h in n["harvest"].items()},
        "ab": {
            "primary": {name: x["verdict"] for name, x in n["ab"]["primary"].items()},
            "aa_false_positive_rate": aa["rate"],
            "aa_false_positive_ci_high": aa["ci_high"],
            **{c: {v: n["ab"]["verdicts"][c].get(v, 0) for v in HEADLINE_VERDICTS} for c in main},
        },
        "teaching": {},
    }
    for model, evaluated in n["teaching"].items():
        t = {
            v: {
                s: {k: splits[s][k] for k in ("tvd", "close_rate", "valid_rate", "gof_pass_rate")}
                for s in HEADLINE_SPLITS
                if s in splits
            }
            for v, splits in evaluated["variants"].items()
        }
        if "seeded" in evaluated["seeded"]:
            seeded = evaluated["seeded"]["seeded"]
            t["seeded"] = {
                s: {"accuracy": seeded[s]["accuracy"]} for s in HEADLINE_SPLITS if s in seeded
            }
        out["teaching"][model] = t
    return out


def teaching_rows(teaching: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (model, variant, split, family): the `dvc plots` view of teaching."""
    return [
        {
            "label": f"{model}/{split}/{family} {variant}",
            "model": model,
            "variant": variant,
            "split": split,
            "family": family,
            "tvd": f["tvd"],
            "tvd_low": (f["tvd_ci"] or [f["tvd"]] * 2)[0],
            "tvd_high": (f["tvd_ci"] or [f["tvd"]] * 2)[1],
            "valid_rate": f["valid_rate"],
            "gof_pass_rate": f["gof_pass_rate"],
        }
        for model, evaluated in teaching.items()
        for variant, splits in evaluated["variants"].items()
        for split, s in splits.items()
        for family, f in s["families"].items()
    ]


def ledgers(root: Path) -> list[Path]:
    """Every stage's pool ledger in a workspace."""
    return sorted((root / "data").glob("**/ledger.json"))


def check_ledgers(paths: list[Path]) -> int:
    """Every stage's pool ranges together (A/B samples, the tasks' seeded u's): no byte is read
    by two of them. Returns how many ranges were checked."""
    from entropy_lab.entropy.pool import check_ledger, read_ledger

    ranges = [r for p in paths for r in read_ledger(p)]
    check_ledger(ranges)
    return len(ranges)


REL_TOL = 1e-6  # recomputation on another machine may differ in the last bits of a float


def diff(reported: Any, recomputed: Any, path: str = "") -> list[str]:
    """Every leaf where two JSON trees disagree (floats within REL_TOL agree)."""
    if isinstance(reported, dict) and isinstance(recomputed, dict):
        out = []
        for k in sorted(set(reported) | set(recomputed)):
            where = f"{path}.{k}" if path else k
            if k not in recomputed:
                out.append(f"{where}: reported, but not recomputed")
            elif k not in reported:
                out.append(f"{where}: recomputed, but missing from the report")
            else:
                out += diff(reported[k], recomputed[k], where)
        return out
    if isinstance(reported, list) and isinstance(recomputed, list):
        if len(reported) != len(recomputed):
            return [f"{path}: reported {len(reported)} values, recomputed {len(recomputed)}"]
        return [
            d
            for i, (a, b) in enumerate(zip(reported, recomputed, strict=True))
            for d in diff(a, b, f"{path}[{i}]")
        ]
    if isinstance(reported, bool) or isinstance(recomputed, bool):
        same = reported is recomputed
    elif isinstance(reported, int | float) and isinstance(recomputed, int | float):
        same = math.isclose(reported, recomputed, rel_tol=REL_TOL, abs_tol=1e-12)
    else:
        same = reported == recomputed
    return [] if same else [f"{path}: reported {reported!r}, recomputed {recomputed!r}"]
