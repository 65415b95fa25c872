"""Keep ``torch._dynamo`` out of grading children that never compile.

``torch.optim.Optimizer.add_param_group`` (so every optimizer's constructor), ``zero_grad``,
``state_dict`` and ``load_state_dict`` are wrapped by ``torch._disable_dynamo``, which imports
``torch._dynamo`` (about a second) at the first call only to build a ``torch._dynamo.disable``
wrapper, which keeps the method opaque to ``torch.compile``. While ``torch._dynamo`` has not
been imported nothing can be compiling, so that wrapper would just call the method. A learner's
optimizer (unit `adam` subclasses ``Optimizer``) thus pays a second per grading process for
nothing.

:func:`defer` fills the wrapper's cache with a function that calls the method directly while
``torch._dynamo`` is absent and builds the real ``torch._dynamo.disable`` wrapper as soon as it
is present, so behaviour under ``torch.compile`` is unchanged. It touches only wrappers of the
known shape (``torch._disable_dynamo``'s, caching in ``fn.__dynamo_disable``); with a torch
that does this differently it does nothing. (The built-in optimizers' ``step`` imports
``torch._dynamo`` itself, unconditionally: they still pay.)
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable

import torch

CACHE = "__dynamo_disable"  # where torch._disable_dynamo's wrapper caches what it calls


def _lazy_wrapper_code():
    return getattr(torch._disable_dynamo(lambda: None), "__code__", None)


def _deferred(fn: Callable, recursive: bool) -> Callable:
    real: Callable | None = None

    def call(*args, **kwargs):
        nonlocal real
        if real is None:
            if "torch._dynamo" not in sys.modules:
                return fn(*args, **kwargs)
            real = sys.modules["torch._dynamo"].disable(fn, recursive)
        return real(*args, **kwargs)

    return call


def defer(wrapper: Callable | None) -> bool:
    """Defer ``torch._dynamo``'s import in one ``torch._disable_dynamo`` wrapper; whether it
    was one (of the known shape, not yet called)."""
    code = getattr(wrapper, "__code__", None)
    fn = getattr(wrapper, "__wrapped__", None)
    if wrapper is None or code is None or fn is None or code is not _lazy_wrapper_code() \
            or CACHE not in code.co_names or getattr(fn, CACHE, None) is not None:
        return False
    recursive = inspect.getclosurevars(wrapper).nonlocals.get("recursive", True)
    setattr(fn, CACHE, _deferred(fn, bool(recursive)))
    return True


def defer_optimizers() -> list[str]:
    """:func:`defer` ``torch.optim.Optimizer``'s wrapped methods; the names of those deferred."""
    from torch.optim import Optimizer

    names = ("add_param_group", "zero_grad", "state_dict", "load_state_dict")
    return [name for name in names if defer(getattr(Optimizer, name, None))]
