"""Unit 4.2 `bert`: the master against independent implementations.

- ``mask_tokens`` equals ``transformers``' ``DataCollatorForLanguageModeling.torch_mask_tokens``
  given the same generator: the collator draws ``bernoulli(p)`` for the selection (with the
  special positions' probability set to 0), ``bernoulli(0.8)`` for ``[MASK]``,
  ``bernoulli(0.1 / 0.2)`` for the random token and ``randint(len(tokenizer))`` for the random
  ids, in the syllabus's order, and torch's CPU ``bernoulli(p)`` is ``rand() < p`` draw for
  draw. The tokenizer is a stand-in with a mask token and a length; nothing downloads.
- ``mask_tokens`` equals a plain Python loop over positions written from the 80/10/10 rule, and
  with ``generator=None`` it draws from torch's global generator.
- ``BertEmbeddings`` equals ``transformers``' ``BertEmbeddings`` built from a ``BertConfig``
  (no dropout, eps 1e-5, no padding index) with the weights copied, forward and gradients, in
  float64.
"""

from __future__ import annotations

import pytest
import torch

from course import catalogue
from course.grading.checks import reference

transformers = pytest.importorskip("transformers")
from transformers.data.data_collator import DataCollatorForLanguageModeling  # noqa: E402
from transformers.models.bert.modeling_bert import BertConfig  # noqa: E402
from transformers.models.bert.modeling_bert import BertEmbeddings as HFBertEmbeddings  # noqa: E402

NS = reference(catalogue.find("bert")).namespace
PAD, CLS, SEP, MASK = 0, 1, 2, 3


class StandInTokenizer:
    """What ``torch_mask_tokens`` asks of a tokenizer: a mask token, its id, and a length."""

    mask_token = "[MASK]"
    is_fast = True

    def __init__(self, vocab_size: int, mask_id: int) -> None:
        self.vocab_size, self.mask_id = vocab_size, mask_id

    def __len__(self) -> int:
        return self.vocab_size

    def convert_tokens_to_ids(self, token: str) -> int:
        assert token == self.mask_token
        return self.mask_id


def _batch(B, L, vocab, seed):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, vocab, (B, L), generator=g)
    ids[:, 0] = CLS
    ids[:, -1] = SEP
    lengths = torch.randint(1, L + 1, (B,), generator=g)
    ids[torch.arange(L) >= lengths[:, None]] = PAD
    return ids, ids < 4


@pytest.mark.parametrize(("B", "L", "vocab", "p"), [(8, 40, 50, 0.15), (1, 1, 10, 0.15),
                                                     (3, 17, 1000, 0.4), (16, 64, 97, 0.15),
                                                     (4, 12, 9, 1.0), (2, 9, 30, 0.0)])
def test_mask_tokens_equals_transformers_collator(B, L, vocab, p):
    for seed in range(3):
        ids, special = _batch(B, L, vocab, seed)
        collator = DataCollatorForLanguageModeling(StandInTokenizer(vocab, MASK),
                                                   mlm_probability=p)
        collator.generator = torch.Generator().manual_seed(100 + seed)
        want_inputs, want_labels = collator.torch_mask_tokens(ids.clone(), special.clone())
        ids_before = ids.clone()
        inputs, labels = NS["mask_tokens"](ids, vocab, MASK, special, p=p,
                                           generator=torch.Generator().manual_seed(100 + seed))
        assert torch.equal(ids, ids_before)
        assert inputs.dtype == labels.dtype == torch.int64
        assert torch.equal(inputs, want_inputs) and torch.equal(labels, want_labels)


def _loop_mask(ids, vocab, mask_id, special, p, seed):
    g = torch.Generator().manual_seed(seed)
    u_sel, u_rep, u_rnd = (torch.rand(ids.shape, generator=g) for _ in range(3))
    random_ids = torch.randint(vocab, ids.shape, generator=g)
    inputs, labels = ids.tolist(), [[-100] * ids.shape[1] for _ in range(ids.shape[0])]
    for b in range(ids.shape[0]):
        for i in range(ids.shape[1]):
            if special[b, i] or not u_sel[b, i] < p:
                continue
            labels[b][i] = int(ids[b, i])
            if u_rep[b, i] < 0.8:
                inputs[b][i] = mask_id
            elif u_rnd[b, i] < 0.5:
                inputs[b][i] = int(random_ids[b, i])
    return torch.tensor(inputs), torch.tensor(labels)


@pytest.mark.parametrize("seed", range(4))
def test_mask_tokens_equals_a_python_loop_and_uses_the_global_generator(seed):
    ids, special = _batch(5, 23, 40, seed)
    special |= torch.rand(ids.shape, generator=torch.Generator().manual_seed(seed)) < 0.1
    p = (0.15, 0.3, 0.6, 0.05)[seed]
    want = _loop_mask(ids, 40, 17, special, p, seed)
    got = NS["mask_tokens"](ids, 40, 17, special, p, torch.Generator().manual_seed(seed))
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    torch.manual_seed(seed)  # the global generator, seeded alike, gives the same draws
    again = NS["mask_tokens"](ids, 40, 17, special, p)
    assert torch.equal(again[0], want[0]) and torch.equal(again[1], want[1])


@pytest.mark.parametrize(("B", "L", "vocab", "max_len", "segments", "dim"),
                         [(3, 7, 20, 12, 2, 8), (1, 1, 5, 4, 1, 4), (2, 16, 50, 16, 3, 12)])
def test_embeddings_equal_transformers_bert_embeddings(B, L, vocab, max_len, segments, dim):
    g = torch.Generator().manual_seed(L)
    config = BertConfig(vocab_size=vocab, hidden_size=dim, max_position_embeddings=max_len,
                        type_vocab_size=segments, hidden_dropout_prob=0.0, layer_norm_eps=1e-5,
                        pad_token_id=None)
    theirs = HFBertEmbeddings(config).double().eval()
    ours = NS["BertEmbeddings"](vocab, max_len, segments, dim).double()
    state = {
        "token.weight": torch.randn(vocab, dim, generator=g, dtype=torch.float64),
        "position.weight": torch.randn(max_len, dim, generator=g, dtype=torch.float64),
        "segment.weight": torch.randn(segments, dim, generator=g, dtype=torch.float64),
        "norm.weight": 1 + 0.2 * torch.randn(dim, generator=g, dtype=torch.float64),
        "norm.bias": 0.2 * torch.randn(dim, generator=g, dtype=torch.float64),
    }
    ours.load_state_dict(state)
    with torch.no_grad():
        theirs.word_embeddings.weight.copy_(state["token.weight"])
        theirs.position_embeddings.weight.copy_(state["position.weight"])
        theirs.token_type_embeddings.weight.copy_(state["segment.weight"])
        theirs.LayerNorm.weight.copy_(state["norm.weight"])
        theirs.LayerNorm.bias.copy_(state["norm.bias"])
    ids = torch.randint(0, vocab, (B, L), generator=g)
    ids[0, 0] = 0
    seg = torch.randint(0, segments, (B, L), generator=g)
    want, got = theirs(input_ids=ids, token_type_ids=seg), ours(ids, seg)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    cot = torch.randn(want.shape, generator=g, dtype=torch.float64)
    (want * cot).sum().backward()
    (got * cot).sum().backward()
    pairs = [(ours.token, theirs.word_embeddings), (ours.position, theirs.position_embeddings),
             (ours.segment, theirs.token_type_embeddings), (ours.norm, theirs.LayerNorm)]
    for mine, lib in pairs:
        for name, param in mine.named_parameters():
            torch.testing.assert_close(param.grad, getattr(lib, name).grad, rtol=1e-10,
                                       atol=1e-12)
