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


def built_parameters(name: str, root: Path) -> int:
    """A built model's parameter count, from its safetensors header (no model is loaded)."""
    from safetensors import safe_open

    path = root / "models" / name / "model.safetensors"
    if not path.is_file():
        raise UserError(f"no {path}; run `dvc repro build@{name}` (or `dvc pull`) first")
    with safe_open(path, "pt") as f:
        return sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())  # noqa: SIM118


def profile(params) -> dict[str, Any]:
    """Which models and design sizes produced the numbers."""
    m, ab, e, t = params.models, params.ab, params.evaluate, params.training
    g = ab.generate
    return {
        "models": {
            name: m.profiles[name].repo
            or f"built here: byte-level GPT-2, {m.built[name].n_layer} layers, "
            f"{m.built[name].n_embd} wide, {m.built[name].steps} steps on the King James Bible"
            for name in dict.fromkeys([*ab.models, *t.models])
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
                "comparisons": [f"{t}_vs_{c}" for t, c in ab.analysis.primary.comparisons],
                "endpoints": ab.analysis.primary.endpoints,
                "margin_sd": ab.analysis.primary.margin_sd,
                "power": ab.analysis.primary.power,
            },
            "equivalence_margin_sd": ab.analysis.equivalence_margin_sd,
            "correction": ab.analysis.correction,
            "alpha": ab.analysis.alpha,
        },
        "teaching": {
            "models": t.models,
            "variants": t.variants,
            "records_per_split": e.records,
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
                m: read_json(root / EVAL_METRICS / m / "metrics.json")
                for m in params.training.models
            },
            "training": training_curves(params, root),
            "sizes": {
                m: read_json(root / BUILD_METRICS / m / "metrics.json")["parameters"]
                for m in taught_built(params)
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
    """The built models that the teaching strand trains (the model-size comparison)."""
    return [m for m in params.training.models if params.models.is_built(m)]


def recompute(params, root: Path = Path(".")) -> dict[str, Any]:
    """The same numbers, derived again from the stored artefacts."""

    from entropy_lab.entropy.harvest import reassess
    from entropy_lab.entropy.pool import POOL_DIR
    from entropy_lab.evaluation.evaluate import EVAL_DIR, rescore, summarize
    from entropy_lab.evaluation.seeded import rescore_seeded, summarize_seeded
    from entropy_lab.stages.ab_analyze import load_metrics
    from entropy_lab.stats.ab import results

    teaching = {}
    families = instantiate(params.tasks)
    for m in params.training.models:
        path, hint = (
            root / EVAL_DIR / m / "records.parquet",
            f"run `dvc pull` or evaluate@{m} first",
        )
        rows = rescore(read_parquet(path, hint), families, params.evaluate, m)
        teaching[m] = summarize(rows, params.evaluate)
        seeded = path.with_name("seeded.parquet")
        rows = (
            rescore_seeded(read_parquet(seeded, hint), params.evaluate, m)
            if seeded.is_file()
            else []
        )
        teaching[m]["seeded"] = summarize_seeded(rows, params.evaluate)
    return normalise(
        {
            "profile": profile(params),
            "harvest": harvest_numbers(reassess(params.harvest, root / POOL_DIR)),
            "ab": results(*load_metrics(params, root)[:2], params)[2],
            "teaching": teaching,
            "training": training_curves(params, root),
            "sizes": {m: built_parameters(m, root) for m in taught_built(params)},
        }
    )


def sources(params) -> dict[str, tuple[str, Path]]:
    """Report section -> (dvc.lock stage, its manifest)."""
    out = {
        "profile": ("models", RESOLVED.parent / MANIFEST),
        "harvest": ("harvest", Path("data/entropy") / MANIFEST),
        "ab": ("ab-analyze", Path("reports/ab") / MANIFEST),
    }
    for m in params.training.models:
        out[f"teaching/{m}"] = (f"evaluate@{m}", Path("data/eval") / m / MANIFEST)
        for v in params.training.variants:
            out[f"training/{m}/{v}"] = (f"train@{m}-{v}", Path("adapters") / m / v / MANIFEST)
    return out


def provenance(params, root: Path = Path(".")) -> dict[str, Any]:
    """Where each section's numbers come from, from `dvc.lock` and the stage manifests."""

    lock = read_yaml(root / "dvc.lock") if (root / "dvc.lock").is_file() else {}
    if not isinstance(lock, dict):
        raise UserError(f"{root / 'dvc.lock'}: not a DVC lock file; {REPRO}")
    out = {}
    for section, (stage, manifest_path) in sources(params).items():
        entry = lock.get("stages", {}).get(stage)
        if entry is None:
            raise UserError(f"stage {stage!r} is not in dvc.lock; run `dvc repro` first")
        manifest = read_json(root / manifest_path)
        out[section] = {
            "stage": stage,
            "manifest": manifest_path.as_posix(),
            "digest": manifest["digest"],
            "params_sha256": sha256_bytes(canonical_json(manifest["params"])),
            "inputs": manifest["inputs"],
            "seeds": manifest["seeds"],
            "outs_md5": {o["path"]: o["md5"] for o in entry.get("outs", [])},
        }
    resolved = read_json(root / RESOLVED)
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
                s: {k: splits[s][k] for k in ("tvd", "valid_rate", "gof_pass_rate")}
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


def check_ledgers(root: Path) -> int:
    """Every stage's pool ranges together (A/B samples, the tasks' seeded u's): no byte is read
    by two of them. Returns how many ranges were checked."""
    from entropy_lab.entropy.pool import check_ledger, read_ledger

    ranges = [r for p in sorted((root / "data").glob("**/ledger.json")) for r in read_ledger(p)]
    check_ledger(ranges)
    return len(ranges)
