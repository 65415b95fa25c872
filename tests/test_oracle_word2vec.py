"""Unit 3.4 `word2vec`: the master against independent implementations.

- ``skipgram_pairs`` and ``cbow_examples`` equal plain Python double loops over positions, and
  the number of skip-gram pairs equals the closed form 2 · Σ_{d=1}^{min(c, n-1)} (n − d);
- ``CBOW`` equals ``torch.nn.EmbeddingBag(mode="mean")`` followed by the output layer, and
  ``SkipGram`` equals ``torch.nn.functional.embedding`` + ``torch.nn.functional.linear``, with
  gradients, in float64;
- ``most_similar`` and ``analogy`` equal a ranking by ``torch.nn.functional.cosine_similarity``
  (the library call the exercise forbids), for float32 and float64.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course import catalogue
from course.grading.checks import reference

NS = reference(catalogue.find("word2vec")).namespace


def _loop_pairs(tokens, window):
    n = len(tokens)
    return [(tokens[i], tokens[j]) for i in range(n) for j in range(n) if 1 <= abs(i - j) <= window]


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 40])
@pytest.mark.parametrize("window", [1, 2, 5])
def test_pairs_and_cbow_equal_python_loops(n, window):
    tokens = torch.randint(0, 9, (n,), generator=torch.Generator().manual_seed(n * 10 + window))
    got = NS["skipgram_pairs"](tokens, window)
    assert got.dtype == torch.int64 and got.shape == (len(_loop_pairs(tokens.tolist(), window)), 2)
    assert got.tolist() == [list(p) for p in _loop_pairs(tokens.tolist(), window)]
    assert len(got) == 2 * sum(n - d for d in range(1, min(window, n - 1) + 1))
    assert NS["skipgram_pairs"](tokens.tolist(), window).tolist() == got.tolist()  # a list too
    contexts, targets = NS["cbow_examples"](tokens, window)
    t = tokens.tolist()
    rows = [(t[i - window:i] + t[i + 1:i + window + 1], t[i]) for i in range(window, n - window)]
    assert contexts.shape == (len(rows), 2 * window) and targets.shape == (len(rows),)
    assert contexts.tolist() == [r[0] for r in rows] and targets.tolist() == [r[1] for r in rows]


@pytest.mark.parametrize(("vocab", "dim", "batch", "width"), [(7, 3, 5, 4), (20, 8, 1, 2),
                                                             (13, 5, 9, 6)])
def test_models_equal_library_layers(vocab, dim, batch, width):
    g = torch.Generator().manual_seed(vocab)
    w_in = torch.randn(vocab, dim, generator=g, dtype=torch.float64)
    w_out = torch.randn(vocab, dim, generator=g, dtype=torch.float64)
    center = torch.randint(0, vocab, (batch,), generator=g)
    contexts = torch.randint(0, vocab, (batch, width), generator=g)
    cot = torch.randn(batch, vocab, generator=g, dtype=torch.float64)

    for name, x in (("SkipGram", center), ("CBOW", contexts)):
        model = NS[name](vocab, dim).double()
        model.load_state_dict({"in_embed.weight": w_in, "out_embed.weight": w_out})
        a, b = w_in.clone().requires_grad_(), w_out.clone().requires_grad_()
        if name == "SkipGram":
            want = F.linear(F.embedding(x, a), b)
        else:
            bag = nn.EmbeddingBag(vocab, dim, mode="mean").double()
            bag.weight = nn.Parameter(a)
            want = F.linear(bag(x), b)
        got = model(x)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
        (got * cot).sum().backward()
        (want * cot).sum().backward()
        torch.testing.assert_close(model.in_embed.weight.grad, bag.weight.grad if name == "CBOW"
                                   else a.grad, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(model.out_embed.weight.grad, b.grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", range(6))
def test_queries_equal_cosine_similarity_ranking(dtype, seed):
    g = torch.Generator().manual_seed(seed)
    vocab, dim = 25, 6
    e = torch.randn(vocab, dim, generator=g, dtype=torch.float64)
    e = (e * torch.exp(torch.randn(vocab, 1, generator=g, dtype=torch.float64))).to(dtype)
    index, (a, b, c) = seed % vocab, (seed, seed + 3, seed + 7)

    cos = F.cosine_similarity(e.double(), e.double()[index:index + 1], dim=1)
    cos[index] = -float("inf")
    want = cos.argsort(descending=True)[: vocab - 1]
    assert NS["most_similar"](e, index, vocab - 1).tolist() == want.tolist()

    q = (e[b] - e[a] + e[c]).double()
    cos = F.cosine_similarity(e.double(), q[None], dim=1)
    cos[[a, b, c]] = -float("inf")
    want = cos.argsort(descending=True)[:5]
    assert NS["analogy"](e, a, b, c, k=5).tolist() == want.tolist()
    assert NS["analogy"](e, a, b, c).tolist() == want[:1].tolist()
