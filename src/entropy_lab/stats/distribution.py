"""Do two arms write different texts? Two-sample tests on whole texts, not on one summary.

Each text is a feature vector: its sentence embedding (what ab-metrics stored) or its word
1-2-gram profile. The test statistic is the energy distance between the arms (Szekely & Rizzo
2004), computed within each prompt and averaged over prompts, with labels permuted within
prompt: an exact test of "the arms' texts are exchangeable within each prompt". The energy
distance is the MMD of the distance kernel, so it needs no bandwidth. No maintained library
offers a stratified version (scipy, dcor and hyppo permute over the whole sample).

Its power is measured, not assumed: relabel the pooled texts within prompt at random, shift
the pseudo-treatment arm by `shift` within-prompt SDs along a random direction (drawn from
the test's keyed generator, so independent of the data: the SD of the projections on it is
an unbiased unit that does not grow with the dimension, where the sample's first principal
axis, fitted to the same points, has an SD inflated about twofold in 384 dimensions), and
count how often the statistic exceeds the permutation critical value. MAUVE (Pillutla et al.
2021, PyPI `mauve-text`) on the same embeddings, centred within prompt (pooled, its clusters
would follow the prompts and see no shift between arms), is reported beside it as a
descriptive divergence, with no test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

FAISS_POINTS_PER_CENTROID = 39  # faiss k-means warns below this many points per cluster


@dataclass(frozen=True)
class EnergyTest:
    statistic: float  # energy distance (V-statistic), mean over prompts
    p: float  # permutation p-value, (1 + #{T* >= T}) / (1 + B)
    null: np.ndarray  # the B permuted statistics
    shifted: np.ndarray  # the same relabellings with the planted shift

    def power(self, alpha: float) -> float:
        """Share of planted-shift relabellings the test would declare at `alpha`."""
        if not np.isfinite(alpha):
            return float("nan")
        b = len(self.null)
        # p* <= alpha  <=>  1 + #{null >= T*} <= alpha (1 + B)
        allowed = int(np.floor(alpha * (1 + b))) - 1
        if allowed < 0:
            return 0.0
        exceed = np.sort(self.null)[::-1]
        critical = exceed[allowed] if allowed < b else -np.inf
        return float(np.mean(self.shifted > critical))


def ngram_profiles(texts: Sequence[str]) -> np.ndarray:
    """Word 1-2-gram counts per text, L2-normalised (a text with no words is the zero vector)."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.preprocessing import normalize

    vectorizer = CountVectorizer(ngram_range=(1, 2), token_pattern=r"(?u)\b\w+\b")
    try:
        counts = vectorizer.fit_transform(texts)
    except ValueError:  # no word in any text
        return np.zeros((len(texts), 1))
    return normalize(counts.astype(np.float64)).toarray()


def _random_axis(
    features: np.ndarray, strata: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, float]:
    """A random unit direction, and the SD of the within-prompt-centred features along it."""
    axis = rng.standard_normal(features.shape[1])
    axis /= np.linalg.norm(axis)
    projection = centre_within(features, strata) @ axis
    dof = max(len(features) - len(np.unique(strata)), 1)
    return axis, float(np.sqrt((projection**2).sum() / dof))


def centre_within(features: np.ndarray, strata: np.ndarray) -> np.ndarray:
    """The features minus their prompt's mean (both arms pooled)."""
    centred = np.array(features, dtype=np.float64)
    for s in np.unique(strata):
        rows = strata == s
        centred[rows] -= centred[rows].mean(axis=0)
    return centred


def _energy(t: np.ndarray, d: np.ndarray, cross: np.ndarray) -> np.ndarray:
    """Energy distance (V-statistic) per row of 0/1 labels `t`: `d` within an arm, `cross`
    from each treated row to each control row."""
    c = 1 - t
    nt, nc = t[0].sum(), c[0].sum()
    return (
        2 * ((t @ cross) * c).sum(-1) / (nt * nc)
        - ((t @ d) * t).sum(-1) / nt**2
        - ((c @ d) * c).sum(-1) / nc**2
    )


def energy_test(
    features: np.ndarray,
    treated: np.ndarray,
    strata: np.ndarray,
    n_permutations: int,
    rng: np.random.Generator,
    shift: float,
) -> EnergyTest:
    """Stratified energy-distance permutation test of treated vs control rows of `features`,
    with the statistics of a planted shift of `shift` SDs for the power."""
    features = np.asarray(features, dtype=np.float64)
    treated = np.asarray(treated, dtype=bool)
    axis, sd = _random_axis(features, strata, rng)
    projection = features @ axis
    delta = shift * sd
    observed = np.zeros(1)
    null = np.zeros(n_permutations)
    shifted = np.zeros(n_permutations)
    prompts = [s for s in np.unique(strata) if 0 < treated[strata == s].sum() < (strata == s).sum()]
    for s in prompts:
        rows = np.flatnonzero(strata == s)
        x = features[rows]
        norms = (x**2).sum(axis=1)
        sq = np.maximum(norms[:, None] + norms[None, :] - 2 * x @ x.T, 0.0)
        np.fill_diagonal(sq, 0.0)
        d = np.sqrt(sq)
        a = projection[rows]
        # distance between row i moved into the treatment arm (+delta along the axis) and row j
        moved = np.sqrt(np.maximum(sq + 2 * delta * (a[:, None] - a[None, :]) + delta**2, 0.0))
        labels = treated[rows]
        perms = rng.permuted(np.tile(labels, (n_permutations, 1)), axis=1).astype(np.float64)
        observed += _energy(labels[None, :].astype(np.float64), d, d)
        null += _energy(perms, d, d)
        shifted += _energy(perms, d, moved)
    k = max(len(prompts), 1)
    observed, null, shifted = observed / k, null / k, shifted / k
    tol = 1e-12 * max(1.0, abs(observed[0]))
    p = (1 + np.sum(null >= observed[0] - tol)) / (1 + n_permutations)
    return EnergyTest(float(observed[0]), float(p), null, shifted)


def mauve_score(p_features: np.ndarray, q_features: np.ndarray, seed: int) -> float:
    """MAUVE between two sets of feature vectors (1: indistinguishable, -> 0: disjoint).

    MAUVE's default quantisation is n/10 k-means buckets; faiss needs 39 points per centroid,
    so at our arm sizes the bucket count is lowered to what the pooled points support (NaN
    below 78 texts, too few for two buckets).
    faiss runs single-threaded here so that the clustering, and the score, are reproducible.
    """
    import logging

    # faiss logs each CPU-specific build it fails to import before the one it loads
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    import faiss
    import mauve

    n = len(p_features) + len(q_features)
    if n < 2 * FAISS_POINTS_PER_CENTROID:
        return float("nan")  # too few texts for even two buckets
    buckets = max(
        2, min(round(min(len(p_features), len(q_features)) / 10), n // FAISS_POINTS_PER_CENTROID)
    )
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        out = mauve.compute_mauve(
            p_features=np.asarray(p_features, dtype=np.float64),
            q_features=np.asarray(q_features, dtype=np.float64),
            num_buckets=buckets,
            seed=seed,
            verbose=False,
        )
    finally:
        faiss.omp_set_num_threads(threads)
    return float(out.mauve)
