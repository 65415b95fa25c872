"""course.data.preferences: policy, true preference, noisy labels, reward model (seeded, fast)."""

import torch

from course.data.language import language
from course.data.preferences import (
    EOS,
    MAX_LEN,
    PAD,
    Policy,
    RewardModel,
    bag_of_words,
    bradley_terry_labels,
    comparisons,
    is_grammatical,
    pair_accuracy,
    plackett_luce_rankings,
    pretrained_policy,
    rankings,
    sample_prompts,
    train_reward_model,
    true_reward,
    words_of,
)

L = language()


def _samples(n=400, seed=0):
    p = pretrained_policy()
    g = torch.Generator().manual_seed(seed)
    x = sample_prompts(n, g)
    return p, x, *p.sample(x, g)


def test_sampling_is_seeded_and_well_formed():
    p, x, tok, m = _samples()
    _, x2, tok2, m2 = _samples()
    assert torch.equal(x, x2) and torch.equal(tok, tok2) and torch.equal(m, m2)
    assert tok.shape == m.shape == (400, MAX_LEN)
    assert tok.dtype == torch.long and m.dtype == torch.bool
    assert (tok[~m] == PAD).all()
    assert not (tok[m] < 6).logical_and(tok[m] != EOS).any()  # no special other than <eos>
    # the mask is a prefix ending at the first <eos> (or the full width)
    for row, mrow in zip(tok.tolist(), m.tolist()):
        n = sum(mrow)
        assert mrow == [True] * n + [False] * (MAX_LEN - n)
        assert EOS not in row[: n - 1]
        assert row[n - 1] == EOS or n == MAX_LEN


def test_log_probs_match_the_table_and_are_differentiable():
    p, x, tok, m = _samples(50)
    lp = p.log_probs(x, tok, m)
    assert lp.shape == (50, MAX_LEN) and (lp[~m] == 0).all() and (lp[m] < 0).all()
    b, t = 3, 2
    prev = tok[b, t - 1]
    z = p.logits[x[b], prev].detach().clone()
    z[[0, 1, 2, 3, 4]] = float("-inf")
    assert torch.allclose(lp[b, t], torch.log_softmax(z, -1)[tok[b, t]])
    lp.sum().backward()
    assert p.logits.grad is not None and p.logits.grad.abs().sum() > 0
    ref = p.frozen_copy()
    assert not ref.logits.requires_grad and ref.logits.data_ptr() != p.logits.data_ptr()
    assert torch.equal(ref.log_probs(x, tok, m), lp.detach())


def test_sample_frequencies_follow_log_probs():
    # the first token's empirical frequency matches exp(log p) of the table
    p = pretrained_policy()
    x = torch.zeros(4000, dtype=torch.long)
    tok, m = p.sample(x, torch.Generator().manual_seed(3))
    first = torch.bincount(tok[:, 0], minlength=L.vocab_size).float() / 4000
    probs = p.next_log_probs(x[:1], torch.full((1, 1), L.BOS)).exp()[0, 0].detach()
    assert (first - probs).abs().max() < 0.03


def test_true_reward_formula():
    x = torch.tensor([0, 0, 1, 0])
    sents = [["the", "cat", "sleeps", "."], ["the", "cat", "sleep", "."],
             ["the", "cat", "sleeps", "."], ["the", "wild", "cat", "sees", "a", "dog", "."]]
    tok = torch.full((4, 10), PAD)
    m = torch.zeros((4, 10), dtype=torch.bool)
    for i, s in enumerate(sents):
        ids = L.encode(s) + [EOS]
        tok[i, : len(ids)] = torch.tensor(ids)
        m[i, : len(ids)] = True
    r = true_reward(x, tok, m)
    expected = torch.tensor([2 + 0.5 - 0.4, 0.5 - 0.4, 2 - 0.5 - 0.4, 2 + 1.0 - 0.7])
    assert torch.allclose(r, expected)
    assert is_grammatical(tok, m).tolist() == [True, False, True, True]
    assert words_of(tok, m)[0] == sents[0]
    # truncated (no <eos>) is never grammatical
    m2 = m.clone()
    m2[0, 4] = False
    assert not is_grammatical(tok, m2)[0]
    assert true_reward(x[None], tok[None], m[None]).shape == (1, 4)


def test_labels_are_noisy_bradley_terry_and_plackett_luce():
    g = torch.Generator().manual_seed(0)
    n = 20000
    ra, rb = torch.full((n,), 0.5), torch.zeros(n)
    frac = bradley_terry_labels(ra, rb, g, temperature=0.5).float().mean()
    assert abs(frac - torch.sigmoid(torch.tensor(1.0))) < 0.015
    assert bradley_terry_labels(ra, rb, g, temperature=0).all()
    r = torch.tensor([[1.0, 0.0, -1.0]]).expand(n, 3)
    order = plackett_luce_rankings(r, g, temperature=1.0)
    assert torch.equal(order.sort(-1).values, torch.arange(3).expand(n, 3))
    p_first = torch.softmax(r[0], 0)
    emp = torch.bincount(order[:, 0], minlength=3).float() / n
    assert (emp - p_first).abs().max() < 0.015
    assert torch.equal(plackett_luce_rankings(r[:2], g, 0), torch.tensor([[0, 1, 2]] * 2))


def test_rankings_and_comparisons():
    d = rankings(30, 4, seed=5)
    assert d["tokens"].shape == (30, 4, MAX_LEN) and d["true"].shape == (30, 4)
    assert torch.allclose(d["true"], true_reward(d["prompts"][:, None].expand(30, 4),
                                                  d["tokens"], d["mask"]))
    exact = rankings(200, 4, seed=5, temperature=0)["true"]
    assert (exact[:, :-1] >= exact[:, 1:]).all()
    c = comparisons(30, seed=5)
    d2 = rankings(30, 2, seed=5)
    assert torch.equal(c["chosen"], d2["tokens"][:, 0]) and torch.equal(c["rejected_mask"],
                                                                      d2["mask"][:, 1])
    assert torch.equal(rankings(30, 4, seed=5)["tokens"], d["tokens"])


def test_reward_model_learns_the_preference():
    m = RewardModel(seed=1)
    d = rankings(5, 3, seed=0)
    out = m(d["prompts"][:, None].expand(5, 3), d["tokens"], d["mask"])
    assert out.shape == (5, 3) and out.dtype == torch.float32
    bow = bag_of_words(d["tokens"], d["mask"])
    assert torch.equal(bow.sum(-1), d["mask"].sum(-1).float())
    assert pair_accuracy(RewardModel(seed=0)) < 0.65

    def loss(r):
        return -torch.nn.functional.logsigmoid(r[:, 0] - r[:, 1]).mean()

    model = train_reward_model(rankings(800, 2, seed=1), loss, seed=0)
    assert pair_accuracy(model) > 0.65
    assert isinstance(pretrained_policy(), Policy)
