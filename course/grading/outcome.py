"""What a probe gave, as plain values a check can read without knowing the wire format."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import torch

from course.grading.encode import decode


class Outcome:
    """The result of running one probe on one implementation.

    ``out`` is the returned value with tensors as plain CPU tensors and tuples, lists and dicts
    as themselves; ``grads`` maps each input's name (``"x"``, ``"self.weight"``, ``"arg0.1"``)
    to its gradient, or None where it got none; ``after`` maps argument names to their values
    after the call (only for arguments the probe asked about); ``differentiable`` says, per
    returned floating tensor, whether it kept its autograd history. ``device`` is the device
    type the returned tensors were on (``"cpu"``, ``"cuda"``), None when there were none.
    """

    def __init__(self, payload: dict) -> None:
        self._payload = payload

    @property
    def payload(self) -> dict:
        """The wire form (for the grader's own comparison machinery, not for check files)."""
        return self._payload

    @cached_property
    def out(self) -> Any:
        return decode(self._payload.get("out"))

    @cached_property
    def grads(self) -> dict[str, torch.Tensor | None]:
        items = (self._payload.get("grads") or {}).get("items") or {}
        return {name: decode(g) for name, g in items.items()}

    @cached_property
    def after(self) -> dict[str, Any]:
        value = decode(self._payload.get("after"))
        return value if isinstance(value, dict) else {}

    @property
    def differentiable(self) -> list[bool] | None:
        return (self._payload.get("grads") or {}).get("differentiable")

    @property
    def device(self) -> str | None:
        def first(v: Any) -> str | None:
            if isinstance(v, dict) and v.get("__kind__") == "tensor":
                return v["device"]
            if isinstance(v, dict) and isinstance(v.get("items"), (list, dict)):
                items = v["items"].values() if isinstance(v["items"], dict) else v["items"]
                for item in items:
                    found = first(item)
                    if found:
                        return found
            return None

        return first(self._payload.get("out"))

    def __repr__(self) -> str:
        return f"Outcome(out={self.out!r})"
