"""Support scoring and losses: exact against brute force on tiny models, gradients by finite
differences, tries with shared prefixes."""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from entropy_lab.evaluation import distribution as dist
from entropy_lab.training.losses import (
    answer_token_logprobs,
    batch_tensors,
    build_trie,
    cheapest_row_length,
    first_fit,
    kl_target_model,
    pack,
    record_loss,
    sequence_scores,
    soft_trie_loss,
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


def packed_logprobs(model, prompts, answer_sets, row_length=0):
    """Per sequence: (its (L, V) log-softmax, its packing, its trie)."""
    tries = [build_trie(a) for a in answer_sets]
    packs = [pack(p, t) for p, t in zip(prompts, tries, strict=True)]
    batch, place = batch_tensors(packs, pad_id=EOS, row_length=row_length)
    logp = torch.log_softmax(model(**batch).logits, -1)
    return [
        (logp[row, off : off + len(x.input_ids)], x, t)
        for x, t, (row, off) in zip(packs, tries, place, strict=True)
    ]


def packed_scores(model, prompts, answer_sets, row_length=0):
    return [
        answer_token_logprobs(lp, x, t, EOS)
        for lp, x, t in packed_logprobs(model, prompts, answer_sets, row_length)
    ]


# packed lengths of the first training batch of the default profile: CE (one answer per
# record) and the support tries (ce_kl, soft_trie), whose longest exceeds the 256 positions
CE_BATCH = [78, 86, 99, 105, 107, 113, 119, 119, 119, 149, 151, 157, 162, 163, 165, 185]
TRIE_BATCH = [92, 102, 110, 111, 115, 119, 121, 142, 145, 149, 151, 163, 199, 219, 254, 374]


def slots(lengths: list[int], row_length: int) -> int:
    return row_length * len(first_fit(lengths, row_length)[1])


@pytest.mark.parametrize("lengths", [CE_BATCH, TRIE_BATCH, [5], [30, 30, 30, 29]])
def test_rows_never_overlap_and_the_cheapest_length_pads_less(lengths):
    length = cheapest_row_length(lengths, width=128)
    assert length >= max(lengths)
    place, fill = first_fit(lengths, length)
    for row in {r for r, _ in place}:
        spans = sorted((o, o + n) for (r, o), n in zip(place, lengths, strict=True) if r == row)
        assert spans[0][0] == 0 and spans[-1][1] == fill[row] <= length
        assert all(a[1] == b[0] for a, b in pairwise(spans))  # back to back, no overlap
    # rows of the model's context (or of the longest trie), the previous rule, pad more
    assert slots(lengths, length) <= slots(lengths, max(256, max(lengths)))


def test_the_default_batches_pack_tighter_than_rows_of_the_context():
    assert slots(CE_BATCH, cheapest_row_length(CE_BATCH, 128)) < slots(CE_BATCH, 256)  # 2184 < 2304
    assert slots(TRIE_BATCH, cheapest_row_length(TRIE_BATCH, 128)) < slots(TRIE_BATCH, 374)


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


def test_full_space_kl_is_renormalised_kl_minus_log_mass():
    p = np.array([0.5, 0.3, 0.2, 0.0])
    q_unnorm = np.array([0.05, 0.2, 0.01, 0.04])  # the model puts 0.7 outside the support
    mass = q_unnorm.sum()
    p_full, q_full = dist.full_space(p, q_unnorm / mass, mass)
    assert p_full.tolist() == [0.5, 0.3, 0.2, 0.0, 0.0] and q_full[-1] == pytest.approx(0.7)
    kl_renorm = dist.kl(p, q_unnorm / mass)
    assert dist.kl(p_full, q_full) == pytest.approx(kl_renorm - math.log(mass), rel=1e-12)
    by_hand = 0.5 * math.log(0.5 / 0.05) + 0.3 * math.log(0.3 / 0.2) + 0.2 * math.log(0.2 / 0.01)
    assert dist.kl(p_full, q_full) == pytest.approx(by_hand, rel=1e-12)
    # the torch loss on unnormalised log-probabilities is the same number
    kl_t = kl_target_model(torch.tensor(p), torch.log(torch.tensor(q_unnorm)))
    assert kl_t.item() == pytest.approx(by_hand, rel=1e-12)
    # full-space TVD counts the invalid mass: half of |p - q| over the support, plus 0.7 / 2
    assert dist.tvd(p_full, q_full) == pytest.approx(0.5 * (0.45 + 0.1 + 0.19 + 0.04 + 0.7))


def test_full_space_kl_raises_support_mass_where_renormalised_kl_cannot():
    """Target = the model's own renormalised distribution: the renormalised KL is 0 and its
    gradient vanishes, so no step can move the support mass; the full-space KL is -log(mass)
    and a few steps raise it."""
    target = None
    masses = {}
    for loss_kind in ("renormalised", "full"):
        torch.manual_seed(3)
        model = AutoModelForCausalLM.from_config(tiny_config("gpt2")).double().eval()
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        trace = []
        for _ in range(6):
            scores = sequence_scores(packed_scores(model, [PROMPT], [ANSWERS])[0])
            log_q, log_mass = scores - torch.logsumexp(scores, 0), torch.logsumexp(scores, 0)
            if target is None:
                target = log_q.detach().exp()
            trace.append(log_mass.exp().item())
            loss = kl_target_model(target, log_q if loss_kind == "renormalised" else scores)
            opt.zero_grad()
            loss.backward()
            opt.step()
        masses[loss_kind] = trace
    assert masses["renormalised"][-1] == pytest.approx(masses["renormalised"][0], rel=1e-6)
    assert masses["full"][-1] > 1.5 * masses["full"][0]


def test_soft_trie_loss_is_node_weighted_soft_target_ce_and_the_chain_rule_holds():
    torch.manual_seed(2)
    model = AutoModelForCausalLM.from_config(tiny_config("gpt2")).double().eval()
    target = torch.tensor([0.3, 0.1, 0.05, 0.25, 0.0, 0.3], dtype=torch.float64)
    with torch.no_grad():
        ((logp, packed, trie),) = packed_logprobs(model, [PROMPT], [ANSWERS])
        soft = soft_trie_loss(logp, packed, trie, target, EOS).item()
        # brute force: every prefix of every answer is a node; its soft target from the answers
        prefixes = {tuple(a[:i]) for a in ANSWERS for i in range(len(a) + 1)}
        total, weight = 0.0, 0.0
        for prefix in prefixes:
            nxt: dict[int, float] = {}
            for a, p in zip(ANSWERS, target.tolist(), strict=True):
                if tuple(a[: len(prefix)]) == prefix:
                    tok = a[len(prefix)] if len(a) > len(prefix) else EOS
                    nxt[tok] = nxt.get(tok, 0.0) + p
            node_mass = sum(nxt.values())
            if node_mass == 0:  # "20" has target 0: its node weighs nothing
                continue
            ids = torch.tensor([PROMPT + list(prefix)])
            lq = torch.log_softmax(model(input_ids=ids).logits[0, -1], -1)
            total += node_mass * sum(-(m / node_mass) * lq[t].item() for t, m in nxt.items())
            weight += node_mass
        assert soft == pytest.approx(total / weight, rel=1e-9)
        # chain rule: node-weighted CE = sequence CE = KL_full + H(target), per expected token
        scores = sequence_scores(answer_token_logprobs(logp, packed, trie, EOS))
        h = -sum(p * math.log(p) for p in target.tolist() if p > 0)
        lengths = torch.tensor([len(a) + 1 for a in ANSWERS], dtype=torch.float64)
        kl_full = kl_target_model(target, scores).item()
        assert soft == pytest.approx((kl_full + h) / (target @ lengths).item(), rel=1e-9)


def test_record_loss_variants():
    ce, kl, soft = torch.tensor(2.0), torch.tensor(0.5), torch.tensor(0.75)
    assert record_loss("ce_multisample", 3.0, ce, kl, soft).item() == 2.0
    assert record_loss("ce_kl", 3.0, ce, kl, soft).item() == 3.5
    assert record_loss("kl", 3.0, ce, kl, soft).item() == 0.5
    assert record_loss("soft_trie", 3.0, ce, kl, soft).item() == 0.75
    assert record_loss("ce_kl", 3.0, ce, None, None).item() == 2.0  # no exact support: CE only
    assert record_loss("soft_trie", 3.0, ce, None, None).item() == 2.0
