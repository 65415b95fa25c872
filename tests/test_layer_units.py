"""Small tests of the engine's lowest layers, one group per module, so that a failure names its
layer: :mod:`course.grading.spec` (probes as data), :mod:`course.grading.encode` (the wire
format) and :mod:`course.grading.compare` (differences in words)."""

from __future__ import annotations

import math

import pytest
import torch

from course.grading.compare import Tolerance, compare_values, fmt_pair
from course.grading.encode import EncodeError, encode, validate
from course.grading.spec import (
    FLOAT_DTYPES,
    Call,
    Fixture,
    Gen,
    Inspect,
    Make,
    dtype_word,
    in_float64,
    map_tensors,
    to_float64,
)
from course.grading.wire import from_bytes, to_bytes

# -- spec ---------------------------------------------------------------------------------


def test_probes_describe_themselves_in_words():
    x = torch.zeros(4, 8)
    call = Call(Make("LayerNorm", (8,)), (x,), {"generator": Gen(3)})
    assert call.name == "LayerNorm.forward"
    assert call.describe() == "LayerNorm.forward(float32[4, 8], generator=Generator(seed=3))"
    assert Inspect(Make("LSTMCell", (3, 4))).describe() == "LSTMCell(3, 4)"
    assert Call("@dropout.seeded", ()).name == "@dropout.seeded"


def test_to_float64_casts_floating_tensors_and_named_module_dtypes_only():
    probe = Call(Make("M", (torch.ones(2),), dtype=torch.float32), (torch.ones(3),
                 torch.arange(3)), {"f": Fixture("ToyEpsModel", {"w": torch.ones(1)})})
    cast = to_float64(probe)
    assert cast.args[0].dtype == torch.float64 and cast.args[1].dtype == torch.int64
    assert cast.target.dtype == torch.float64 and cast.target.args[0].dtype == torch.float64
    assert cast.kwargs["f"].kwargs["w"].dtype == torch.float64
    assert probe.args[0].dtype == torch.float32, "the original probe is left as it was"
    seen = []
    map_tensors(probe, lambda t: seen.append(t.shape) or t)
    assert len(seen) == 4


def test_a_probe_in_float64_is_its_own_float64_run():
    x64, x32 = torch.ones(3, dtype=torch.float64), torch.ones(3)
    assert in_float64(Call("f", (x64, torch.arange(3)), {"n": 2}))
    assert in_float64(Call(Make("M", (x64,)), (x64,)))  # a module in its default dtype
    assert in_float64(Call(Make("M", dtype=torch.float64), ()))
    assert not in_float64(Call("f", (x64, x32)))
    assert not in_float64(Call("f", (), {"f": Fixture("ToyEpsModel", {"w": x32})}))
    assert not in_float64(Call(Make("M", (x64,), dtype=torch.float32), (x64,)))
    for probe in (Call("f", (x64,)), Call(Make("M", dtype=torch.float64), (x64,))):
        assert in_float64(to_float64(probe))  # what to_float64 gives is in float64


def test_the_shared_dtypes_and_their_words():
    assert FLOAT_DTYPES == (torch.float32, torch.float64)
    assert [dtype_word(d) for d in FLOAT_DTYPES] == ["float32", "float64"]


# -- encode -------------------------------------------------------------------------------


def test_plain_values_survive_the_wire_unchanged():
    value = {"out": (torch.arange(3.0), [1, 2.5, None, "s", True]), "dtype": torch.float64}
    encoded = encode(value)
    back = validate(from_bytes(to_bytes(encoded)))
    assert torch.equal(back["items"]["out"]["items"][0]["data"], torch.arange(3.0))
    assert back["items"]["out"]["items"][1]["items"][1] == 2.5
    assert back["items"]["dtype"] == {"__kind__": "dtype", "name": "torch.float64"}


@pytest.mark.parametrize("value, words", [
    (object(), "returned an object of type builtins.object"),
    ({1: torch.zeros(1)}, "keys are not all strings"),
    ([0] * 1001, "list of 1001 items"),
    ("x" * 10_001, "longer than 10,000"),
    (torch.zeros(2, device="meta"), "'meta' device"),
])
def test_what_cannot_be_graded_is_refused_in_words(value, words):
    with pytest.raises(EncodeError, match=words):
        encode(value)


def test_a_tensor_subclass_is_refused():
    class Sneaky(torch.Tensor):
        pass

    with pytest.raises(EncodeError, match="subclass of torch.Tensor"):
        encode(torch.zeros(2).as_subclass(Sneaky))


def test_validate_refuses_anything_but_plain_data():
    with pytest.raises(EncodeError):
        validate({"x": object()})
    with pytest.raises(EncodeError):
        validate({1: 2})


# -- compare ------------------------------------------------------------------------------


def _cmp(got, want, exact=False, tol=None):
    g, w = encode(got), encode(want)
    w64 = encode(want.double() if isinstance(want, torch.Tensor) else want)
    return compare_values(g, w, w64, "output", tol or Tolerance(), "cpu", exact)


def test_equal_values_within_tolerance_have_no_difference():
    x = torch.linspace(-1, 1, 7)
    assert _cmp(x + 1e-7, x) is None
    assert _cmp((x, [x]), (x, [x])) is None


def test_each_kind_of_difference_is_said_in_words():
    x = torch.ones(2, 3)
    assert "shape" in _cmp(torch.ones(3, 2), x).message
    assert "dtype float64, expected float32" in _cmp(x.double(), x).message
    wrong = x.clone()
    wrong[1, 2] = 2.0
    diff = _cmp(wrong, x)
    assert "1 of 6 values" in diff.message and "index (1, 2)" in diff.message
    assert diff.max_abs == pytest.approx(1.0)
    assert "non-finite" in _cmp(torch.tensor([1.0, math.nan]), torch.ones(2)).message
    assert "expected a tensor" in _cmp(3.0, torch.ones(1)).message
    assert "a tuple of 1, expected 2 items" in _cmp((x,), (x, x)).message
    assert "keys differ" in _cmp({"a": x}, {"b": x}).message


def test_exact_comparison_has_no_tolerance_and_integers_are_exact():
    x = torch.ones(3)
    assert _cmp(x + 1e-7, x, exact=True) is not None
    assert "differs at 1 of 3 entries" in _cmp(torch.tensor([1, 2, 4]),
                                                 torch.tensor([1, 2, 3])).message


def test_got_and_expected_are_printed_with_the_digits_that_differ():
    got, want = fmt_pair(0.1234567, 0.1234568)
    assert got != want and len(got) <= 17
