"""Drivers for unit 3.4 `word2vec`.

:func:`train_skipgram` is the grader-owned training loop. It takes the token stream of the
planted-analogy corpus (``course.data.analogies``) and the questions, makes the training pairs
with the learner's ``skipgram_pairs``, builds the learner's ``SkipGram``, loads the grader's
initial weights into it (word2vec's own: input vectors uniform in ±0.5/D, output vectors 0),
trains it with Adam on cross-entropy over mini-batches drawn in a seeded order, and answers
every question with the learner's ``analogy`` on the trained input vectors. It returns the
answers; the grader scores them in its own process. Runs where learner code runs and returns
plain tensors, never verdicts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from course.grading.drivers.optimizer import Adam
from course.grading.probes import ProbeError, lookup


def train_skipgram(
    ns: dict,
    tokens: torch.Tensor,
    questions: torch.Tensor,
    vocab_size: int,
    dim: int = 16,
    window: int = 2,
    steps: int = 300,
    batch_size: int = 256,
    lr: float = 0.05,
    seed: int = 0,
) -> dict:
    """``{"answers": (Q,) int64, "loss": (steps,) float64}`` after training ``SkipGram``.

    ``tokens`` (n,) and ``questions`` (Q, 4) are int64 on the learner's device; the model is
    float32 on that device.
    """
    device = tokens.device
    pairs = lookup(ns, "skipgram_pairs")(tokens, window)
    if not isinstance(pairs, torch.Tensor) or pairs.dim() != 2 or pairs.shape[1] != 2:
        raise ProbeError("skipgram_pairs(tokens, window) should return a LongTensor (N, 2)")
    pairs = pairs.to(device=device, dtype=torch.long)
    model: nn.Module = lookup(ns, "SkipGram")(vocab_size, dim)
    if not isinstance(model, nn.Module):
        raise ProbeError("SkipGram(vocab_size, dim) should build a torch.nn.Module")
    gen = torch.Generator().manual_seed(seed)
    state = {
        "in_embed.weight": (torch.rand(vocab_size, dim, generator=gen) - 0.5) / dim,
        "out_embed.weight": torch.zeros(vocab_size, dim),
    }
    model = model.to(device=device, dtype=torch.float32)
    try:
        model.load_state_dict({k: v.to(device) for k, v in state.items()})
    except RuntimeError as exc:
        raise ProbeError(f"could not load the grader's initial weights into SkipGram: {exc}") \
            from None
    optimizer = Adam(model.parameters(), lr=lr)
    losses = []
    with torch.enable_grad():
        for _ in range(steps):
            index = torch.randint(0, len(pairs), (batch_size,), generator=gen).to(device)
            batch = pairs[index]
            logits = model(batch[:, 0])
            if not isinstance(logits, torch.Tensor) or logits.shape != (batch_size, vocab_size):
                raise ProbeError(f"SkipGram.forward should return logits of shape "
                                 f"({batch_size}, {vocab_size})")
            loss = F.cross_entropy(logits, batch[:, 1])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.detach().double().cpu())
    embeddings = model.get_parameter("in_embed.weight").detach()
    answer = lookup(ns, "analogy")
    answers = []
    for a, b, c, _ in questions.tolist():
        got = answer(embeddings, a, b, c)
        if not isinstance(got, torch.Tensor) or got.numel() != 1:
            raise ProbeError("analogy(embeddings, a, b, c) should return a LongTensor (1,)")
        answers.append(int(got.reshape(-1)[0]))
    return {"answers": torch.tensor(answers, dtype=torch.int64),
            "loss": torch.stack(losses)}
