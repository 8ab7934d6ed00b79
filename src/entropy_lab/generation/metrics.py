"""Text metrics of generated samples (the `ab-metrics` stage's science).

Per sample: loops (repeated n-gram rate, longest repeated suffix, and Holtzman et al.'s
repetition: the text ends in a phrase repeated consecutively), prompt echo, distinct-n, number
of generated tokens and early stop, mean token log-prob and entropy, topicality (embedding
similarity to the prompt) and accuracy where the prompt has a checkable answer. Per group of K
replicates of one prompt and condition: self-BLEU, embedding diversity and the best-of-K score
(the write-up's rejection-sampling view) under a pluggable scorer.

Beside them, for Holtzman et al. 2020 ("The Curious Case of Neural Text Degeneration",
Table 1; code: github.com/ari-holtzman/degen, metrics/): each sample's BLEU-4 against the
other texts of its group, one text per prompt of the same arm and replicate index (their
Self-BLEU4, nltk with smoothing method 1, on the model's token ids as their code does; they
compare 1,000 texts, and the score grows with the number compared, so ours, over as many texts
as there are prompts, is comparable between our arms, not with their table), stored with the token ids, text and embedding that ab-analyze's arm
statistics (Self-BLEU4, Zipf coefficient) and distribution tests read.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from entropy_lab.errors import UserError
from entropy_lab.generation.embedders import Embed
from entropy_lab.generation.params import MATCH_SECONDS, ABSection, MetricsSection, answer_found

log = logging.getLogger(__name__)

METRICS_DIR = Path("data/ab_metrics")
HOLTZMAN_MAX_N = 90  # longest repeated phrase their repetition.py looks for (tokens)
HOLTZMAN_MIN_PHRASE = 3  # a phrase of fewer tokens counts only if repeated more than ...
HOLTZMAN_MIN_REPEATS = 50  # ... this many times


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def ngrams(seq: Sequence, n: int) -> list[tuple]:
    return [tuple(seq[i : i + n]) for i in range(len(seq) - n + 1)]


def repeat_rate(seq: Sequence, n: int) -> float:
    """Share of n-grams that repeat an earlier one (0: no loop; -> 1: one n-gram over and over)."""
    grams = ngrams(seq, n)
    return 1 - len(set(grams)) / len(grams) if grams else 0.0


def distinct(seq: Sequence, n: int) -> float:
    """Distinct-n: unique n-grams over all n-grams (NaN when there are none)."""
    grams = ngrams(seq, n)
    return len(set(grams)) / len(grams) if grams else float("nan")


def longest_repeated_suffix(seq: Sequence) -> int:
    """Length of the longest suffix that also occurs ending earlier: a loop's length at the end.

    The Z-function of the reversed sequence: z[i] is how far the reversed text starting at i
    agrees with its start, i.e. how long a suffix also ends i tokens before the end.
    """
    s = list(reversed(seq))
    n = len(s)
    z = [0] * n
    left = right = 0
    for i in range(1, n):
        if i < right:
            z[i] = min(right - i, z[i - left])
        while i + z[i] < n and s[z[i]] == s[i + z[i]]:
            z[i] += 1
        if i + z[i] > right:
            left, right = i, i + z[i]
    return max(z[1:], default=0)


def ends_in_repetition(tokens: Sequence) -> bool:
    """Holtzman et al.'s repetition: the text ends in a phrase repeated consecutively.

    Their rule (degen metrics/repetition.py): for each phrase length n <= 90, count how many
    times the last n tokens repeat back to back at the end; take the n with the most repeats
    (the shortest on ties); the text repeats if that count is > 1 and the phrase has >= 3
    tokens or repeats > 50 times. Their "repetition %" is the share of texts that do.
    """
    rev = list(reversed(tokens))
    best_n, best = 0, 0
    for n in range(1, HOLTZMAN_MAX_N + 1):
        count = 1
        while rev[n * count : n * (count + 1)] == rev[:n] and len(rev) >= n * (count + 1):
            count += 1
        if count > best:
            best_n, best = n, count
    return best > 1 and (best_n >= HOLTZMAN_MIN_PHRASE or best > HOLTZMAN_MIN_REPEATS)


def pool_bleu4(token_lists: Sequence[Sequence[int]]) -> list[float]:
    """Each text's BLEU-4 against all the others (Holtzman et al.'s Self-BLEU4 is the mean):
    nltk `sentence_bleu`, uniform weights over 1-4-grams, smoothing method 1, token ids."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    if len(token_lists) < 2:
        return [float("nan")] * len(token_lists)
    smooth = SmoothingFunction().method1
    refs = [[int(x) for x in t] for t in token_lists]
    return [
        float(
            sentence_bleu(
                refs[:i] + refs[i + 1 :],
                refs[i],
                weights=(0.25, 0.25, 0.25, 0.25),
                smoothing_function=smooth,
            )
        )
        for i in range(len(refs))
    ]


def prompt_echo(prompt: str, text: str) -> float:
    """Longest run of the prompt's words repeated in the output, as a share of the prompt."""
    a, b = words(prompt), words(text)
    if not a:
        return 0.0
    match = difflib.SequenceMatcher(None, a, b, autojunk=False).find_longest_match()
    return match.size / len(a)


def accuracy(text: str, answer: str | None) -> float:
    """1.0 if the output matches the answer regex (case-insensitive), NaN if not checkable; a
    pattern that passed the params probes but backtracks on this text is one line, in seconds."""
    if answer is None:
        return float("nan")
    try:
        return float(answer_found(answer, text))
    except TimeoutError:
        raise UserError(
            f"ab.prompts answer {answer!r}: matching a {len(text)}-character sample took over "
            f"{MATCH_SECONDS} s (catastrophic backtracking); allowed: a regular expression "
            "without nested repetition"
        ) from None


def sample_metrics(row: dict, prompt: str, answer: str | None, n: int) -> dict[str, float]:
    """Every per-sample metric but topicality (which needs embeddings)."""
    w, logp, ent = words(row["text"]), row["logprobs"], row["entropies"]
    tokens = [int(t) for t in row["token_ids"]]
    return {
        "repeat_rate": repeat_rate(w, n),
        "longest_repeat": float(longest_repeated_suffix(tokens)),
        "repetition": float(ends_in_repetition(tokens)),
        "echo": prompt_echo(prompt, row["text"]),
        "distinct_1": distinct(w, 1),
        "distinct_2": distinct(w, 2),
        "n_tokens": float(len(tokens)),
        "early_stop": float(row["stopped"]),
        # per generated token, the stopping end-of-text included: defined for an empty text too
        "mean_logprob": float(np.mean(logp)) if len(logp) else float("nan"),
        "mean_entropy": float(np.mean(ent)) if len(ent) else float("nan"),
        "accuracy": accuracy(row["text"], answer),
    }


def self_bleu(texts: Sequence[str]) -> float:
    """Mean BLEU (0-1) of each text against the others of its group: high = the group repeats itself."""
    from sacrebleu.metrics import BLEU

    bleu = BLEU(effective_order=True)
    scores = [
        bleu.sentence_score(t, [o for j, o in enumerate(texts) if j != i]).score / 100
        for i, t in enumerate(texts)
    ]
    return float(np.mean(scores))


def embedding_diversity(vectors: np.ndarray) -> float:
    """1 - mean pairwise cosine similarity of unit vectors (0: identical texts)."""
    k = len(vectors)
    sims = vectors @ vectors.T
    return float(1 - (sims.sum() - np.trace(sims)) / (k * (k - 1)))


def groups(rows: list[dict], k: int) -> dict[tuple[str, str, int], list[dict]]:
    """Complete groups of k consecutive replicates per (condition, prompt)."""
    by: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        by.setdefault((r["condition"], r["prompt_id"]), []).append(r)
    out = {}
    for (cond, pid), members in by.items():
        members.sort(key=lambda r: r["replicate"])
        for g in range(len(members) // k):
            out[(cond, pid, g)] = members[g * k : (g + 1) * k]
    return out


def compute(
    rows: list[dict], ab: ABSection, embedder: tuple[str, Embed], scorer
) -> tuple[list, list]:
    """(per-sample metric rows, per-group metric rows) for one stage's samples.

    Per-sample rows also carry what ab-analyze's arm statistics and distribution tests read:
    the token ids, the text, the embedding and the text's BLEU-4 against the other texts of its
    group (one text per prompt, of the same arm and replicate index).
    """
    from tqdm import tqdm

    m: MetricsSection = ab.metrics
    prompts = {p.id: p for p in ab.prompts}
    keys = ("sample_id", "model", "length", "condition", "prompt_id", "replicate")
    out = []
    with tqdm(total=2 * len(rows), desc="ab-metrics", disable=None) as bar:
        for r in rows:
            p = prompts[r["prompt_id"]]
            out.append({k: r[k] for k in keys} | sample_metrics(r, p.text, p.answer, m.ngram))
            bar.update()
        # Self-BLEU4 grows with the number of texts it compares, so every score compares a
        # fixed set: one text per prompt (same replicate index), in every arm alike
        by_group: dict[tuple[str, int], list[int]] = {}
        for i, r in enumerate(rows):
            by_group.setdefault((r["condition"], r["replicate"]), []).append(i)
        for idx in by_group.values():
            for i, b in zip(idx, pool_bleu4([rows[i]["token_ids"] for i in idx]), strict=True):
                out[i]["self_bleu4"] = b
            bar.update(len(idx))
    _, embed = embedder
    vectors = embed([r["text"] for r in rows])
    prompt_vectors = dict(zip(prompts, embed([p.text for p in ab.prompts]), strict=True))
    for o, r, v in zip(out, rows, vectors, strict=True):
        o["topicality"] = float(v @ prompt_vectors[o["prompt_id"]])
        o |= {
            "token_ids": [int(t) for t in r["token_ids"]],
            "text": r["text"],
            "embedding": v.astype(np.float32),
        }
    scores = scorer(out)
    index = {r["sample_id"]: i for i, r in enumerate(rows)}
    grouped = []
    for (cond, pid, g), members in sorted(groups(rows, m.best_of_k).items()):
        idx = [index[r["sample_id"]] for r in members]
        grouped.append(
            {
                "model": rows[0]["model"],
                "length": rows[0]["length"],
                "condition": cond,
                "prompt_id": pid,
                "group": g,
                "self_bleu": self_bleu([r["text"] for r in members]),
                "embedding_diversity": embedding_diversity(vectors[idx]),
                "best_score": float(scores[idx].max()),
            }
        )
    return out, grouped
