"""Support scoring and losses: exact against brute force on tiny models, gradients by finite
differences, tries with shared prefixes."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import AutoModelForCausalLM

from entropy_lab.training.losses import (
    answer_token_logprobs,
    batch_tensors,
    build_trie,
    kl_target_model,
    pack,
    record_loss,
    support_log_probs,
    total_variation,
)
from tests.conftest import ARCHS, tiny_config

EOS = 256
PROMPT = [ord(c) for c in "Roll 1d20.\nAnswer: "]
# Answers that share prefixes: "1" is a prefix of "12", and "12" of "120"; "2" and "20".
ANSWERS = [[ord(c) for c in a] for a in ("1", "12", "120", "2", "20", "7")]


def test_trie_shares_prefixes():
    trie = build_trie(ANSWERS)
    assert len(trie.tokens) == 6  # 1, 12, 120, 2, 20, 7: one node per distinct prefix
    assert trie.paths[2] == (trie.paths[0][0], trie.paths[1][1], trie.ends[2])
    assert trie.parents[trie.paths[1][1]] == trie.ends[0]
    packed = pack(PROMPT, trie)
    p = len(PROMPT)
    assert packed.position_ids[p:] == [p, p + 1, p + 2, p, p + 1, p]  # depth continues the prompt
    with pytest.raises(ValueError):
        build_trie([[]])


def brute_force(model, prompt, answer):
    """log P(answer + EOS | prompt) from one ordinary causal forward pass."""
    ids = torch.tensor([prompt + answer])
    logp = torch.log_softmax(model(input_ids=ids).logits[0], -1)
    total = sum(logp[len(prompt) - 1 + i, tok] for i, tok in enumerate(answer))
    return total + logp[len(prompt) + len(answer) - 1, EOS]


def packed_scores(model, prompts, answer_sets, row_length=0):
    tries = [build_trie(a) for a in answer_sets]
    packs = [pack(p, t) for p, t in zip(prompts, tries, strict=True)]
    batch, place = batch_tensors(packs, pad_id=EOS, row_length=row_length)
    logp = torch.log_softmax(model(**batch).logits, -1)
    return [
        answer_token_logprobs(logp[row, off : off + len(x.input_ids)], x, t, EOS)
        for x, t, (row, off) in zip(packs, tries, place, strict=True)
    ]


@pytest.mark.parametrize("row_length", [0, 64])  # 0: a row per sequence; 64: both share a row
@pytest.mark.parametrize("arch", ARCHS)
def test_packed_support_scores_equal_brute_force(arch, row_length):
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(tiny_config(arch)).eval()
    prompts = [PROMPT, PROMPT[:7]]  # different lengths: padded, or packed after one another
    answer_sets = [ANSWERS, ANSWERS[3:]]
    with torch.no_grad():
        scores = packed_scores(model, prompts, answer_sets, row_length)
        for prompt, answers, toks in zip(prompts, answer_sets, scores, strict=True):
            for answer, t in zip(answers, toks, strict=True):
                assert t.sum().item() == pytest.approx(
                    brute_force(model, prompt, answer).item(), abs=1e-4
                )


def test_kl_equals_brute_force_and_its_gradient_passes_finite_differences():
    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_config(tiny_config("gpt2")).double().eval()  # no dropout
    target = torch.tensor([0.3, 0.1, 0.05, 0.25, 0.0, 0.3], dtype=torch.float64)

    def kl_packed():
        log_q, _ = support_log_probs(packed_scores(model, [PROMPT], [ANSWERS])[0])
        return kl_target_model(target, log_q)

    with torch.no_grad():
        s = torch.stack([brute_force(model, PROMPT, a) for a in ANSWERS])
        q = torch.softmax(s, 0)
        expected = sum(
            p * math.log(p / qq) for p, qq in zip(target.tolist(), q.tolist(), strict=True) if p > 0
        )
        assert kl_packed().item() == pytest.approx(expected, rel=1e-9)

    weight = model.transformer.h[0].attn.c_attn.weight
    kl_packed().backward()
    analytic = weight.grad.clone()
    eps = 1e-6
    for idx in [(0, 0), (3, 17), (31, 95), (10, 40)]:
        with torch.no_grad():
            weight[idx] += eps
            up = kl_packed().item()
            weight[idx] -= 2 * eps
            down = kl_packed().item()
            weight[idx] += eps
        assert analytic[idx].item() == pytest.approx((up - down) / (2 * eps), rel=1e-4, abs=1e-8)


def test_kl_and_tvd_known_values():
    p = torch.tensor([0.5, 0.5, 0.0])
    log_q = torch.log(torch.tensor([0.25, 0.25, 0.5]))
    assert kl_target_model(p, log_q).item() == pytest.approx(math.log(2))
    assert total_variation(p, log_q).item() == pytest.approx(0.5)
    assert kl_target_model(p, torch.log(torch.tensor([0.5, 0.5, 1e-30]))).item() == pytest.approx(
        0.0, abs=1e-6
    )


def test_record_loss_variants():
    ce, kl = torch.tensor(2.0), torch.tensor(0.5)
    assert record_loss("ce_multisample", 3.0, ce, kl).item() == 2.0
    assert record_loss("ce_kl", 3.0, ce, kl).item() == 3.5
    assert record_loss("kl", 3.0, ce, kl).item() == 0.5
    assert record_loss("ce_kl", 3.0, ce, None).item() == 2.0  # no exact support: CE only
