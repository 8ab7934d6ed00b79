"""Exact answer distributions and the SFT losses, as pure tensor functions.

A record's support (its answers, tokenised, each followed by EOS) is packed as a prefix
trie after the prompt: answers that share a prefix share its tokens, every trie node
attends to the prompt and its own ancestors only (a 4-D attention mask), and its position
continues the prompt's. One forward pass then gives every answer's summed token
log-probability: the first token is scored at the prompt's last position, each later token
at its parent node, and EOS at the answer's last node. No loop over support elements.

The model's distribution over the *full* output space is the support (each answer with its
EOS) plus one "invalid" outcome holding the rest of the mass. The target puts no mass there,
so KL(target || model) over the full space compares the target with the unnormalised answer
probabilities: KL_full = KL_renormalised - log(support mass). Its gradient raises every valid
answer; the renormalised KL's gradient along "raise them all equally" is zero.

Losses, per record, averaged over the batch:
  ce_multisample  hard target: CE of an answer drawn from the target, its summed NLL (EOS
                  included) over the record's mean answer length (a constant per record: a
                  per-token mean, dividing by the drawn answer's own length, is minimised by
                  q ∝ p / length and so favours short answers)
  soft_trie       soft targets: at every trie node the target next-token distribution (the target
                  mass through each child, EOS where an answer ends), CE against it weighted by the
                  node's target mass, per scored token (Baldelli et al. 2026). By the chain rule
                  this equals (KL_full + H(target)) / E_target[tokens]: the exact expectation of
                  what ce_multisample estimates from one draw (up to its normaliser, the mean
                  length of the record's draws, an estimate of E_target[tokens]).
  ce_kl           CE + lambda * KL_full
  kl              KL_full alone
  seeded          the entropy-driven mode: CE on the one right answer for the u in the prompt
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Trie:
    """Answers as a token trie. Node i holds `tokens[i]`; `parents[i]` is -1 for a child of
    the prompt. `ends[k]` is the last node of answer k; `paths[k]` its nodes, root first."""

    tokens: tuple[int, ...]
    parents: tuple[int, ...]
    ends: tuple[int, ...]
    paths: tuple[tuple[int, ...], ...]


def build_trie(answers: list[list[int]]) -> Trie:
    tokens: list[int] = []
    parents: list[int] = []
    children: dict[tuple[int, int], int] = {}
    ends, paths = [], []
    for answer in answers:
        if not answer:
            raise ValueError("an answer must have at least one token")
        node, path = -1, []
        for tok in answer:
            key = (node, tok)
            if key not in children:
                children[key] = len(tokens)
                tokens.append(tok)
                parents.append(node)
            node = children[key]
            path.append(node)
        ends.append(node)
        paths.append(tuple(path))
    return Trie(tuple(tokens), tuple(parents), tuple(ends), tuple(paths))


@dataclass(frozen=True)
class Packed:
    input_ids: list[int]
    position_ids: list[int]
    parents: list[int]  # absolute index of each position's attention parent (-1: none)
    prompt_len: int


def pack(prompt: list[int], trie: Trie) -> Packed:
    """Prompt then trie nodes; node depth d sits at position prompt_len + d - 1."""
    p = len(prompt)
    depth: list[int] = []
    for parent in trie.parents:
        depth.append(1 if parent < 0 else depth[parent] + 1)
    return Packed(
        input_ids=list(prompt) + list(trie.tokens),
        position_ids=list(range(p)) + [p + d - 1 for d in depth],
        parents=list(range(-1, p - 1)) + [p - 1 if q < 0 else p + q for q in trie.parents],
        prompt_len=p,
    )


def _ancestry(x: Packed) -> np.ndarray:
    """(T, T) trie-node mask: each node, itself and its ancestors (parents precede children)."""
    p, t = x.prompt_len, len(x.input_ids) - x.prompt_len
    anc = np.zeros((t, t), dtype=bool)
    for i in range(t):
        parent = x.parents[p + i] - p
        if parent >= 0:
            anc[i] = anc[parent]
        anc[i, i] = True
    return anc


def first_fit(lengths: list[int], row_length: int) -> tuple[list[tuple[int, int]], list[int]]:
    """Each sequence's (row, offset) when packed first fit, longest first, into rows of
    `row_length` (at least the longest); and each row's filled length."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    fill: list[int] = []
    place: list[tuple[int, int]] = [(0, 0)] * len(lengths)
    for i in order:
        row = next((r for r, used in enumerate(fill) if used + lengths[i] <= row_length), None)
        if row is None:
            fill.append(0)
            row = len(fill) - 1
        place[i] = (row, fill[row])
        fill[row] += lengths[i]
    return place, fill


def cheapest_row_length(lengths: list[int], width: int) -> int:
    """The row length, from the longest sequence to twice it, at which a first-fit packing
    costs the fewest multiply-adds: rows x L x (6 width + L), a layer's dense (12 d^2 per
    position) plus attention (2 L d) work over 2d. A batch of short sequences shares rows; a
    support trie longer than the model's context gets a row that others can share too."""
    longest = max(lengths)

    def cost(length: int) -> int:
        return len(first_fit(lengths, length)[1]) * length * (6 * width + length)

    return min(range(longest, 2 * longest + 1, 8), key=cost)


def batch_tensors(
    packed: list[Packed], pad_id: int, row_length: int = 0
) -> tuple[dict[str, torch.Tensor], list[tuple[int, int]]]:
    """Pack sequences into rows (`first_fit`) with a block-diagonal tree mask.

    Several records share a row when they fit in `row_length` (at least the longest), so the
    batch carries little padding; positions restart for each record. Returns the model
    inputs and each sequence's (row, offset).
    """
    lengths = [len(x.input_ids) for x in packed]
    length = max(row_length, max(lengths))
    place, fill = first_fit(lengths, length)
    rows = len(fill)
    ids = torch.full((rows, length), pad_id, dtype=torch.long)
    pos = torch.zeros((rows, length), dtype=torch.long)
    allow = torch.zeros((rows, 1, length, length), dtype=torch.bool)
    causal = torch.ones(length, length, dtype=torch.bool).tril()
    for x, (row, off) in zip(packed, place, strict=True):
        n, p = len(x.input_ids), x.prompt_len
        ids[row, off : off + n] = torch.tensor(x.input_ids)
        pos[row, off : off + n] = torch.tensor(x.position_ids)
        allow[row, 0, off : off + p, off : off + p] = causal[:p, :p]  # the prompt is causal
        allow[row, 0, off + p : off + n, off : off + p] = True  # every trie node sees the prompt
        allow[row, 0, off + p : off + n, off + p : off + n] = torch.from_numpy(_ancestry(x))
    for row, used in enumerate(fill):
        idx = torch.arange(used, length)
        allow[row, 0, idx, idx] = True  # padding sees only itself (no all-masked rows)
    return {"input_ids": ids, "position_ids": pos, "attention_mask": allow}, place


def scoring_plan(packed: Packed, trie: Trie, eos: int) -> tuple[list[int], list[int], list[int]]:
    """Where each answer's tokens (then EOS) are scored: (positions, token ids, tokens per answer).

    The first token is scored at the prompt's last position, each later token at its
    parent node, and EOS at the answer's last node."""
    p = packed.prompt_len
    positions, targets, lengths = [], [], []
    for path, end in zip(trie.paths, trie.ends, strict=True):
        positions += [p - 1 if trie.parents[n] < 0 else p + trie.parents[n] for n in path] + [
            p + end
        ]
        targets += [trie.tokens[n] for n in path] + [eos]
        lengths.append(len(path) + 1)
    return positions, targets, lengths


def answer_token_logprobs(
    logprobs: torch.Tensor, packed: Packed, trie: Trie, eos: int
) -> list[torch.Tensor]:
    """Per answer: the log-probabilities of its tokens and of the EOS that ends it, from one
    gather over `logprobs` ((L, V) log-softmax of one packed sequence)."""
    positions, targets, lengths = scoring_plan(packed, trie, eos)
    return list(torch.split(logprobs[positions, targets], lengths))


def sequence_scores(token_logprobs: list[torch.Tensor]) -> torch.Tensor:
    """Each answer's log-probability under the model (its tokens and EOS), unnormalised."""
    flat = torch.cat(token_logprobs)
    owner = torch.repeat_interleave(
        torch.arange(len(token_logprobs), device=flat.device),
        torch.tensor([t.numel() for t in token_logprobs], device=flat.device),
    )
    return torch.zeros(len(token_logprobs), dtype=flat.dtype, device=flat.device).index_add(
        0, owner, flat
    )


def support_log_probs(token_logprobs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(log q over the support, renormalised; log of the mass the model puts on the support)."""
    scores = sequence_scores(token_logprobs)
    mass = torch.logsumexp(scores, dim=0)
    return scores - mass, mass


def kl_target_model(target: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """KL(target || model) = sum p (log p - log q), terms with p = 0 omitted. With `log_q` the
    unnormalised scores, this is KL_full (the model's leftover mass is the invalid outcome)."""
    keep = target > 0
    p = target[keep]
    return torch.sum(p * (torch.log(p) - log_q[keep]))


def trie_edges(trie: Trie, target: torch.Tensor) -> tuple[list[int], list[int], torch.Tensor]:
    """Every edge of the trie with its target mass: (parent node, token, mass), where the
    parent is -1 for the prompt, a node's own edge carries the mass of the answers through it,
    and an EOS edge (token -1) at an answer's last node carries that answer's mass."""
    through = torch.zeros(len(trie.tokens), dtype=target.dtype)
    for k, path in enumerate(trie.paths):
        through[list(path)] += target[k]
    parents = list(trie.parents) + list(trie.ends)
    tokens = list(trie.tokens) + [-1] * len(trie.ends)
    return parents, tokens, torch.cat([through, target])


def soft_trie_loss(
    logprobs: torch.Tensor, packed: Packed, trie: Trie, target: torch.Tensor, eos: int
) -> torch.Tensor:
    """Token-level soft-target CE over the whole trie, per scored token: sum over nodes n of
    P(n) * CE(target next-token distribution at n, model's), over sum_n P(n) (root included).
    `logprobs` is the (L, V) log-softmax of one packed sequence."""
    p = packed.prompt_len
    parents, tokens, mass = trie_edges(trie, target.to(logprobs.dtype).cpu())
    positions = [p - 1 if q < 0 else p + q for q in parents]
    ids = [eos if t < 0 else t for t in tokens]
    mass = mass.to(logprobs.device)
    nll = -(mass * logprobs[positions, ids]).sum()
    node_mass = 1.0 + mass[: len(trie.tokens)].sum()  # the prompt's position, then each node
    return nll / node_mass


def total_variation(target: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.sum(torch.abs(target - log_q.exp()))


def record_loss(
    kind: str, lam: float, ce: torch.Tensor, kl: torch.Tensor | None, soft: torch.Tensor | None
) -> torch.Tensor:
    """One record's loss; records without an exact support contribute CE only."""
    if kind in ("ce_multisample", "seeded") or kl is None:
        return ce
    if kind == "ce_kl":
        return ce + lam * kl
    if kind == "soft_trie":
        return soft
    return kl
