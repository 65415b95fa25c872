"""Imported by the fork server when it serves many submissions (``course grade``, cluster
workers, ``course check`` of several units): first-use costs that units would otherwise pay in
every fresh child. The first ``torch.optim`` optimizer imports ``torch._dynamo`` (about 0.8 s on
a laptop core). Not imported for one unit's ``course check``, whose child pays it only when
needed; and not where a GPU may be used, since importing ``torch._dynamo`` may ask the CUDA
runtime for devices, which must not happen before the fork (see :mod:`course.isolation.zygote`).
"""

from __future__ import annotations

import torch

from course.isolation.zygote import gpu_may_be_used

if not gpu_may_be_used():
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)  # imports torch._dynamo
