"""Text metrics on hand-made texts with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from entropy_lab.errors import UserError
from entropy_lab.generation import embedders as emb
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
    name, embed = emb.load_embedder(kind, texts)
    v = embed(texts)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1, atol=1e-6)
    assert v[0] @ v[1] > v[0] @ v[2]
    assert name == ("all-MiniLM-L6-v2" if kind == "minilm" else "tfidf-char-2-4")


def test_groups_are_complete_and_ordered():
    rows = [{"condition": "c", "prompt_id": "p", "replicate": r} for r in (3, 0, 2, 1, 4)]
    g = m.groups(rows, 2)
    assert sorted(g) == [("c", "p", 0), ("c", "p", 1)]
    assert [r["replicate"] for r in g[("c", "p", 1)]] == [2, 3]


def test_scorers(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="no safetensors model"):
        emb.load_scorer("reward:nonexistent", {})
    (tmp_path / "inside").symlink_to("/tmp")
    with pytest.raises(UserError, match="resolves outside the repository"):
        emb.load_scorer("reward:inside", {})
    rows = [{"topicality": 0.5}, {"topicality": 0.1}]
    assert emb.load_scorer("topicality", {})(rows).tolist() == [0.5, 0.1]


def _repeats_by_definition(tokens: list, max_n: int = 90) -> tuple[int, int]:
    """(phrase length, times) of the back-to-back repeat at the end with the most repeats, the
    shortest phrase on ties: for each n, the largest k with tokens ending in k copies of the
    last n tokens."""
    best = (0, 0)
    for n in range(1, max_n + 1):
        k = 1
        while len(tokens) >= n * (k + 1) and tokens[len(tokens) - n * (k + 1) :] == tokens[-n:] * (
            k + 1
        ):
            k += 1
        if k > best[1]:
            best = (n, k)
    return best


@pytest.mark.parametrize(
    ("text", "repeats"),
    [
        ("and the lord said and the lord said ", True),  # an 18-byte phrase, twice
        ("and the lord said and the lord said", False),  # the first copy lacks the space
        ("so it was. the end. the end. ", True),  # "the end. " ends it twice (9 tokens)
        ("aaaa", False),  # a 1-token phrase 4 times: too short, too few
        ("a" * 50, False),  # a 1-token phrase (the most repeated) counts only > 50 times
        ("a" * 51, True),
        ("abab", False),  # a 2-token phrase twice: too short
        ("ab" * 27, False),  # the most repeated phrase decides: "ab", 27 times, too short
        ("abc" * 3, True),
        ("abcabd", False),
        ("", False),
    ],
)
def test_repetition_is_holtzmans_rule(text, repeats):
    tokens = list(text.encode())
    assert m.ends_in_repetition(tokens) is repeats
    n, k = _repeats_by_definition(tokens)
    assert repeats == (k > 1 and (n >= 3 or k > 50))


def test_repetition_against_the_definition_on_random_loops():
    rng = np.random.default_rng(0)
    for _ in range(300):
        phrase = rng.integers(0, 3, rng.integers(1, 6)).tolist()
        tokens = rng.integers(0, 3, rng.integers(0, 20)).tolist() + phrase * rng.integers(1, 60)
        n, k = _repeats_by_definition(tokens)
        assert m.ends_in_repetition(tokens) == (k > 1 and (n >= 3 or k > 50))


def test_pool_bleu4_is_nltk_sentence_bleu_with_smoothing_method_1():
    """Hand-computed: BLEU-4 = BP * exp(mean log p_n), p_n the clipped n-gram precision against
    the other texts, a zero count replaced by 0.1 (method 1), BP from the closest length."""
    a, b, c = [1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 9, 9], [7, 8]
    scores = m.pool_bleu4([a, b, c])
    # a against {b, c}: 1-grams 4/6, 2-grams 3/5, 3-grams 2/4, 4-grams 1/3; closest length 6
    want_a = np.exp(np.mean(np.log([4 / 6, 3 / 5, 2 / 4, 1 / 3])))
    # c against {a, b}: no overlap at all (nltk returns 0 when no unigram matches)
    assert scores[0] == pytest.approx(want_a) and scores[2] == 0.0
    # b against {a, c}: 1-grams 4/6 (9 appears twice, never elsewhere), 4-grams 1/3
    assert scores[1] == pytest.approx(np.exp(np.mean(np.log([4 / 6, 3 / 5, 2 / 4, 1 / 3]))))
    # a 2-token text against 6-token ones has no 3- or 4-grams: smoothing gives 0.1/1... and BP
    d = m.pool_bleu4([[1, 2], [1, 2, 3, 4, 5, 6]])[0]
    assert d == pytest.approx(np.exp(1 - 6 / 2) * np.exp(np.mean(np.log([1, 1, 0.1, 0.1]))))
    assert m.pool_bleu4([a, a, a]) == pytest.approx([1.0, 1.0, 1.0])
    assert np.isnan(m.pool_bleu4([a])).all()


def test_reward_model_scorer(tmp_path, monkeypatch):
    import torch
    from transformers import GPT2Config, GPT2ForSequenceClassification

    from entropy_lab.training.pretrain import byte_tokenizer

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=257, n_embd=16, n_layer=1, n_head=2, num_labels=1, pad_token_id=256)
    GPT2ForSequenceClassification(cfg).save_pretrained(tmp_path / "rm", safe_serialization=True)
    byte_tokenizer().save_pretrained(tmp_path / "rm")
    monkeypatch.chdir(tmp_path)
    score = emb.load_scorer("reward:rm", {"p": "Q: "})
    rows = [{"prompt_id": "p", "text": "yes"}, {"prompt_id": "p", "text": "no, never"}]
    s = score(rows)
    assert s.shape == (2,) and np.isfinite(s).all() and s[0] != s[1]
    assert score(rows[:1])[0] == s[0]  # a score does not depend on the other rows
