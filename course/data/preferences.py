"""A tiny preference-learning world on Part 04's synthetic language (units 4.8, 4.10, 4.11).

Everything is deterministic given the seeds and runs in well under a second on two cores.

Prompts and responses
---------------------
A *prompt* is a topic id ``x`` in {0 animals, 1 food, 2 travel, 3 music} (the request "write a
sentence about topic x"). A *response* is a sequence of token ids of
:func:`course.data.language.language` of fixed width ``T`` (default :data:`MAX_LEN` = 16):
words, then ``<eos>`` (id 5), then ``<pad>`` (id 0) up to the width. ``mask`` (bool, same shape)
is True on the words and on the ``<eos>``, False on the padding. A response that reaches the
width without an ``<eos>`` is *truncated* (its mask is all True) and is never grammatical.

Policy
------
:class:`Policy` is an autoregressive model conditioned on the prompt: a table of logits
``logits[x, prev, next]`` (shape (4, 97, 97), an ``nn.Parameter``), so
``p(y_t | y_<t, x) = softmax(logits[x, y_{t-1}])`` with ``y_0 = <bos>``. The special tokens
other than ``<eos>`` can never be emitted (their logits are masked out in every call).
:func:`pretrained_policy` fits the table by counting bigrams (with additive smoothing) in
:func:`course.data.language.topic_task` sentences of each topic, so the pre-trained policy
writes mostly on-topic, often grammatical, sometimes broken sentences. ``policy.sample``
draws responses, ``policy.log_probs`` gives their per-token log-probabilities
(differentiable), ``policy.frozen_copy()`` the reference policy of RLHF.

The hidden "true" preference
----------------------------
:func:`true_reward` scores a response ``y`` to prompt ``x`` (float32)::

    r*(x, y) = 2.0 * grammatical(y) + 0.5 * min(on(x, y), 2) - 0.5 * off(x, y) - 0.1 * len(y)

``grammatical``: 1 if the response ends with ``<eos>`` and its words are a sentence of the
language (:meth:`Language.is_grammatical`), else 0. ``on``: the number of nouns and adjectives
of topic x (capped at 2: "two topic words make the point"); ``off``: the number of nouns and
adjectives of the other topics; ``len``: the number of words (the ``<eos>`` not counted).
Grammaticality is not a function of the bag of words, and the cap makes "more topic words" a
feature a bag-of-words reward model can over-reward: the preference is learnable but not
exactly, which leaves room for reward hacking.

Noisy human-like labels
-----------------------
- :func:`bradley_terry_labels`: ``P(a preferred to b) = sigmoid((r*_a - r*_b) / temperature)``.
- :func:`plackett_luce_rankings`: a full ranking of K responses, best first, drawn from the
  Plackett-Luce model with scores ``r* / temperature`` (by the Gumbel-max trick: sort
  ``r*/temperature + Gumbel noise`` in decreasing order). For K = 2 it is Bradley-Terry.
The default noise level is :data:`NOISE_TEMPERATURE` = 0.5.

Data sets and the reward model
------------------------------
- :func:`comparisons` ``(n, seed)``: n prompts, two policy samples each, labelled by
  Bradley-Terry: ``chosen`` / ``rejected`` responses.
- :func:`rankings` ``(n, k, seed)``: n prompts, k policy samples each, ordered best first by a
  Plackett-Luce labeller.
- :class:`RewardModel`: a bag of token embeddings plus a prompt embedding, a tanh layer and a
  linear head: ``(prompts (...), tokens (..., T), mask (..., T)) -> rewards (...)``.
- :func:`train_reward_model`: full-batch Adam on a loss of the (N, K) reward table of ranked
  responses (best first), so both ``preference_loss`` (K = 2) and ``ranking_loss`` plug in.
- :func:`pair_accuracy`: on held-out pairs of policy samples, the fraction a reward model
  orders like the *true* reward (pairs with equal true reward are skipped).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import lru_cache

import torch
from torch import Tensor, nn

from course.data.language import language, topic_task

MAX_LEN = 16
"""Default response width T (words + <eos> + padding)."""
N_PROMPTS = 4
"""Number of prompts (one per topic)."""
NOISE_TEMPERATURE = 0.5
"""Default labeller noise: the temperature of the Bradley-Terry / Plackett-Luce labels."""

_L = language()
V = _L.vocab_size
PAD, BOS, EOS = _L.PAD, _L.BOS, _L.EOS
_FORBIDDEN_IDS = [i for i in _L.special_ids if i != EOS]


def _word_topic_table() -> Tensor:
    """(V,) topic id of each token's word, -1 for words without a topic and for specials."""
    t = torch.full((V,), -1, dtype=torch.long)
    for i in _L.word_ids:
        topic = _L.topic(_L.tokens[i])
        if topic is not None:
            t[i] = topic
    return t


_TOPIC_OF_ID = _word_topic_table()


# -- policy --------------------------------------------------------------------------------------


class Policy(nn.Module):
    """Prompt-conditioned bigram policy ``p(y_t | y_{t-1}, x) = softmax(logits[x, y_{t-1}])``.

    ``logits``: ``nn.Parameter`` (N_PROMPTS, V, V) float32 (V = 97), trainable. Tokens
    ``<pad> <cls> <sep> <mask> <bos>`` are masked out of every next-token distribution.
    """

    def __init__(self, logits: Tensor):
        super().__init__()
        self.logits = nn.Parameter(logits.clone())
        allowed = torch.zeros(V, dtype=torch.bool)
        allowed[list(_L.word_ids)] = True
        allowed[EOS] = True
        self.register_buffer("allowed", allowed)

    def next_log_probs(self, prompts: Tensor, prev: Tensor) -> Tensor:
        """(B,) prompts, (B, T) previous tokens -> (B, T, V) next-token log-probabilities."""
        z = self.logits[prompts[:, None], prev]
        z = z.masked_fill(~self.allowed, float("-inf"))  # type: ignore[operator]
        return torch.log_softmax(z, dim=-1)

    def log_probs(self, prompts: Tensor, tokens: Tensor, mask: Tensor | None = None) -> Tensor:
        """Per-token log-probabilities ``log p(y_t | y_{t-1}, x)``, shape (B, T), float32.

        prompts (B,) long, tokens (B, T) long (a batch of responses), mask (B, T) bool or None.
        Differentiable in ``logits``. Positions where ``mask`` is False hold 0 (when mask is
        None, positions holding ``<pad>`` are treated as padding).
        """
        if mask is None:
            mask = tokens != PAD
        prev = torch.cat([torch.full_like(tokens[:, :1], BOS), tokens[:, :-1]], dim=1)
        lp = self.next_log_probs(prompts, prev)
        safe = torch.where(mask, tokens, torch.full_like(tokens, EOS))
        out = lp.gather(-1, safe[..., None]).squeeze(-1)
        return out.masked_fill(~mask, 0.0)

    @torch.no_grad()
    def sample(self, prompts: Tensor, generator: torch.Generator | None = None,
               max_len: int = MAX_LEN, temperature: float = 1.0) -> tuple[Tensor, Tensor]:
        """Sample one response per prompt: ``(tokens (B, max_len) long, mask (B, max_len) bool)``.

        Draws, in order, one ``torch.multinomial`` call per position over the batch, with
        ``generator`` (on the CPU). After ``<eos>`` the response is padded with ``<pad>``.
        """
        b = prompts.shape[0]
        tokens = torch.full((b, max_len), PAD, dtype=torch.long)
        mask = torch.zeros((b, max_len), dtype=torch.bool)
        prev = torch.full((b,), BOS, dtype=torch.long)
        alive = torch.ones(b, dtype=torch.bool)
        for t in range(max_len):
            z = self.logits.detach()[prompts, prev].float().cpu() / temperature
            z = z.masked_fill(~self.allowed.cpu(), float("-inf"))  # type: ignore[operator]
            nxt = torch.multinomial(torch.softmax(z, -1), 1, generator=generator).squeeze(-1)
            tokens[:, t] = torch.where(alive, nxt, torch.full_like(nxt, PAD))
            mask[:, t] = alive
            alive = alive & (nxt != EOS)
            prev = nxt
        return tokens, mask

    def frozen_copy(self) -> Policy:
        """An independent copy with ``requires_grad`` False (the RLHF reference policy)."""
        ref = copy.deepcopy(self)
        ref.requires_grad_(False)
        return ref


@lru_cache(maxsize=8)
def _bigram_logits(seed: int, n_sentences: int, smoothing: float) -> Tensor:
    sents, topics = topic_task(n_sentences, seed=seed, max_depth=0)
    xs, prev, nxt = [], [], []
    for words, x in zip(sents, topics):
        ids = [BOS] + _L.encode(words) + [EOS]
        xs += [x] * (len(ids) - 1)
        prev += ids[:-1]
        nxt += ids[1:]
    counts = torch.full((N_PROMPTS, V, V), float(smoothing))
    idx = (torch.tensor(xs), torch.tensor(prev), torch.tensor(nxt))
    counts.index_put_(idx, torch.ones(len(xs)), accumulate=True)
    return counts.log()


def pretrained_policy(seed: int = 0, n_sentences: int = 4000, smoothing: float = 0.05) -> Policy:
    """A fresh :class:`Policy` whose table is the log of smoothed bigram counts of
    ``topic_task(n_sentences, seed, max_depth=0)`` per topic (cached; about 0.3 s first)."""
    return Policy(_bigram_logits(int(seed), int(n_sentences), float(smoothing)))


def sample_prompts(n: int, generator: torch.Generator | None = None) -> Tensor:
    """``n`` prompts (topic ids), uniform on {0, 1, 2, 3}, long (one ``torch.randint`` draw)."""
    return torch.randint(0, N_PROMPTS, (n,), generator=generator)


# -- the hidden true preference ------------------------------------------------------------------


def words_of(tokens: Tensor, mask: Tensor) -> list[list[str]]:
    """The words of each response (``<eos>`` and padding dropped). tokens, mask: (B, T)."""
    out = []
    for row, m in zip(tokens.tolist(), mask.tolist()):
        out.append([_L.tokens[i] for i, keep in zip(row, m) if keep and i != EOS])
    return out


def is_grammatical(tokens: Tensor, mask: Tensor) -> Tensor:
    """(B,) bool: the response ends with ``<eos>`` and its words form a grammatical sentence."""
    ended = ((tokens == EOS) & mask).any(-1).tolist()
    return torch.tensor([e and _L.is_grammatical(w)
                         for e, w in zip(ended, words_of(tokens, mask))], dtype=torch.bool)


def true_reward(prompts: Tensor, tokens: Tensor, mask: Tensor) -> Tensor:
    """The hidden preference r*(x, y) of the module docstring, (B,) float32 (CPU).

    prompts (B,) long, tokens (B, T) long, mask (B, T) bool; any leading shape (...) with
    prompts (...) and tokens (..., T) also works.
    """
    lead = prompts.shape
    prompts = prompts.reshape(-1).cpu()
    tokens = tokens.reshape(-1, tokens.shape[-1]).cpu()
    mask = mask.reshape(-1, mask.shape[-1]).cpu().bool()
    topic = _TOPIC_OF_ID[tokens]
    has_topic = (topic >= 0) & mask
    on = (has_topic & (topic == prompts[:, None])).sum(-1).float()
    off = (has_topic & (topic != prompts[:, None])).sum(-1).float()
    length = (mask & (tokens != EOS)).sum(-1).float()
    g = is_grammatical(tokens, mask).float()
    r = 2.0 * g + 0.5 * on.clamp(max=2) - 0.5 * off - 0.1 * length
    return r.reshape(lead)


def bradley_terry_labels(r_a: Tensor, r_b: Tensor, generator: torch.Generator | None = None,
                         temperature: float = NOISE_TEMPERATURE) -> Tensor:
    """(B,) bool, True where the labeller prefers a: P = sigmoid((r_a - r_b) / temperature).

    One ``torch.rand`` draw of shape (B,). temperature 0 gives noiseless labels (ties -> b).
    """
    if temperature == 0:
        return r_a > r_b
    p = torch.sigmoid((r_a - r_b).float() / temperature)
    return torch.rand(p.shape, generator=generator) < p


def plackett_luce_rankings(rewards: Tensor, generator: torch.Generator | None = None,
                           temperature: float = NOISE_TEMPERATURE) -> Tensor:
    """(B, K) long: each row a permutation of 0..K-1, best first, drawn from Plackett-Luce
    with scores ``rewards / temperature`` (Gumbel-max; one ``torch.rand`` draw of (B, K)).
    temperature 0 sorts by the reward (stable)."""
    if temperature == 0:
        return torch.argsort(rewards, dim=-1, descending=True, stable=True)
    u = torch.rand(rewards.shape, generator=generator).clamp(1e-12, 1 - 1e-12)
    gumbel = -torch.log(-torch.log(u))
    return torch.argsort(rewards.float() / temperature + gumbel, dim=-1, descending=True)


# -- data sets -----------------------------------------------------------------------------------


def rankings(n: int, k: int, seed: int = 0, policy: Policy | None = None,
             temperature: float = NOISE_TEMPERATURE, max_len: int = MAX_LEN) -> dict[str, Tensor]:
    """``n`` prompts with ``k`` policy responses each, ranked best first by a noisy labeller.

    Returns a dict: ``prompts`` (n,) long; ``tokens`` (n, k, max_len) long and ``mask``
    (n, k, max_len) bool, with ``tokens[:, 0]`` the labeller's favourite; ``true`` (n, k)
    float32, the true rewards in that same order. ``policy`` defaults to
    ``pretrained_policy()``. Draws from ``torch.Generator().manual_seed(seed)``: prompts,
    then the n*k samples (prompt i's responses are rows i*k .. i*k+k-1), then the ranking.
    """
    policy = pretrained_policy() if policy is None else policy
    g = torch.Generator().manual_seed(int(seed))
    prompts = sample_prompts(n, g)
    tok, m = policy.sample(prompts.repeat_interleave(k), g, max_len=max_len)
    tok, m = tok.view(n, k, max_len), m.view(n, k, max_len)
    true = true_reward(prompts[:, None].expand(n, k), tok, m)
    order = plackett_luce_rankings(true, g, temperature)
    idx = order[..., None].expand(n, k, max_len)
    return {"prompts": prompts, "tokens": tok.gather(1, idx), "mask": m.gather(1, idx),
            "true": true.gather(1, order)}


def comparisons(n: int, seed: int = 0, policy: Policy | None = None,
                temperature: float = NOISE_TEMPERATURE,
                max_len: int = MAX_LEN) -> dict[str, Tensor]:
    """``n`` prompts, two policy responses each, labelled by Bradley-Terry.

    Returns ``prompts`` (n,), ``chosen``, ``rejected`` (n, max_len) long, ``chosen_mask``,
    ``rejected_mask`` (n, max_len) bool, ``true_chosen``, ``true_rejected`` (n,) float32.
    Exactly ``rankings(n, 2, seed, policy, temperature)`` split into its two columns.
    """
    d = rankings(n, 2, seed, policy, temperature, max_len)
    return {"prompts": d["prompts"],
            "chosen": d["tokens"][:, 0], "chosen_mask": d["mask"][:, 0],
            "rejected": d["tokens"][:, 1], "rejected_mask": d["mask"][:, 1],
            "true_chosen": d["true"][:, 0], "true_rejected": d["true"][:, 1]}


# -- reward model --------------------------------------------------------------------------------


def bag_of_words(tokens: Tensor, mask: Tensor) -> Tensor:
    """(..., V) float32 counts of each token id among the positions where ``mask`` is True."""
    out = torch.zeros(*tokens.shape[:-1], V, device=tokens.device)
    return out.scatter_add_(-1, tokens, mask.to(out.dtype))


class RewardModel(nn.Module):
    """r_φ(x, y) = head · tanh(Σ_t mask_t · E[y_t] + P[x]) + bias, a scalar per response.

    ``forward(prompts (...), tokens (..., T), mask (..., T)) -> rewards (...)`` in the dtype of
    the parameters (float32 by default). Initialised from ``torch.manual_seed(seed)``-style
    draws of its own generator, so equal seeds give equal models.
    """

    def __init__(self, dim: int = 16, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(int(seed))
        self.embed = nn.Parameter(0.3 * torch.randn(V, dim, generator=g))
        self.prompt_embed = nn.Parameter(0.3 * torch.randn(N_PROMPTS, dim, generator=g))
        self.head = nn.Parameter(torch.randn(dim, generator=g) / dim ** 0.5)
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, prompts: Tensor, tokens: Tensor, mask: Tensor) -> Tensor:
        counts = bag_of_words(tokens, mask).to(self.embed.dtype)
        h = torch.tanh(counts @ self.embed + self.prompt_embed[prompts])
        return h @ self.head + self.bias


def train_reward_model(data: dict[str, Tensor], loss_fn: Callable[[Tensor], Tensor],
                       steps: int = 150, lr: float = 0.05, seed: int = 0,
                       dim: int = 16, weight_decay: float = 1e-3) -> RewardModel:
    """Fit a fresh ``RewardModel(dim, seed)`` by full-batch Adam on ``loss_fn(R)``.

    ``data``: a :func:`rankings` dict (best first). ``R`` = the model's rewards, (n, k), column 0
    the labeller's favourite; ``loss_fn(R)`` must return a 0-dim tensor, e.g.
    ``lambda R: preference_loss(R[:, 0], R[:, 1])`` or ``ranking_loss``. About 0.2 s for
    n*k = 1000 responses and 150 steps.
    """
    model = RewardModel(dim, seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    prompts = data["prompts"][:, None].expand(data["tokens"].shape[:2])
    for _ in range(steps):
        loss = loss_fn(model(prompts, data["tokens"], data["mask"]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@lru_cache(maxsize=4)
def _held_out(n: int, seed: int) -> dict[str, Tensor]:
    return rankings(n, 2, seed, temperature=0)


@torch.no_grad()
def pair_accuracy(model: Callable[[Tensor, Tensor, Tensor], Tensor], n: int = 2000,
                  seed: int = 10_000, policy: Policy | None = None) -> float:
    """Held-out agreement with the true preference.

    Draws ``rankings(n, 2, seed, policy, temperature=0)`` (fresh policy samples; use a seed
    far from the training seeds) and returns the fraction of pairs with unequal true reward
    that ``model(prompts, tokens, mask)`` orders the same way as :func:`true_reward`.
    """
    d = _held_out(n, seed) if policy is None else rankings(n, 2, seed, policy, temperature=0)
    prompts = d["prompts"][:, None].expand(n, 2)
    r = model(prompts, d["tokens"], d["mask"]).float()
    diff_true = d["true"][:, 0] - d["true"][:, 1]
    keep = diff_true.abs() > 1e-6
    agree = (r[:, 0] - r[:, 1] > 0) == (diff_true > 0)
    return float(agree[keep].float().mean())
