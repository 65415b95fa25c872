"""Drivers for unit 1.3 `lenet`.

- :func:`layout` builds ``LeNet5(num_classes)`` and reports the names and shapes of its
  parameters and buffers (not their values: freshly initialised values depend on the order in
  which a learner creates the layers) and its total number of trainable parameters.
- :func:`train` is the grader-owned training loop: it builds the learner's ``LeNet5``, loads the
  grader's initial weights into it, trains it with Adam on the images it is given (fixed seed,
  fixed mini-batch order, random shifts of a few pixels) and returns the logits it then gives
  on the test images. The grader computes the accuracy from them in its own process.

Both run where learner code runs and return plain tensors, never verdicts.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from course.grading.drivers.optimizer import Adam
from course.grading.probes import ProbeError, lookup


def _build(ns: dict, num_classes: int) -> nn.Module:
    model = lookup(ns, "LeNet5")(num_classes)
    if not isinstance(model, nn.Module):
        raise ProbeError("LeNet5(num_classes) should build a torch.nn.Module")
    return model


def layout(ns: dict, num_classes: int = 10) -> dict:
    """``{"parameter <name>": shape, "buffer <name>": shape, "trainable parameters": count}``
    of ``LeNet5(num_classes)``, each an int64 tensor."""
    model = _build(ns, num_classes)
    found: dict[str, torch.Tensor] = {}
    for name, param in model.named_parameters():
        found[f"parameter {name}"] = torch.tensor(list(param.shape), dtype=torch.int64)
    for name, buf in model.named_buffers():
        found[f"buffer {name}"] = torch.tensor(list(buf.shape), dtype=torch.int64)
    count = sum(p.numel() for p in model.parameters() if p.requires_grad)
    found["trainable parameters"] = torch.tensor(count, dtype=torch.int64)
    return found


def train(
    ns: dict,
    state: dict,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    num_classes: int = 10,
    epochs: int = 10,
    batch_size: int = 32,
    lr: float = 3e-3,
    max_shift: int = 2,
    seed: int = 0,
) -> dict:
    """Train ``LeNet5(num_classes)`` from the weights ``state`` and return
    ``{"test_logits": (N_test, num_classes), "train_loss": (epochs,)}``.

    Adam with a cosine decay of the learning rate from ``lr`` to 0 over all steps, cross-entropy
    on the logits, mini-batches in a seeded random order; each mini-batch is shifted by a
    random (dy, dx) in [−max_shift, max_shift]² (``torch.roll`` over height and width). The
    model and the data share the data's dtype and device.
    """
    device, dtype = x_train.device, x_train.dtype
    model = _build(ns, num_classes).to(device=device, dtype=dtype)
    try:
        model.load_state_dict({k: v.to(device=device, dtype=dtype) for k, v in state.items()})
    except RuntimeError as exc:
        raise ProbeError(
            f"could not load the grader's initial weights into LeNet5: {exc}"
        ) from None
    optimizer = Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    n = len(y_train)
    total_steps = epochs * math.ceil(n / batch_size)
    step = 0
    losses = []
    model.train()
    with torch.enable_grad():
        for _ in range(epochs):
            order = torch.randperm(n, generator=gen).to(device)
            running = torch.zeros((), dtype=torch.float64)
            for start in range(0, n, batch_size):
                index = order[start:start + batch_size]
                dy, dx = torch.randint(-max_shift, max_shift + 1, (2,), generator=gen).tolist()
                images = torch.roll(x_train[index], shifts=(dy, dx), dims=(2, 3))
                for group in optimizer.param_groups:
                    group["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * step / total_steps))
                loss = F.cross_entropy(model(images), y_train[index])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                running += loss.detach().double().cpu() * len(index)
                step += 1
            losses.append(running / n)
    model.eval()
    with torch.no_grad():
        logits = model(x_test)
    if not isinstance(logits, torch.Tensor):
        raise ProbeError("LeNet5.forward should return a tensor of logits")
    return {"test_logits": logits.detach(), "train_loss": torch.stack(losses)}
