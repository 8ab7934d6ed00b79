"""The A/B design: which samples exist, where each one's randomness comes from, and the
`ab-generate` stage that produces them.

A sample is (model, length, arm, prompt, replicate), where an arm is a condition or one side
of an A/A pair. Its randomness is a pure function of that identity: a PRNG keyed by it, or a
pool range allocated to it. All (model, length) stages lay the pool out the same way from
params, so their ranges never overlap.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from entropy_lab.entropy.layout import ab_experiment, ab_experiments
from entropy_lab.entropy.pool import WORD_BYTES, Pool, Range, allocate, base_offsets
from entropy_lab.errors import UserError
from entropy_lab.generation.params import ABSection, condition_kind
from entropy_lab.generation.sampler import prng_bytes, seed_from, uniforms

log = logging.getLogger(__name__)

AB_DIR = Path("data/ab")
SAMPLES_FILE = "samples.parquet"
SAMPLE_COLUMNS = (
    "sample_id",
    "model",
    "length",
    "condition",
    "prompt_id",
    "replicate",
    "token_ids",
    "text",
    "logprobs",
    "entropies",
    "stopped",
)  # what ab-metrics reads
FIXED_SEED = 42


@dataclass(frozen=True)
class Spec:
    """One sample to generate and where its randomness comes from (exactly one of the three)."""

    sample_id: str
    model: str
    length: int
    condition: str
    prompt_id: str
    replicate: int
    seed: int | None = None  # fixed or listed seeds
    prng_key: str | None = None
    pool_range: Range | None = None

    @property
    def kind(self) -> str:
        return condition_kind(self.condition)[0]


def plan(ab: ABSection, model: str, length: int, pool: Pool | None) -> list[Spec]:
    """Every sample of one (model, length) stage; checks the pool is big enough first."""
    layout = ab_experiments(ab)
    if layout:
        if pool is None:
            raise UserError("conditions entropy_seed/entropy_stream need the entropy pool")
        base_offsets(layout, pool.segments)
    g = ab.generate
    specs = []
    for c in g.arms():
        source = condition_kind(c)[1]
        for p_index, prompt in enumerate(ab.prompts):
            for r in range(g.replicates_of(c)):
                sid = f"{model}/{length}/{c}/{prompt.id}/{r}"
                kw: dict = {}
                if source == "fixed":
                    kw["seed"] = FIXED_SEED
                elif source == "listed":
                    kw["seed"] = g.listed_seeds[r]
                elif source == "prng":
                    kw["prng_key"] = f"{g.seed}/{sid}"
                else:
                    index = p_index * g.replicates_of(c) + r
                    kw["pool_range"] = allocate(
                        layout, pool.segments, ab_experiment(model, length, c), index, 0
                    )
                specs.append(Spec(sid, model, length, c, prompt.id, r, **kw))
    return specs


def randomness(spec: Spec, pool: Pool | None) -> tuple[int | None, np.ndarray | None]:
    """(seed, uniforms): a seed for seed conditions, one uniform per token for streams."""
    if spec.seed is not None:
        return spec.seed, None
    n = WORD_BYTES * (1 if spec.kind == "seed" else spec.length)
    data = pool.read(spec.pool_range) if spec.pool_range else prng_bytes(spec.prng_key, n)
    if spec.kind == "seed":
        return seed_from(data), None
    return None, uniforms(data)


def encode_prompts(tokenizer, ab: ABSection) -> dict[str, list[int]]:
    """Prompt token ids by prompt id; chat models get their chat template."""
    from entropy_lab.models import prompt_ids

    return {p.id: prompt_ids(tokenizer, p.text, 10**9) for p in ab.prompts}


def generate(
    model, tokenizer, ab: ABSection, specs: list[Spec], pool: Pool | None, batch_size: int
):
    """Generate `specs` (any subset, any order): rows of the samples table, in spec order."""
    from tqdm import tqdm

    from entropy_lab.generation.sampler import Sampling, sample_seeded, sample_streams

    g = ab.generate
    prompts = encode_prompts(tokenizer, ab)
    rows: dict[str, dict] = {}

    def add(spec: Spec, seed: int | None, out) -> None:
        r = spec.pool_range
        rows[spec.sample_id] = {
            **{
                k: getattr(spec, k)
                for k in ("sample_id", "model", "length", "condition", "prompt_id", "replicate")
            },
            "seed": seed,
            "prng_key": spec.prng_key,
            "pool_start": r.start if r else None,
            "pool_end": r.end if r else None,
            "prompt_ids": prompts[spec.prompt_id],
            "token_ids": out.token_ids,
            "text": tokenizer.decode(out.token_ids, skip_special_tokens=True),
            "logprobs": out.logprobs,
            "entropies": out.entropies,
            "stopped": out.stopped,
        }

    seeded = [s for s in specs if s.kind == "seed"]
    streams = sorted(
        (s for s in specs if s.kind == "stream"), key=lambda s: len(prompts[s.prompt_id])
    )
    with tqdm(total=len(specs), desc="ab-generate", disable=None) as bar:
        for spec in seeded:
            seed, _ = randomness(spec, pool)
            s = Sampling(g.temperature, g.top_k, g.top_p, spec.length)
            add(spec, seed, sample_seeded(model, tokenizer, prompts[spec.prompt_id], seed, s))
            bar.update()
        for i in range(0, len(streams), batch_size):
            batch = streams[i : i + batch_size]
            u = np.stack([randomness(spec, pool)[1] for spec in batch])
            s = Sampling(g.temperature, g.top_k, g.top_p, batch[0].length)
            outs = sample_streams(model, tokenizer, [prompts[b.prompt_id] for b in batch], u, s)
            for spec, out in zip(batch, outs, strict=True):
                add(spec, None, out)
            bar.update(len(batch))
    return [rows[s.sample_id] for s in specs]


def write_samples(path: Path, rows: list[dict]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("sample_id", pa.string()),
            ("model", pa.string()),
            ("length", pa.int32()),
            ("condition", pa.string()),
            ("prompt_id", pa.string()),
            ("replicate", pa.int32()),
            ("seed", pa.int64()),
            ("prng_key", pa.string()),
            ("pool_start", pa.int64()),
            ("pool_end", pa.int64()),
            ("prompt_ids", pa.list_(pa.int32())),
            ("token_ids", pa.list_(pa.int32())),
            ("text", pa.string()),
            ("logprobs", pa.list_(pa.float32())),
            ("entropies", pa.list_(pa.float32())),
            ("stopped", pa.bool_()),
        ]
    )
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
