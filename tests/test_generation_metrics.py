"""Text metrics on hand-made texts with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from entropy_lab.errors import UserError
from entropy_lab.generation import metrics as m


def test_repeat_rate_and_distinct():
    loop = ["the", "dragon", "the", "dragon", "the", "dragon"]
    assert m.repeat_rate(loop, 2) == pytest.approx(1 - 2 / 5)  # (the dragon), (dragon the)
    assert m.distinct(loop, 1) == pytest.approx(2 / 6)
    assert m.repeat_rate(["a"], 3) == 0.0
    assert math.isnan(m.distinct([], 1))


@pytest.mark.parametrize(
    ("seq", "want"),
    [
        ([1, 2, 3, 4], 0),
        ([1, 2, 3, 1, 2, 3], 3),
        ([5, 5, 5, 5], 3),  # overlapping occurrences count
        ([9, 1, 2, 7, 1, 2], 2),
        ([], 0),
    ],
)
def test_longest_repeated_suffix(seq, want):
    assert m.longest_repeated_suffix(seq) == want


def test_longest_repeated_suffix_against_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(200):
        s = rng.integers(0, 3, rng.integers(1, 30)).tolist()
        brute = max(
            (k for k in range(1, len(s)) if any(s[i : i + k] == s[-k:] for i in range(len(s) - k))),
            default=0,
        )
        assert m.longest_repeated_suffix(s) == brute


def test_prompt_echo():
    prompt = "Write a short poem about a winter forest."
    assert m.prompt_echo(prompt, prompt) == 1.0
    assert m.prompt_echo(prompt, "Snow falls. a winter forest sleeps") == pytest.approx(3 / 8)
    assert m.prompt_echo(prompt, "") == 0.0


def test_accuracy():
    assert m.accuracy("it is Twelve, I think", r"\b(12|twelve)\b") == 1.0
    assert m.accuracy("it is 112", r"\b(12|twelve)\b") == 0.0
    assert math.isnan(m.accuracy("anything", None))


def test_self_bleu_and_embedding_diversity():
    same = ["the cat sat on the mat"] * 3
    assert m.self_bleu(same) == pytest.approx(1.0)
    assert m.self_bleu(["alpha beta gamma delta", "one two three four", "red green blue"]) == 0.0
    v = np.eye(3)
    assert m.embedding_diversity(v) == pytest.approx(1.0)
    assert m.embedding_diversity(np.ones((3, 2)) / np.sqrt(2)) == pytest.approx(0.0)


@pytest.mark.parametrize("kind", ["tfidf", "minilm"])
def test_embedders_are_unit_vectors_and_semantic_enough(kind):
    texts = ["a poem about a winter forest", "snowy pine trees in winter", "pizza with pineapple"]
    name, embed = m.load_embedder(kind, texts)
    v = embed(texts)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1, atol=1e-6)
    assert v[0] @ v[1] > v[0] @ v[2]
    assert name == ("all-MiniLM-L6-v2" if kind == "minilm" else "tfidf-char-2-4")


def test_groups_are_complete_and_ordered():
    rows = [{"condition": "c", "prompt_id": "p", "replicate": r} for r in (3, 0, 2, 1, 4)]
    g = m.groups(rows, 2)
    assert sorted(g) == [("c", "p", 0), ("c", "p", 1)]
    assert [r["replicate"] for r in g[("c", "p", 1)]] == [2, 3]


def test_scorer_names_are_checked():
    with pytest.raises(UserError, match=r"ab.metrics.scorer = 'beauty': allowed: repeat_rate"):
        m.load_scorer("beauty", {})
    with pytest.raises(UserError, match="no safetensors model"):
        m.load_scorer("reward:/nonexistent", {})
    rows = [{"topicality": 0.5}, {"topicality": 0.1}]
    assert m.load_scorer("topicality", {})(rows).tolist() == [0.5, 0.1]


def test_reward_model_scorer(tmp_path):
    import torch
    from transformers import GPT2Config, GPT2ForSequenceClassification

    from entropy_lab.training.pretrain import byte_tokenizer

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=257, n_embd=16, n_layer=1, n_head=2, num_labels=1, pad_token_id=256)
    GPT2ForSequenceClassification(cfg).save_pretrained(tmp_path, safe_serialization=True)
    byte_tokenizer().save_pretrained(tmp_path)
    score = m.load_scorer(f"reward:{tmp_path}", {"p": "Q: "})
    rows = [{"prompt_id": "p", "text": "yes"}, {"prompt_id": "p", "text": "no, never"}]
    s = score(rows)
    assert s.shape == (2,) and np.isfinite(s).all() and s[0] != s[1]
    assert score(rows[:1])[0] == s[0]  # a score does not depend on the other rows
