"""Stage `ab-generate@<model>-<length>`: every A/B sample of one model and generation length,
to data/ab/<model>/<length>/ (samples, pool ledger, manifest).

Under torchrun each process generates every world-th sample; rank 0 gathers and writes.
Samples do not depend on how they are split, so the output is the same for any world size."""

from __future__ import annotations

import logging
from pathlib import Path

from entropy_lab.config import Params
from entropy_lab.entropy.layout import check_layout
from entropy_lab.entropy.pool import LOCK, POOL_DIR, Pool, check_ledger, write_ledger
from entropy_lab.errors import UserError
from entropy_lab.generation.design import (
    AB_DIR,
    FIXED_SEED,
    SAMPLES_FILE,
    encode_prompts,
    generate,
    plan,
    write_samples,
)
from entropy_lab.generation.params import condition_kind
from entropy_lab.models import chat_facts, load_profile, model_positions
from entropy_lab.parallel import rank_world
from entropy_lab.provenance import MANIFEST, atomic_dir, build_manifest, write_json
from entropy_lab.schema import flatten
from entropy_lab.stages.common import Run, model_numerics, one_of, outputs

log = logging.getLogger(__name__)


def run(params: Params, model_name: str, length: int, root: Path = Path(".")) -> None:
    ab = params.ab
    one_of("--model", model_name, ab.models, "ab.models")
    one_of("--length", length, ab.lengths, "ab.lengths")
    out = root / AB_DIR / model_name / str(length)
    outputs(out)
    pool = None
    if any(condition_kind(c)[1] == "pool" for c in ab.generate.conditions):
        pool = Pool.load(root / POOL_DIR, root / LOCK)
        check_layout(ab, params.tasks, pool)  # no pool byte shared with the tasks' u's
    specs = plan(ab, model_name, length, pool)  # fails here, before any model is loaded
    record = Run(f"ab-generate@{model_name}-{length}")
    rank, world = rank_world()
    model, tokenizer, resolved = load_profile(model_name, params.models, root / "models")
    check_positions(model, tokenizer, ab, model_name, length)
    rows = generate(model, tokenizer, ab, specs[rank::world], pool, ab.generate.batch_size)
    if world > 1 and (rows := gather(rows, specs, rank, world)) is None:
        return  # rank 0 writes
    ranges = [s.pool_range for s in specs if s.pool_range]
    check_ledger(ranges)
    inputs = {"model": resolved.path} | ({"pool": root / POOL_DIR / "pool.bin"} if pool else {})
    run_id = {"model": model_name, "length": length, "world_size": world}
    write_samples_dir(out, rows, ranges, params, run_id, inputs, pool, chat_facts(tokenizer))
    log.info("wrote %d samples to %s", len(rows), out)
    record.finish(root)


def gather(rows: list, specs: list, rank: int, world: int) -> list | None:
    """Every process's rows on rank 0, in spec order (None on the other ranks)."""
    import torch.distributed as dist

    gathered = [None] * world
    dist.gather_object(rows, gathered if rank == 0 else None, dst=0)
    if rank != 0:
        return None
    by_id = {r["sample_id"]: r for part in gathered for r in part}
    return [by_id[s.sample_id] for s in specs]


def write_samples_dir(out, rows, ranges, params, run_id: dict, inputs, pool, chat: dict) -> None:
    """samples.parquet, the pool ledger and the manifest, atomically; `run_id`: the model,
    length and torchrun world size; `chat`: the chat template the prompts were built with
    (`models.chat_facts`)."""
    ab = params.ab
    read = flatten(ab.generate, "ab.generate") | {
        "models.threads": params.models.threads,
        "ab.prompts": [p.model_dump() for p in ab.prompts],
        "model": run_id["model"],
        "length": run_id["length"],
    }
    with atomic_dir(out) as tmp:
        write_samples(tmp / SAMPLES_FILE, rows)
        write_ledger(tmp / "ledger.json", ranges)
        manifest = build_manifest(
            "ab-generate",
            read,
            inputs,
            tmp,
            seeds={
                "prng": ab.generate.seed,
                "listed": ab.generate.listed_seeds,
                "fixed": FIXED_SEED,
            },
            pool_ranges={
                "source": ab.generate.source,
                "pool_sha256": pool.sha256 if pool else None,
                "ranges": len(ranges),
                "bytes": sum(r.end - r.start for r in ranges),
            },
            extra={"samples": len(rows), "world_size": run_id["world_size"]} | chat,
            numerics=model_numerics(params),
        )
        write_json(tmp / MANIFEST, manifest)


def check_positions(model, tokenizer, ab, model_name: str, length: int) -> None:
    """The longest prompt plus `length` new tokens must fit in the model's positions."""
    longest = max(map(len, encode_prompts(tokenizer, ab).values()))
    positions = model_positions(model)
    if positions is not None and longest + length > positions:
        raise UserError(
            f"ab.lengths: {length} new tokens after a {longest}-token prompt exceed "
            f"{model_name}'s {positions} positions"
        )
