"""Running a probe on an implementation's namespace. Used identically by the reference (in the
grader) and by learner code (in the isolated child, or in-kernel for the notebook's check())."""

from __future__ import annotations

import functools
import inspect
import linecache
import sys
import time
import traceback
from typing import Any

import torch
from torch import nn

from course.grading import drivers, fixtures
from course.grading.encode import EncodeError, encode
from course.grading.failures import Failure, error
from course.grading.forbidden import Forbid, watch
from course.grading.spec import Call, Device, Fixture, Gen, Group, Inspect, Make

COTANGENT_SEED = 20_240_611
LEARNER_FILE_PREFIX = "<learner"


class ProbeError(Exception):
    """Learner code failed while a probe ran; carries a message in words."""


class CollectiveMismatch(ProbeError):
    """The ranks of a process group did not make the same collective calls (a driver of a
    :class:`Group` probe found it); the message says which call, in words."""


class InputModified(Exception):
    """Learner code changed a tensor it was given; the message names the argument."""


def learner_filename(cell: int | str) -> str:
    return f"{LEARNER_FILE_PREFIX} cell {cell}>"


def register_source(filename: str, source: str) -> None:
    """Let tracebacks quote learner lines."""
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)


def describe_exception(exc: BaseException) -> dict:
    """Type, message and the learner's own frames of an exception, in words."""
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if f.filename.startswith(LEARNER_FILE_PREFIX)]
    where = ""
    if own:
        last = own[-1]
        cell = last.filename[len(LEARNER_FILE_PREFIX) :].strip(" >")
        where = f"{cell}, line {last.lineno}, in {last.name}"
        if last.line:
            where += f": {last.line.strip()}"
    try:
        message = str(exc)
    except Exception:  # an exception whose message itself fails
        message = "(its message could not be shown)"
    if len(message) > 2000:
        message = message[:2000] + " …"
    return {"type": type(exc).__name__, "message": message, "where": where}


def _materialize(value: Any, ns: dict, device: torch.device, built: dict, path: str) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device, copy=True)
    if isinstance(value, Make):
        obj = build(value, ns, device)
        built[path] = obj
        return obj
    if isinstance(value, Fixture):
        kwargs = {k: _materialize(v, ns, device, {}, k) for k, v in value.kwargs.items()}
        obj = fixtures.build(value.name, kwargs, device)
        if isinstance(obj, nn.Module):  # its parameters count for grad=("params",)
            built[path] = obj
        return obj
    if isinstance(value, Gen):
        return torch.Generator().manual_seed(value.seed)
    if isinstance(value, Device):
        return device
    if isinstance(value, tuple):
        return tuple(_materialize(v, ns, device, built, f"{path}.{i}") for i, v in enumerate(value))
    if isinstance(value, list):
        return [_materialize(v, ns, device, built, f"{path}.{i}") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _materialize(v, ns, device, built, f"{path}.{k}") for k, v in value.items()}
    return value


def lookup(ns: dict, name: str) -> Any:
    if name not in ns:
        raise ProbeError(f"your code does not define `{name}` (is its cell run, and spelled so?)")
    return ns[name]


def build(spec: Make, ns: dict, device: torch.device) -> Any:
    cls = lookup(ns, spec.name)
    args = _materialize(spec.args, ns, device, {}, "args")
    kwargs = _materialize(spec.kwargs, ns, device, {}, "kwargs")
    obj = cls(*args, **kwargs)
    if isinstance(obj, nn.Module):
        if spec.dtype is not None:
            obj = obj.to(dtype=spec.dtype)
        obj = obj.to(device)
        if spec.state_dict is not None:
            state = {k: v.to(device) for k, v in spec.state_dict.items()}
            try:
                obj.load_state_dict(state)
            except RuntimeError as exc:
                raise ProbeError(
                    f"could not load the grader's weights into {spec.name}: {exc}"
                ) from None
        if spec.train is not None:
            obj.train(spec.train)
    elif spec.state_dict is not None:
        raise ProbeError(f"{spec.name}(...) should build a torch.nn.Module")
    return obj


def _floating_tensors(value: Any) -> list[torch.Tensor]:
    if type(value) in (torch.Tensor, nn.Parameter):
        return [value] if value.is_floating_point() else []
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _floating_tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _floating_tensors(v)]
    return []


def _grad_leaves(call: Call, args: tuple, kwargs: dict, built: dict) -> dict[str, torch.Tensor]:
    leaves: dict[str, torch.Tensor] = {}
    for key in call.grad:
        if key == "params":
            for path, module in built.items():
                if isinstance(module, nn.Module):
                    for pname, param in module.named_parameters():
                        leaves[f"{path}.{pname}"] = param
            continue
        path = key if isinstance(key, tuple) else (key,)
        head, rest = path[0], path[1:]
        value = args[head] if isinstance(head, int) else kwargs[head]
        for index in rest:
            value = value[index]
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise ValueError(f"cannot differentiate w.r.t. non-floating input {key!r}")
        value.requires_grad_(True)
        name = f"arg{head}" if isinstance(head, int) else head
        leaves[".".join([name, *map(str, rest)])] = value
    return leaves


def cotangents(outputs: list[torch.Tensor]) -> list[torch.Tensor]:
    """Fixed pseudo-random directions for the vector-Jacobian product, one per output.

    Values are rounded to float32, so a float32 and a float64 run contract with the same
    numbers (an exact float32 gradient then matches the float64 reference exactly)."""
    result = []
    for i, out in enumerate(outputs):
        g = torch.Generator().manual_seed(COTANGENT_SEED + i)
        # rounded to float32, so float32 and float64 runs contract with the very same numbers
        cot = torch.randn(tuple(out.shape), generator=g, dtype=torch.float64).float().double()
        result.append(cot.to(device=out.device, dtype=out.dtype))
    return result


def _seed(device: torch.device) -> None:
    """``torch.manual_seed(0)`` for a probe on ``device``. On the CPU, while CUDA has not been
    initialised, only the CPU generator: ``torch.manual_seed`` would also queue a seed for CUDA
    (applied if it ever starts), and the queue records the whole call stack as text, a third of
    a millisecond per probe on each side, for a device the probe does not use."""
    if device.type != "cpu" or torch.cuda.is_initialized():
        torch.manual_seed(0)
    else:
        torch.random.default_generator.manual_seed(0)


def execute(
    probe: Call | Inspect | Group, ns: dict, device: torch.device, rules: list[Forbid],
    deep: bool = True,
) -> dict:
    """Run ``probe`` on namespace ``ns``. Returns a payload of plain data (see encode). A
    :class:`Group` runs in processes forked from this one (:func:`course.grading.ranks.run_forked`:
    the grader's trusted code, or the notebook's kernel; the isolated child, which may not fork,
    never gets one)."""
    if isinstance(probe, Group):
        from course.grading.ranks import run_forked

        return run_forked(probe, ns, device, rules, deep)
    started = time.perf_counter()
    payload: dict[str, Any] = {"ok": False, "forbidden": []}
    try:
        with torch.random.fork_rng(devices=[]):
            _seed(device)
            if isinstance(probe, Inspect):
                _inspect(probe, ns, device, rules, payload, deep)
            else:
                _call(probe, ns, device, rules, payload, deep)
        payload["ok"] = True
    except CollectiveMismatch as exc:
        payload["error"] = error(Failure.COLLECTIVE, str(exc))
    except ProbeError as exc:
        payload["error"] = error(Failure.PROBE, str(exc))
    except InputModified as exc:
        payload["error"] = error(Failure.INPUT_MODIFIED, str(exc))
    except EncodeError as exc:
        payload["error"] = error(Failure.ENCODE, str(exc))
    except RecursionError as exc:
        payload["error"] = describe_exception(exc)
        payload["error"]["message"] = "maximum recursion depth exceeded"
    except Exception as exc:  # learner code raised: report it in words
        payload["error"] = describe_exception(exc)
    payload["elapsed"] = time.perf_counter() - started
    return payload


def _inspect(probe: Inspect, ns: dict, device, rules, payload: dict, deep: bool) -> None:
    with watch(rules, probe.name, deep) as seen:
        module = build(probe.target, ns, device)
    payload["forbidden"] = list(seen)
    if not isinstance(module, nn.Module):
        raise ProbeError(f"{probe.name}(...) should build a torch.nn.Module")
    payload["out"] = {
        "__kind__": "dict",
        "items": {
            "parameters": encode({n: p for n, p in module.named_parameters()}),
            "buffers": encode({n: b for n, b in module.named_buffers()}),
        },
    }


def _call(call: Call, ns: dict, device, rules, payload: dict, deep: bool) -> None:
    built: dict[str, Any] = {}
    target = _materialize(call.target, ns, device, built, "self")
    if isinstance(call.target, Make):
        fn = getattr(target, call.method)
    elif call.target.startswith("@"):
        fn = functools.partial(drivers.resolve(call.target), ns)
    else:
        fn = lookup(ns, call.target)
    args = _materialize(call.args, ns, device, built, "arg")
    kwargs = _materialize(call.kwargs, ns, device, built, "kw")
    built = {_short(k): v for k, v in built.items()}
    with torch.enable_grad() if call.grad else torch.no_grad():
        leaves = _grad_leaves(call, args, kwargs, built) if call.grad else {}
        given = _snapshot(args, kwargs, set(call.after) | set(call.mutates))
        with watch(rules, call.name, deep) as seen:
            out = fn(*args, **kwargs)
        _drop_lingering_modes(seen)
        _require_untouched(given, fn)
        payload["forbidden"] = list(seen)
        with torch._C.DisableTorchFunction():
            payload["out"] = encode(out)
            if call.after:
                payload["after"] = encode({_after_name(k): _observed(args, kwargs, k)
                                           for k in call.after})
        if leaves:
            payload["grads"] = _gradients(out, leaves)


def _drop_lingering_modes(seen: list[str]) -> None:
    """A torch-function mode that learner code left on the stack would run during encoding
    and back-propagation: remove it, and report it."""
    left = 0
    while torch._C._len_torch_function_stack() > 0:
        torch._C._pop_torch_function_stack()
        left += 1
    if left and "a torch-function mode left active" not in seen:
        seen.append("a torch-function mode left active")


def _tensors_in(value: Any, path: tuple) -> list[tuple[tuple, torch.Tensor]]:
    """``(path, tensor)`` for every tensor in ``value`` (tuples, lists, dict values), modules
    and other objects excluded."""
    if type(value) in (torch.Tensor, nn.Parameter):
        return [(path, value)]
    if isinstance(value, (tuple, list)):
        return [pair for i, v in enumerate(value) for pair in _tensors_in(v, (*path, i))]
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in _tensors_in(v, (*path, k))]
    return []


def _snapshot(args: tuple, kwargs: dict, allowed: set) -> list[tuple[tuple, torch.Tensor, dict]]:
    """Each given tensor (outside the ``allowed`` arguments) with what it must still be."""
    given = [(path, t) for path, t in _tensors_in(args, ()) if path[0] not in allowed]
    given += [((k, *path), t) for k, v in kwargs.items() if k not in allowed
              for path, t in _tensors_in(v, ())]
    return [(path, t, {"data": t.detach().clone(), "shape": tuple(t.shape), "dtype": t.dtype,
                       "requires_grad": t.requires_grad}) for path, t in given]


def _same_values(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.is_floating_point() or a.is_complex():
        return bool(((a == b) | (torch.isnan(a) & torch.isnan(b))).all())
    return torch.equal(a, b)


def _require_untouched(given: list, fn) -> None:
    """Fail, naming the argument, if the call changed a tensor it was given."""
    for path, tensor, was in given:
        with torch._C.DisableTorchFunction():
            if tuple(tensor.shape) != was["shape"]:
                change = f"its shape from {list(was['shape'])} to {list(tensor.shape)}"
            elif tensor.dtype != was["dtype"]:
                change = f"its dtype from {was['dtype']} to {tensor.dtype}"
            elif tensor.requires_grad != was["requires_grad"]:
                change = f"its requires_grad from {was['requires_grad']} to {tensor.requires_grad}"
            elif not _same_values(tensor.detach(), was["data"]):
                change = "its values"
            else:
                continue
        raise InputModified(
            f"your code changed {_argument_words(fn, path)} in place ({change}). A function "
            "must leave the tensors it is given as they were: compute on new tensors (x = x - m, "
            "not x.sub_(m) or x -= m) unless the exercise says the argument is updated in place."
        )


def _argument_words(fn, path: tuple) -> str:
    """``the argument `x` (argument 1)`` or ``the keyword argument `mask```, plus the path
    inside a tuple/list/dict argument."""
    head, rest = path[0], path[1:]
    inside = "".join(f"[{p!r}]" for p in rest)
    if isinstance(head, str):
        return f"the keyword argument `{head}{inside}`"
    try:
        names = [p.name for p in inspect.signature(fn).parameters.values()
                 if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        names = []
    name = f"`{names[head]}{inside}` " if head < len(names) else (f"{inside} " if inside else "")
    return f"its input {name}(argument {head + 1})"


def _after_name(key) -> str:
    return f"arg{key}" if isinstance(key, int) else str(key)


def _observed(args: tuple, kwargs: dict, key) -> Any:
    value = args[key] if isinstance(key, int) else kwargs[key]
    if isinstance(value, nn.Module):
        return dict(value.state_dict())
    return value


def _short(path: str) -> str:
    return {"self": "self"}.get(path, path.replace("arg.", "arg").replace("kw.", ""))


def _gradients(out: Any, leaves: dict[str, torch.Tensor]) -> dict:
    floating = _floating_tensors(out)
    outputs = [t for t in floating if t.requires_grad]
    grads: dict[str, Any] = {name: None for name in leaves}
    if outputs:
        cots = cotangents(outputs)
        names = list(leaves)
        # The vector-Jacobian product as the gradient of Σ⟨output, cotangent⟩: the same numbers
        # bit for bit (the product's backward hands each output exactly its cotangent), without
        # grad_outputs, whose shape check imports sympy (seconds) on a process's first backward.
        terms = [(out * cot).sum() for out, cot in zip(outputs, cots)]
        contracted = terms[0]
        for term in terms[1:]:
            contracted = contracted + term
        values = torch.autograd.grad(contracted, [leaves[n] for n in names], allow_unused=True)
        for name, g in zip(names, values):
            grads[name] = None if g is None else encode(g)
    # which floating outputs (in order) autograd can reach: every one is contracted, so a
    # detached output changes the gradients, and the grader can say which one it was
    return {"__kind__": "dict", "items": grads,
            "differentiable": [bool(t.requires_grad) for t in floating]}


def clear_learner_modules() -> None:
    """Forget modules a previous learner load registered (in-process runs)."""
    for name in [m for m in sys.modules if m.startswith("_course_submission")]:
        del sys.modules[name]
