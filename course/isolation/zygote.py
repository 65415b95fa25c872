"""Imported by the fork server only (see :mod:`course.isolation.forkserver`): pays torch's
first-use costs once, keeps a learner's optimizer from importing ``torch._dynamo`` in every
child (:mod:`course.grading.deferred_dynamo`), and makes the fork server a *child subreaper*,
so that any process a submission leaves behind (even one that called ``setsid`` and
double-forked) re-parents to the fork server, where the grader can find and kill it
(:func:`course.isolation.sandbox.reap_descendants`)."""

from __future__ import annotations

import ctypes
import os
import sys
import warnings

import torch

from course.grading.deferred_dynamo import defer_optimizers
from course.isolation.lifetime import die_with_parent

PR_SET_CHILD_SUBREAPER = 36


def _become_subreaper() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


# Device nodes of a GPU driver: where one exists, the children may grade on it.
GPU_DEVICE_NODES = ("/dev/nvidiactl", "/dev/kfd")


def gpu_may_be_used() -> bool:
    """True when this torch is built for a GPU and a GPU driver's device node exists. Decided
    without asking the CUDA runtime, which would initialise it here, before the fork."""
    built = torch.version.cuda is not None or getattr(torch.version, "hip", None) is not None
    return built and any(os.path.exists(node) for node in GPU_DEVICE_NODES)


def _warm_up() -> None:
    x = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    y = torch.tanh(x @ x).softmax(-1).sum()
    if not gpu_may_be_used():
        # The first backward starts autograd's device threads, which count the CUDA devices
        # and so initialise the CUDA runtime in this process; a child forked from it then
        # fails at its first CUDA call ("CUDA error: initialization error"). Only where no
        # GPU can be used is that warm-up safe.
        # (Without grad_outputs, whose shape check imports sympy: a third of a second before
        # the server can fork, for the few submissions that pass them.)
        torch.autograd.grad(y, x)
    torch.nn.Linear(3, 3)(x.detach().float()).sum()


DIES_WITH_GRADER = die_with_parent()  # the grader's death (however it dies) ends the server
SUBREAPER = _become_subreaper()
# adopted orphans are reaped by the fork server's own loop, which warns about each one
warnings.filterwarnings("ignore", message="forkserver: waitpid returned")
_warm_up()
defer_optimizers()  # a learner's own optimizer does not import torch._dynamo in each child
