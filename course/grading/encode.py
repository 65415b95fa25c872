"""Turning whatever learner code returned into plain data, and back, safely.

The child encodes results into nested dicts / lists of exact ``torch.Tensor`` (on the CPU),
numbers, strings, booleans and None, and sends them as bytes (:mod:`course.grading.wire`, whose
reader builds nothing but such plain data); the grader validates the structure again. Learner
objects are never unpickled in the grader's process.
"""

from __future__ import annotations

import math
from typing import Any

import torch

MAX_DEPTH = 8
MAX_ITEMS = 1000


class EncodeError(Exception):
    """A returned value that cannot be graded (e.g. a tensor subclass or an unknown object)."""


def encode(value: Any, depth: int = 0) -> Any:
    """Plain-data form of a returned value. Tensors become ``{"tensor", "device"}`` records."""
    if depth > MAX_DEPTH:
        raise EncodeError("the returned value is nested too deeply")
    kind = type(value)
    if kind is torch.Tensor or kind is torch.nn.Parameter:
        data = torch.Tensor.detach(value)
        device = data.device.type
        if data.is_sparse or data.layout != torch.strided:
            raise EncodeError(f"returned a tensor with layout {data.layout}; expected strided")
        if data.device.type == "meta":
            raise EncodeError("returned a tensor on the 'meta' device, which holds no values")
        try:
            plain = data.to("cpu", copy=True).contiguous()
        except Exception as exc:
            raise EncodeError(f"returned a tensor that cannot be read ({exc})") from None
        if type(plain) is not torch.Tensor:  # pragma: no cover - defensive
            raise EncodeError("tensor could not be copied to a plain tensor")
        return {"__kind__": "tensor", "data": plain, "device": device}
    if isinstance(value, torch.Tensor):
        raise EncodeError(
            f"returned a {kind.__module__}.{kind.__qualname__}, a subclass of torch.Tensor; "
            "return a plain torch.Tensor"
        )
    if value is None or kind in (bool, int, str):
        if kind is str and len(value) > 10_000:
            raise EncodeError("returned a string longer than 10,000 characters")
        return value
    if kind is float:
        return value
    if kind in (tuple, list):
        if len(value) > MAX_ITEMS:
            raise EncodeError(f"returned a {kind.__name__} of {len(value)} items")
        return {"__kind__": kind.__name__, "items": [encode(v, depth + 1) for v in value]}
    if kind is dict:
        if len(value) > MAX_ITEMS:
            raise EncodeError(f"returned a dict of {len(value)} items")
        keys = list(value.keys())
        if not all(type(k) is str for k in keys):
            raise EncodeError("returned a dict whose keys are not all strings")
        return {"__kind__": "dict", "items": {k: encode(value[k], depth + 1) for k in keys}}
    if kind is torch.dtype:
        return {"__kind__": "dtype", "name": str(value)}
    if kind is torch.device:
        return {"__kind__": "device", "name": str(value)}
    raise EncodeError(f"returned an object of type {kind.__module__}.{kind.__qualname__}")


def validate(value: Any, depth: int = 0) -> Any:
    """Check again, in the grader, that a decoded payload holds only plain data."""
    if depth > MAX_DEPTH + 4:
        raise EncodeError("payload nested too deeply")
    kind = type(value)
    if value is None or kind in (bool, int, float, str):
        return value
    if kind is torch.Tensor:
        return value.detach() if value.requires_grad else value
    if kind is list:
        return [validate(v, depth + 1) for v in value]
    if kind is dict:
        if not all(type(k) is str for k in value):
            raise EncodeError("payload has non-string keys")
        return {k: validate(v, depth + 1) for k, v in value.items()}
    raise EncodeError(f"payload holds a {kind.__qualname__}")


def decode(value: Any) -> Any:
    """The plain Python value of an encoded one: tensors (CPU copies), tuples, lists, dicts,
    dtypes and devices again, numbers, strings and None as they are."""
    if isinstance(value, dict):
        kind = value.get("__kind__")
        if kind == "tensor":
            return value["data"]
        if kind == "tuple":
            return tuple(decode(v) for v in value["items"])
        if kind == "list":
            return [decode(v) for v in value["items"]]
        if kind == "dict":
            return {k: decode(v) for k, v in value["items"].items()}
        if kind == "dtype":
            return getattr(torch, value["name"].removeprefix("torch."))
        if kind == "device":
            return torch.device(value["name"])
    return value


def describe_encoded(value: Any) -> str:
    """Words for an encoded value: ``a tensor float32[4, 8] on cpu``, ``a tuple of 2``."""
    if isinstance(value, dict) and value.get("__kind__") == "tensor":
        t = value["data"]
        return f"a tensor {str(t.dtype).replace('torch.', '')}{list(t.shape)} on {value['device']}"
    if isinstance(value, dict) and value.get("__kind__") in ("tuple", "list"):
        return f"a {value['__kind__']} of {len(value['items'])} items"
    if isinstance(value, dict) and value.get("__kind__") == "dict":
        return f"a dict with keys {sorted(value['items'])}"
    if isinstance(value, dict) and value.get("__kind__") in ("dtype", "device"):
        return value["name"]
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return f"{type(value).__name__} {value!r}"
