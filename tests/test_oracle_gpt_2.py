"""Unit 4.5 `gpt-2`: the master against independent implementations.

- ``Block`` equals ``transformers``' ``GPT2Block`` and ``GPT`` equals ``GPT2LMHeadModel``, both
  built from a ``GPT2Config`` (nothing downloaded) with the master's weights copied in. GPT-2's
  ``Conv1D`` stores its weight as (in, out), the transpose of ``nn.Linear``'s (out, in). Forward
  and gradients (w.r.t. the input and every parameter) in float64. ``GPT2Block`` called on its
  own attends to everything unless given a mask, so the test hands it the causal mask
  (0 / -inf) itself; ``GPT2LMHeadModel`` builds its own.
- ``bpe_train``, ``bpe_encode`` and ``bpe_decode`` against a second implementation written from
  the syllabus's rules in another way (``collections.Counter`` over the pair list, ties by
  ``list.index`` of the first occurrence, merging by scanning with ``bytes``-level tokens), on
  the synthetic language and random Unicode text; encoding the training text gives the
  sequence training ended with; ``decode(encode(s)) == s`` for random strings.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest
import torch

transformers = pytest.importorskip("transformers")
from transformers import GPT2Config, GPT2LMHeadModel  # noqa: E402
from transformers.models.gpt2.modeling_gpt2 import GPT2Block  # noqa: E402

from course import catalogue  # noqa: E402
from course.data.language import text as language_text  # noqa: E402
from course.grading.checks import reference  # noqa: E402

NS = reference(catalogue.find("gpt-2")).namespace
CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def _config(vocab, block_size, n_layer, n_head, d):
    config = GPT2Config(vocab_size=vocab, n_positions=block_size, n_embd=d, n_layer=n_layer,
                        n_head=n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        activation_function="gelu_new", layer_norm_epsilon=1e-5,
                        tie_word_embeddings=True)
    config._attn_implementation = "eager"
    return config


def _randomise(module, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith(("ln_1.weight", "ln_2.weight")) or name == "ln_f.weight":
                p.copy_(1 + 0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))
            else:
                p.copy_(0.4 * torch.randn(p.shape, generator=g, dtype=p.dtype))


def _hf_state(ours: dict, prefix: str = "") -> dict:
    """Our state dict renamed and transposed for GPT-2's Conv1D layers."""
    out = {}
    for name, value in ours.items():
        value = value.T.contiguous() if name.endswith(CONV1D) else value
        out[prefix + name if name != "lm_head.weight" else name] = value
    return out


def _load_hf(hf, state):
    missing, unexpected = hf.load_state_dict(state, strict=False)
    # only non-persistent buffers (masks) may be left, never a parameter
    params = {n for n, _ in hf.named_parameters()}
    assert not (set(missing) & params), missing
    assert not unexpected, unexpected


@pytest.mark.parametrize(("B", "L", "d", "heads"), [(2, 5, 8, 2), (1, 1, 12, 3), (3, 7, 16, 4),
                                                   (2, 6, 6, 1)])
def test_block_equals_gpt2block(B, L, d, heads):
    ours = NS["Block"](d, heads).double()
    _randomise(ours, seed=B * 100 + L)
    hf = GPT2Block(_config(50, 16, 1, heads, d), layer_idx=0).double().eval()
    _load_hf(hf, _hf_state(ours.state_dict()))
    x = torch.randn(B, L, d, dtype=torch.float64, generator=torch.Generator().manual_seed(L))
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    causal = torch.ones(L, L, dtype=torch.bool).tril()
    mask = torch.zeros(1, 1, L, L, dtype=torch.float64).masked_fill(~causal, float("-inf"))
    got, want = ours(x1), hf(x2, attention_mask=mask)
    want = want[0] if isinstance(want, tuple) else want
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    cot = torch.randn(got.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    (got * cot).sum().backward()
    (want * cot).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-10, atol=1e-12)
    hf_params = dict(hf.named_parameters())
    for name, p in ours.named_parameters():
        g = hf_params[name].grad
        torch.testing.assert_close(p.grad, g.T if name.endswith(CONV1D) else g,
                                   rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("args", "B", "L"), [((11, 8, 2, 2, 8), 2, 5), ((7, 4, 1, 1, 4), 1, 4),
                                              ((31, 12, 3, 4, 16), 3, 12)])
def test_gpt_equals_gpt2lmheadmodel(args, B, L):
    vocab, block_size, n_layer, n_head, d = args
    ours = NS["GPT"](*args).double()
    _randomise(ours, seed=vocab)
    assert ours.lm_head.weight is ours.wte.weight
    hf = GPT2LMHeadModel(_config(*args)).double().eval()
    assert hf.lm_head.weight is hf.transformer.wte.weight  # GPT-2 ties them too
    _load_hf(hf, _hf_state(ours.state_dict(), prefix="transformer."))
    idx = torch.randint(0, vocab, (B, L), generator=torch.Generator().manual_seed(B))
    got = ours(idx)
    want = hf(input_ids=idx).logits
    torch.testing.assert_close(got, want, rtol=1e-11, atol=1e-11)
    cot = torch.randn(got.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    (got * cot).sum().backward()
    (want * cot).sum().backward()
    torch.testing.assert_close(ours.wte.weight.grad, hf.transformer.wte.weight.grad,
                               rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ours.wpe.weight.grad, hf.transformer.wpe.weight.grad,
                               rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ours.h[0].attn.c_attn.weight.grad,
                               hf.transformer.h[0].attn.c_attn.weight.grad.T,
                               rtol=1e-10, atol=1e-12)


# -- BPE from the rules, written another way ---------------------------------------------------

def _oracle_train(text: str, num_merges: int):
    seq = list(text.encode("utf-8"))
    merges = []
    for r in range(num_merges):
        if len(seq) < 2:
            break
        pairs = list(zip(seq, seq[1:]))
        counts = Counter(pairs)
        best = max(counts.values())
        tied = [p for p in counts if counts[p] == best]
        pair = min(tied, key=pairs.index)  # first occurrence in the current sequence
        new = 256 + r
        seq = _oracle_merge(seq, pair, new)
        merges.append((pair, new))
    return merges, seq


def _oracle_merge(seq, pair, new):
    out = []
    rest = list(seq)
    while rest:
        if len(rest) >= 2 and (rest[0], rest[1]) == pair:
            out.append(new)
            rest = rest[2:]
        else:
            out.append(rest.pop(0))
    return out


def _oracle_encode(text, merges):
    seq = list(text.encode("utf-8"))
    for pair, new in merges:  # in rank order: a later merge never creates an earlier pair
        seq = _oracle_merge(seq, pair, new)
    return seq


def _oracle_decode(ids, merges):
    table = [bytes([b]) for b in range(256)]
    expand = dict(merges)
    inverse = {new: pair for pair, new in expand.items()}

    def spell(i):
        return table[i] if i < 256 else spell(inverse[i][0]) + spell(inverse[i][1])

    return b"".join(spell(i) for i in ids).decode("utf-8", "replace")


def _random_unicode(rng: random.Random, n: int) -> str:
    pools = ["abc ", "aaaa", "éöüåçñ", "日本語中文", "😀🙂🚀", "\n\t.,;", "ßΩЖ"]
    return "".join(rng.choice(rng.choice(pools)) for _ in range(n))


@pytest.mark.parametrize("seed", range(6))
def test_bpe_equals_the_rules_written_another_way(seed):
    rng = random.Random(seed)
    train = language_text(15, seed=seed) if seed % 2 else _random_unicode(rng, 300)
    k = rng.randint(1, 60)
    want, final = _oracle_train(train, k)
    got = NS["bpe_train"](train, k)
    assert got == want
    assert all(type(a) is int and type(b) is int and type(n) is int for (a, b), n in got)
    assert NS["bpe_encode"](train, got) == final
    for _ in range(5):
        s = _random_unicode(rng, rng.randint(0, 80))
        ids = NS["bpe_encode"](s, got)
        assert ids == _oracle_encode(s, want)
        assert NS["bpe_decode"](ids, got) == s == _oracle_decode(ids, want)
    junk = [rng.randrange(256 + len(got)) for _ in range(40)]
    assert NS["bpe_decode"](junk, got) == _oracle_decode(junk, want)


def test_bpe_stops_early_and_compresses():
    merges = NS["bpe_train"]("aaaa", 10)
    assert merges == [((97, 97), 256), ((256, 256), 257)]
    assert NS["bpe_train"]("", 5) == [] and NS["bpe_train"]("x", 5) == []
    text = language_text(200, seed=0)
    merges = NS["bpe_train"](text, 100)
    ids = NS["bpe_encode"](text, merges)
    assert len(merges) == 100 and len(ids) < len(text.encode("utf-8")) / 2
