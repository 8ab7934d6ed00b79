"""Where every reader of the entropy pool reads, laid out from params alone.

Two stages read the pool: the A/B study's pool conditions (`ab-generate`, one experiment per
model, length and condition, laid out from the start of their source's segment) and the tasks'
entropy-driven mode (`tasks`, its u's laid out at the end of its source's segment). Each of
the two stages lays out the whole pool, both readers, and checks it before any work
(`check_layout`), so no byte is handed out twice, whichever stage runs first; the report
checks the ledgers the stages wrote once more.
"""

from __future__ import annotations

from entropy_lab.entropy.pool import (
    WORD_BYTES,
    Experiment,
    Pool,
    Range,
    Segment,
    check_ledger,
)
from entropy_lab.errors import UserError
from entropy_lab.generation.params import ABSection, condition_kind
from entropy_lab.tasks.params import TasksSection

EVAL_SPLITS = ("validation", "test_template", "test_family")  # the splits that get seeded u's
SEEDED_TRAIN, SEEDED_EVAL = "tasks/seeded/train", "tasks/seeded/eval"


def ab_experiment(model: str, length: int, condition: str) -> str:
    return f"ab/{model}/{length}/{condition}"


def ab_experiments(ab: ABSection) -> list[Experiment]:
    """The A/B study's pool layout: every pool condition of every stage, in params order."""
    out = []
    for model in ab.models:
        for length in ab.lengths:
            for c in ab.generate.conditions:
                kind, source = condition_kind(c)
                if source == "pool":
                    size = WORD_BYTES * (1 if kind == "seed" else length)
                    samples = len(ab.prompts) * ab.generate.replicates_of(c)
                    name = ab_experiment(model, length, c)
                    out.append(Experiment(name, ab.generate.source, samples, 1, size))
    return out


def seeded_experiments(tasks: TasksSection) -> list[Experiment]:
    """The entropy-driven mode's layout: u's for every train record, and for the first
    `eval_records` records of each evaluation split."""
    s = tasks.seeded
    return [
        Experiment(SEEDED_TRAIN, s.source, tasks.counts.train, 1, WORD_BYTES * s.train_draws),
        Experiment(
            SEEDED_EVAL, s.source, len(EVAL_SPLITS) * s.eval_records, 1, WORD_BYTES * s.eval_draws
        ),
    ]


def seeded_segments(tasks: TasksSection, pool: Pool) -> list[Segment]:
    """The part of the pool the entropy-driven mode reads: the tail of its source's segment, as
    long as its layout needs; one line if the source is too small for it alone."""
    need = sum(e.size for e in seeded_experiments(tasks))
    seg = next((g for g in pool.segments if g.source == tasks.seeded.source), None)
    if seg is None or need > seg.end - seg.start:
        have = 0 if seg is None else seg.end - seg.start
        raise UserError(
            f"entropy pool source {tasks.seeded.source!r}: need {need} bytes, pool has {have}"
        )
    return [Segment(seg.source, seg.end - need, seg.end)]


def blocks(ab: ABSection, tasks: TasksSection, pool: Pool) -> list[Range]:
    """Every experiment's whole block of pool bytes, both readers, where each reader would put
    it (whether or not it fits: each stage checks its own fit)."""
    out = []
    cursor = {s.source: s.start for s in pool.segments}  # the A/B study: from the start
    for e in ab_experiments(ab):
        if e.source in cursor:
            out.append(Range(e.name, 0, 0, cursor[e.source], cursor[e.source] + e.size))
            cursor[e.source] += e.size
    seeded = seeded_experiments(tasks)  # the entropy-driven tasks: up to the end
    seg = next((g for g in pool.segments if g.source == tasks.seeded.source), None)
    if seg is not None:
        start = seg.end - sum(e.size for e in seeded)
        for e in seeded:
            out.append(Range(e.name, 0, 0, start, start + e.size))
            start += e.size
    return out


def check_layout(ab: ABSection, tasks: TasksSection, pool: Pool) -> None:
    """One line, before any work, if two readers' blocks would share a pool byte."""
    try:
        check_ledger(blocks(ab, tasks, pool))
    except UserError as exc:
        raise UserError(
            f"entropy pool layout: {exc}; the A/B pool conditions (ab.*) and the entropy-driven "
            "tasks (tasks.counts.train, tasks.seeded) would read the same bytes: shrink one, "
            "use another source, or harvest a larger pool"
        ) from None
