"""Imported by the fork server when it serves many submissions (``course check`` of several
units, ``course grade``, cluster workers): first-use costs that some units pay in every child
otherwise. The first ``torch.optim`` optimizer imports ``torch._dynamo`` (about 0.8 s on a
laptop core), which every unit that builds an optimizer would pay again in each fresh child.
Not imported for one unit's ``course check``, whose child pays it only when it needs it.
"""

from __future__ import annotations

import torch

torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)  # imports torch._dynamo
