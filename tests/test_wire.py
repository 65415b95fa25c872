"""The bytes between grader and child (course.grading.wire): exact round trips both ways, and
a reply reader that refuses every malformed or forged message in words, building nothing but
plain data."""

from __future__ import annotations

import json
import math
import pickle

import pytest
import torch

from course.grading.encode import EncodeError, encode
from course.grading.spec import Call, Make
from course.grading.wire import (
    ALIGN,
    REPLY_MAGIC,
    TENSOR_KEY,
    WireError,
    from_bytes,
    request_from_bytes,
    request_to_bytes,
    to_bytes,
)


def raw(t: torch.Tensor) -> torch.Tensor:
    """A tensor's bytes (a fresh contiguous copy, conjugation and negation applied)."""
    x = torch.empty(t.shape, dtype=t.dtype).copy_(t.resolve_conj().resolve_neg())
    return x.reshape(-1).view(torch.uint8) if x.numel() else x


def same(a, b) -> bool:
    """Equal values of the same types, tensors bit for bit (dtype and shape too), NaN equal
    to NaN and -0.0 told from 0.0."""
    if isinstance(a, torch.Tensor):
        return (type(b) is torch.Tensor and a.dtype == b.dtype and a.shape == b.shape
                and torch.equal(raw(a), raw(b)))
    if isinstance(a, dict):
        return type(b) is dict and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return type(b) is list and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, float):
        return type(b) is float and (math.isnan(a) and math.isnan(b) or (
            a == b and math.copysign(1, a) == math.copysign(1, b)))
    return type(a) is type(b) and a == b


REPLY = {
    "ok": True,
    "out": encode((torch.randn(3, 4, dtype=torch.float64), [1, 2.5, None, "s", True])),
    "grads": encode({f"w{i}": torch.randn(5, 2) for i in range(5)}),
    "odd": [float("nan"), float("inf"), -0.0, 10**40, "\ud800 é", {}, []],
    "kinds": [encode(torch.zeros(0, 3)), encode(torch.tensor([True, False])),
              encode(torch.tensor(3.5, dtype=torch.bfloat16)),
              encode(torch.randn(2, dtype=torch.complex64).conj()),
              encode(torch.arange(6).reshape(2, 3).t()),
              encode(torch.randn(2, dtype=torch.complex64).conj().imag),
              # one element, or size-1 dimensions: "contiguous" with any strides
              torch.randn(4, 3)[1:2, :1], torch.randn(3, 4).t()[:1], torch.randn(9)[::3][1:2],
              torch.randn(1, 3).expand(2, 3)[:1]],
}


def test_a_reply_survives_the_wire_bit_for_bit():
    back = from_bytes(to_bytes(REPLY))
    assert same(REPLY, back)
    assert not same(REPLY, from_bytes(to_bytes({**REPLY, "ok": False})))  # same() can fail


def test_what_a_reply_may_not_hold_is_refused_when_written():
    for bad in ({"t": (1, 2)}, {1: 2}, {"o": object()}, {TENSOR_KEY: 0},
                {"f8": torch.zeros(2, dtype=torch.float8_e4m3fn)}):
        with pytest.raises(EncodeError):
            to_bytes(bad)


def _forge(value, tensors, data=b"", magic=REPLY_MAGIC) -> bytes:
    header = json.dumps({"value": value, "tensors": tensors}).encode()
    start = len(magic) + 8 + len(header)
    pad = b"\0" * (-start % ALIGN)
    return magic + len(header).to_bytes(8, "little") + header + pad + data


@pytest.mark.parametrize("data, words", [
    (pickle.dumps({"ok": True}), "wrong header"),
    (b"", "wrong header"),
    (REPLY_MAGIC + (10**6).to_bytes(8, "little") + b"{}", "shorter than its header"),
    (REPLY_MAGIC + (3).to_bytes(8, "little") + b"{x}", "not JSON"),
    (_forge(None, None), "header is malformed"),
    (_forge({TENSOR_KEY: 0}, [["float32", [4], 0, 16]]), "outside the message"),
    (_forge({TENSOR_KEY: 0}, [["float32", [2], 0, 16]], b"\0" * 16), "outside the message"),
    (_forge({TENSOR_KEY: 0}, [["float32", [2], 3, 8]], b"\0" * 16), "outside the message"),
    (_forge({TENSOR_KEY: 0}, [["float32", [2], -16, 8]], b"\0" * 16), "outside the message"),
    (_forge({TENSOR_KEY: 0}, [["object", [1], 0, 8]], b"\0" * 16), "record is malformed"),
    (_forge({TENSOR_KEY: 0}, [["float32", [-1], 0, 4]], b"\0" * 16), "record is malformed"),
    (_forge({TENSOR_KEY: 0}, [["float32", "2", 0, 8]], b"\0" * 16), "record is malformed"),
    (_forge({TENSOR_KEY: 1}, [["float32", [2], 0, 8]], b"\0" * 16), "reference is malformed"),
    (_forge({TENSOR_KEY: 0, "x": 1}, [["float32", [2], 0, 8]], b"\0" * 16),
     "reference is malformed"),
    (_forge({TENSOR_KEY: 0}, []), "reference is malformed"),
    (_forge(json.loads("[" * 100 + "]" * 100), []), "nested too deeply"),
    (REPLY_MAGIC + (20_000).to_bytes(8, "little") + b"[" * 20_000, "nested too deeply|JSON"),
])
def test_a_forged_reply_is_refused_in_words(data, words):
    with pytest.raises(WireError, match=words):
        from_bytes(data)


def test_a_forged_tensor_within_bounds_is_just_data():
    values = torch.arange(4, dtype=torch.float32)
    got = from_bytes(_forge({"a": {TENSOR_KEY: 0}}, [["float32", [2, 2], 0, 16]],
                            values.numpy().tobytes()))
    assert torch.equal(got["a"], values.reshape(2, 2))


def test_a_request_survives_the_wire_with_strides_sharing_and_flags():
    x = torch.randn(5, 4, dtype=torch.float64)
    weights = {"w": torch.randn(3, 3), "b": torch.zeros(0)}
    leaf = torch.ones(2, requires_grad=True)
    odd = torch.randn(3, dtype=torch.complex64).conj()
    probe = Call("f", args=(x.t(), x[1:], Make("M", state_dict=weights), leaf, odd,
                            torch.nn.Parameter(torch.ones(2)), torch.tensor(1.5,
                                                                        dtype=torch.bfloat16)))
    kind, back = request_from_bytes(request_to_bytes(("probe", probe)))
    assert kind == "probe" and back.target == "f"
    t, rows, made, grad, conj, param, scalar = back.args
    assert t.stride() == (1, 4) and torch.equal(t, x.t()) and torch.equal(rows, x[1:])
    assert t.untyped_storage().data_ptr() == rows.untyped_storage().data_ptr()  # shared
    assert all(torch.equal(made.state_dict[k], v) for k, v in weights.items())
    assert grad.requires_grad and grad.is_leaf and not t.requires_grad
    assert conj.is_conj() and torch.equal(conj, odd)
    assert type(param) is torch.nn.Parameter and torch.equal(param, torch.ones(2))
    assert scalar.dtype == torch.bfloat16 and float(scalar) == 1.5
    with pytest.raises(WireError):
        request_from_bytes(to_bytes({"ok": True}))
