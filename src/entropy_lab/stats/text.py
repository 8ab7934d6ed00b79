"""Holtzman et al. 2020's text statistics per arm ("The Curious Case of Neural Text
Degeneration", Table 1; code: github.com/ari-holtzman/degen, metrics/): repetition %,
Self-BLEU4 and the Zipf coefficient; and how many texts are empty. Descriptive, no test;
Self-BLEU4 with a CI over its groups (one text per prompt each)."""

from __future__ import annotations

import numpy as np
import pandas as pd

ZIPF_TOP = 5000  # ranks in Holtzman et al.'s Zipf fit (their zipf.py --N)


def zipf_coefficient(token_lists) -> float:
    """Holtzman et al.'s Zipf coefficient: minus the slope of log count on log rank over the
    ZIPF_TOP most frequent tokens (degen metrics/zipf.py)."""
    from collections import Counter

    from scipy import stats

    counts = Counter(int(t) for tokens in token_lists for t in tokens)
    top = np.array(sorted(counts.values(), reverse=True)[:ZIPF_TOP], dtype=float)
    if len(top) < 2 or np.ptp(top) == 0:
        return float("nan")
    return float(-stats.linregress(np.log(np.arange(1, len(top) + 1)), np.log(top)).slope)


def arm_statistics(samples: pd.DataFrame, seed: int, min_groups: int) -> pd.DataFrame:
    """Per (model, length, arm): the numbers in Holtzman et al.'s Table 1, and the share of
    empty texts (the model stopped at once). Self-BLEU4 is a mean over groups (one text per
    prompt, of one replicate index): its CI is a bootstrap over those groups, from at least
    `min_groups` of them (fixed42 has one group: no CI). Zipf pools the arm's texts: one
    number, no CI."""
    from entropy_lab.stats.inference import bca_interval, keyed_rng

    rows = []
    for (model, length, arm), s in samples.groupby(["model", "length", "condition"], sort=True):
        groups = s.groupby("replicate").self_bleu4.mean().to_numpy(float)
        ci = [None, None]
        if len(groups) >= min_groups and np.ptp(groups) > 0:
            rng = keyed_rng(seed, "self_bleu", model, length, arm)
            ci = list(bca_interval((groups,), np.mean, 2000, 0.05, rng))
        rows.append(
            {
                "model": model,
                "length": int(length),
                "arm": arm,
                "n": len(s),
                "empty_pct": 100 * float((s.n_tokens == 0).mean()),
                "repetition_pct": 100 * float(s.repetition.mean()),
                "self_bleu4": float(s.self_bleu4.mean()),
                "self_bleu4_groups": len(groups),
                "self_bleu4_low": ci[0],
                "self_bleu4_high": ci[1],
                "zipf": zipf_coefficient(s.token_ids),
                "mean_tokens": float(s.n_tokens.mean()),
            }
        )
    return pd.DataFrame(rows)
