"""Holtzman et al. 2020's text statistics per arm ("The Curious Case of Neural Text
Degeneration", Table 1; code: github.com/ari-holtzman/degen, metrics/): repetition %,
Self-BLEU4 and the Zipf coefficient. Descriptive: one number per arm, no test."""

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


def arm_statistics(samples: pd.DataFrame) -> pd.DataFrame:
    """Per (model, length, arm): the numbers in Holtzman et al.'s Table 1. Descriptive: each is
    one number per arm (Self-BLEU4 averages groups of one text per prompt, Zipf pools the
    arm's texts), so no CI; the per-sample
    repetition flag is tested with the other metrics."""
    rows = []
    for (model, length, arm), s in samples.groupby(["model", "length", "condition"], sort=True):
        rows.append(
            {
                "model": model,
                "length": int(length),
                "arm": arm,
                "n": len(s),
                "repetition_pct": 100 * float(s.repetition.mean()),
                "self_bleu4": float(s.self_bleu4.mean()),
                "zipf": zipf_coefficient(s.token_ids),
                "mean_tokens": float(s.n_tokens.mean()),
            }
        )
    return pd.DataFrame(rows)
