"""Imported by the fork server when it serves many submissions (``course grade``, cluster
workers, ``course check`` of several units): first-use costs that units would otherwise pay in
every fresh child. The first step of a built-in ``torch.optim`` optimizer imports
``torch._dynamo`` (about a second on a laptop core; :mod:`course.grading.deferred_dynamo`
spares the rest of an optimizer that cost), and resolving bert's, roberta's and seq2seq's rules
imports parts of transformers where it is installed
(:data:`course.grading.forbidden.LIBRARY_MODULES`, 0.7 s).
Not imported for one unit's ``course check``, whose child pays it only when needed; and not
where a GPU may be used, since importing ``torch._dynamo`` (or a library) may ask the CUDA
runtime for devices, which must not happen before the fork (see :mod:`course.isolation.zygote`).
"""

from __future__ import annotations

import importlib

from course.grading.forbidden import LIBRARY_MODULES
from course.isolation.zygote import gpu_may_be_used

if not gpu_may_be_used():  # (a library may ask CUDA for devices when imported, too)
    importlib.import_module("torch._dynamo")
    for _name in LIBRARY_MODULES:
        try:
            importlib.import_module(_name)
        except Exception:  # not installed (or broken): the children find it absent too
            pass
