"""The entropy-driven mode: the prompt carries a uniform u drawn from the entropy pool, and the
one right answer is the target's inverse CDF at u (support in the family's canonical order).

A model that learns the mapping is a deterministic sampler whose randomness comes only from
the pool: with u uniform, its answers follow the target exactly (up to the grid of u's
decimal digits). u is read from four pool bytes, w little-endian: u = floor(w 10^d / 2^32) /
10^d, so each of the 10^d values has probability within 10^d / 2^32 of 10^-d.
"""

from __future__ import annotations

from fractions import Fraction

from entropy_lab.tasks.base import Target


def u_from_word(word: int, digits: int) -> Fraction:
    """A uniform on the grid {0, 10^-d, ..., 1 - 10^-d} from one 32-bit word."""
    scale = 10**digits
    return Fraction(word * scale >> 32, scale)


def u_text(u: Fraction, digits: int) -> str:
    return f"0.{int(u * 10**digits):0{digits}d}"


def inverse_cdf(target: Target, u: Fraction) -> str:
    """The support element i with cdf[i-1] <= u < cdf[i] (exact for Fraction probabilities; a
    float probability is compared through its exact binary value). u at or beyond the last
    cumulative sum (float rounding) gives the last element with positive probability."""
    cdf = Fraction(0)
    for answer, p in zip(target.support, target.probs, strict=True):
        cdf += Fraction(p)
        if p > 0 and u < cdf:
            return answer
    last = max(i for i, p in enumerate(target.probs) if p > 0)
    return target.support[last]


def seeded_prompt(prompt: str, hint: str, u: str) -> str:
    """The record's prompt with u placed before its answer-format hint."""
    body = prompt.removesuffix(f" {hint}")
    return f"{body} Use u = {u}. {hint}"


def expand(records, per_record: int | None = None) -> list[dict]:
    """One point-mass record per (record, u): the prompt carries u, the one right answer is the
    inverse CDF at u (for training and for the training curve; `per_record` caps the u's)."""
    out = []
    for r in records:
        pairs = list(zip(r["seeded_u"], r["seeded_answers"], strict=True))[:per_record]
        for j, (u, answer) in enumerate(pairs):
            out.append(
                r
                | {
                    "id": f"{r['id']}/u{j}",
                    "prompt": seeded_prompt(r["prompt"], r["answer_format"], u),
                    "support": [answer],
                    "probs": [1.0],
                    "draws": [answer],
                }
            )
    return out
