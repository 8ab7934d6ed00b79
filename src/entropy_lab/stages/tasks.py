"""Stage `tasks`: the randomness tasks with exact targets, as a DatasetDict in data/tasks/
(with its card, pool ledger and manifest), and their counts in reports/tasks/metrics.json."""

from __future__ import annotations

from pathlib import Path

from entropy_lab.config import Params
from entropy_lab.entropy.layout import check_layout, seeded_segments
from entropy_lab.entropy.pool import LOCK, POOL_DIR, POOL_FILE, Pool, check_ledger, write_ledger
from entropy_lab.provenance import MANIFEST, atomic_dir, build_manifest, write_json
from entropy_lab.schema import flatten
from entropy_lab.stages.common import Run, model_numerics, outputs
from entropy_lab.tasks.builder import family_counts, records_fingerprint
from entropy_lab.tasks.dataset import add_seeded, build, card, to_dataset_dict

OUT, REPORTS = Path("data/tasks"), Path("reports/tasks")


def run(params: Params, out: Path = OUT, reports: Path = REPORTS) -> None:
    section = params.tasks
    outputs(out, reports / "metrics.json")
    pool = Pool.load(POOL_DIR, LOCK)
    check_layout(params.ab, section, pool)  # no pool byte shared with the A/B study
    seeded_segments(section, pool)  # the pool holds the u's, before any record is built
    record = Run("tasks")
    paraphraser, read, inputs = paraphrasing(params)
    records = build(section, paraphraser)
    ranges = add_seeded(records, section, pool)
    check_ledger(ranges)
    with atomic_dir(out) as tmp:
        to_dataset_dict(records).save_to_disk(str(tmp))
        (tmp / "README.md").write_text(card(section, records), encoding="utf-8")
        write_ledger(tmp / "ledger.json", ranges)
        manifest = build_manifest(
            "tasks",
            read,
            inputs | {"pool": POOL_DIR / POOL_FILE},
            tmp,
            seeds={"tasks": section.seed},
            pool_ranges={
                "source": section.seeded.source,
                "pool_sha256": pool.sha256,
                "ranges": len(ranges),
                "bytes": sum(r.end - r.start for r in ranges),
            },
            extra={"fingerprints": {s: records_fingerprint(r) for s, r in records.items()}},
            numerics=model_numerics(params) if paraphraser else None,
        )
        write_json(tmp / MANIFEST, manifest)
    write_json(reports / "metrics.json", {
        "records": {s: len(r) for s, r in records.items()},
        "families": {s: family_counts(r) for s, r in records.items()},
        "paraphrased": sum(r["paraphrased"] for r in records["train"]),
    })  # fmt: skip
    record.finish()


def paraphrasing(params: Params):
    """(paraphraser or None, the params read, extra inputs): a model in `models.use` rewords
    the train prompts where `tasks.paraphrase.model` names one."""
    read = flatten(params.tasks, "tasks")
    name = params.tasks.paraphrase.model
    if not name:
        return None, read, {}
    from entropy_lab.models import load_profile
    from entropy_lab.tasks.paraphrase import HFParaphraser

    model, tokenizer, resolved = load_profile(name, params.models)
    paraphraser = HFParaphraser(model, tokenizer, params.tasks.paraphrase.max_new_tokens)
    return paraphraser, read | flatten(params.models, "models"), {"paraphrase_model": resolved.path}
