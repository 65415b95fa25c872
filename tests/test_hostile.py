"""A hostile corpus: submissions that try to cheat the grading engine.

Each case is graded for real (``grade_submission(unit, path, device="cpu")``, in the isolated
child and, where this machine has one, the bubblewrap sandbox) and must:

- score zero on every check it tries to cheat, with feedback that says what was refused
  wherever that is knowable (a forbidden call named, an import refused, a time limit...);
- leave the grader carrying on: every check of the unit still graded (none ends in an internal
  grader error), the honest parts of the submission still credited;
- leave the test process unharmed (same working directory, signal handlers and comparison
  helpers) and the repository untouched, with no process of the submission left running.

Learner code runs in a child and is compared in the parent, so patching comparison code is
harmless by design; what is dangerous is tampering with what runs *in the child* on the
grader's behalf (forbidden-call detection, result encoding, the reply pipe), and reaching the
references (files, git history, gradebooks, the network).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import sqlite3
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from course import paths
from course.catalogue import find
from course.grading import compare as grading_compare
from course.grading.checks import load_checks, master_source
from course.grading.engine import grade_submission
from course.grading.grader import Grader
from course.isolation import forkserver, sandbox

LN = find("layer-norm")
ROOT = paths.ROOT
SANDBOXED = sandbox.level() == "bubblewrap"
needs_sandbox = pytest.mark.skipif(
    not SANDBOXED,
    reason="hiding files, the network and a read-only repository need the OS sandbox "
    f"({sandbox.unavailable_reason()})",
)

FORWARD = (
    "forward",
    "forward_small_variance",
    "forward_affine",
    "batch_independence",
    "autograd_through_forward",
)
BACKWARD = ("backward", "backward_eps")
HONEST = ("module_parameters",)  # what HONEST_MODULE earns (cheap to grade)

TAMPERED = "modified the grader's own code"
FORBIDS = "which this exercise forbids"
CONFINED = "is not allowed while your code is graded"  # a new process or thread, refused

# Files a hostile submission aims at; hashed before and after every case.
GUARDED = (
    ROOT / "solutions" / "optimization" / "layer_norm.py",
    ROOT / "autograder" / "optimization" / "test_layer_norm.py",
    ROOT / "course" / "grading" / "compare.py",
    ROOT / "course" / "grading" / "child.py",
)
SENTINEL = "HACKED-by-submission.txt"

# --------------------------------------------------------------------------------------------
# Honest pieces: credited code a cheating submission also carries, to show that the grader
# goes on grading it (and that a cheat costs the cheated checks, not the whole submission).

HONEST_MODULE = '''
class LayerNorm(torch.nn.Module):
    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = torch.nn.Parameter(torch.ones(dim))
        self.bias = torch.nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        raise NotImplementedError()
'''

HONEST_FORWARD = '''
def layer_norm(x, weight=None, bias=None, eps=1e-5):
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    y = (x - mean) / torch.sqrt(var + eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y
'''

STUB_ZEROS = '''
def layer_norm(x, weight=None, bias=None, eps=1e-5):
    return torch.zeros_like(x)
'''

F_LAYER_NORM = '''
def layer_norm(x, weight=None, bias=None, eps=1e-5):
    return F.layer_norm(x, x.shape[-1:], weight, bias, eps)
'''

HEAD = "import torch\nimport torch.nn.functional as F\n"


def _backward_via(grad_helper: str) -> str:
    """A layer_norm_backward that differentiates with autograd through ``GRAD``."""
    return grad_helper + '''
def layer_norm_backward(grad_out, x, weight=None, eps=1e-5):
    with torch.enable_grad():
        xx = x.detach().requires_grad_()
        w = weight.detach().requires_grad_() if weight is not None else None
        mean = xx.mean(dim=-1, keepdim=True)
        y = (xx - mean) / torch.sqrt(((xx - mean) ** 2).mean(dim=-1, keepdim=True) + eps)
        if w is not None:
            y = y * w
        grads = GRAD(y, [xx] + ([w] if w is not None else []), grad_out)
    if weight is None:
        return grads[0], None, None
    return grads[0], grads[1], grad_out.sum(dim=tuple(range(x.dim() - 1)))
'''


def _steal_by(fetch: str) -> str:
    """A layer_norm that runs whatever reference source ``_fetch()`` manages to obtain."""
    return fetch + '''
def layer_norm(x, weight=None, bias=None, eps=1e-5):
    namespace = {}
    exec(_fetch(), namespace)
    return namespace["layer_norm"](x, weight, bias, eps)
'''


def notebook(*cells: str | tuple[str, list[str]]) -> str:
    """nbformat-4 JSON with one code cell per source (``(source, tags)`` to tag one)."""
    out = []
    for i, cell in enumerate(cells):
        source, tags = cell if isinstance(cell, tuple) else (cell, [])
        out.append({"cell_type": "code", "id": f"c{i}", "metadata": {"tags": tags},
                    "source": source, "outputs": [], "execution_count": None})
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": out})


@dataclass(frozen=True)
class Case:
    id: str
    source: str
    cheated: tuple[str, ...]  # checks it tries to cheat: each must score zero ...
    words: tuple[str, ...]  # ... with feedback holding one of these
    honest: tuple[str, ...] = HONEST  # checks its honest parts earn: each must pass
    notes: tuple[str, ...] = ()  # words each expected among the result's notes
    unit: str = "layer-norm"
    suffix: str = ".py"
    env: dict = field(default_factory=dict)
    gradebook: bool = False  # a fake nbgrader gradebook is made and hidden for this case


def case(*args, marks=(), **kwargs):
    c = Case(*args, **kwargs)
    return pytest.param(c, id=c.id, marks=marks)


# --------------------------------------------------------------------------------------------
# The corpus.

CASES = [
    # -- patching what compares: comparisons happen in the grader, so these change nothing
    case(
        "patch-torch-comparisons",
        HEAD + '''
import torch.testing
torch.testing.assert_close = lambda *a, **k: None
torch.allclose = lambda *a, **k: True
torch.equal = lambda *a, **k: True
torch.isclose = lambda a, b, *r, **k: torch.ones_like(a, dtype=torch.bool)
torch.Tensor.__eq__ = lambda self, other: True
''' + STUB_ZEROS + HONEST_MODULE,
        cheated=FORWARD, words=("differs", TAMPERED), honest=(),
    ),
    case(
        "patch-pytest",
        HEAD + '''
import pytest
import _pytest.outcomes
pytest.approx = lambda expected, *a, **k: type("Any", (), {"__eq__": lambda s, o: True})()
pytest.fail = lambda *a, **k: None
_pytest.outcomes.fail = pytest.fail
''' + STUB_ZEROS + HONEST_MODULE,
        cheated=FORWARD, words=("differs",),
    ),
    case(
        "patch-course-compare-and-grader",
        HEAD + '''
import course.grading.compare as compare
import course.grading.grader as grader
compare.compare_values = lambda *a, **k: None
compare.compare_tensor = lambda *a, **k: None
grader.Grader.compare = lambda self, probe, case=None, tol=None, exact=False: {}
grader.Grader.fail = lambda self, *a, **k: None
''' + STUB_ZEROS + HONEST_MODULE,
        cheated=FORWARD, words=("differs", TAMPERED), honest=(),
    ),
    case(
        "patch-probes-execute",
        HEAD + '''
import course.grading.probes as probes
from course.grading.encode import encode
def _fake_execute(probe, ns, device, rules):
    args = [a.to(device) if isinstance(a, torch.Tensor) else a for a in probe.args]
    x = args[0]
    out = F.layer_norm(x, x.shape[-1:], *args[1:])
    return {"ok": True, "forbidden": [], "out": encode(out), "elapsed": 0.0}
probes.execute = _fake_execute
''' + F_LAYER_NORM + HONEST_MODULE,
        cheated=FORWARD, words=(TAMPERED, FORBIDS), honest=(),
    ),
    case(
        "patch-forbidden-watch",
        HEAD + '''
import contextlib
import course.grading.forbidden as forbidden
import course.grading.probes as probes
@contextlib.contextmanager
def _blind(*args, **kwargs):
    yield []
forbidden.watch = _blind
probes.watch = _blind
''' + F_LAYER_NORM + HONEST_MODULE,
        cheated=FORWARD, words=(TAMPERED, FORBIDS), honest=(),
    ),
    case(
        "patch-encode",
        HEAD + '''
import course.grading.encode as encode_module
import course.grading.probes as probes
_real = encode_module.encode
def _launder(value, depth=0):
    return _real(value, depth)
encode_module.encode = _launder
probes.encode = _launder
encode_module.validate = lambda value, depth=0: value
''' + F_LAYER_NORM + HONEST_MODULE,
        cheated=FORWARD, words=(TAMPERED, FORBIDS), honest=(),
    ),
    case(
        # replaces the code *inside* the contextmanager wrapper: the wrapper's own identity,
        # which is what the integrity snapshot records, does not change
        "swap-watch-code-under-its-wrapper",
        HEAD + '''
import course.grading.forbidden as forbidden
def _blind(*args, **kwargs):
    yield []
forbidden.watch.__wrapped__.__code__ = _blind.__code__
''' + F_LAYER_NORM + HONEST_MODULE,
        cheated=FORWARD, words=(TAMPERED, FORBIDS), honest=(),
    ),
    case(
        # forbidden.resolve() looks every forbidden name up through importlib.import_module:
        # make every torch lookup fail and no forbidden call is watched at all
        "patch-importlib-to-blind-resolve",
        HEAD + '''
import importlib
_real_import_module = importlib.import_module
def _import_module(name, package=None):
    if name.startswith("torch"):
        raise ImportError(name)
    return _real_import_module(name, package)
importlib.import_module = _import_module
''' + _backward_via("GRAD = torch.autograd.grad\n") + HONEST_MODULE,
        cheated=BACKWARD, words=(TAMPERED, FORBIDS), honest=(),
    ),
    case(
        # the serving loop's `rules` list is reachable through the frame stack
        "frame-surgery-clears-rules",
        HEAD + '''
import sys
_frame = sys._getframe()
while _frame is not None and _frame.f_code.co_name != "serve":
    _frame = _frame.f_back
_frame.f_locals["rules"].clear()
''' + F_LAYER_NORM + HONEST_MODULE,
        cheated=FORWARD, words=(TAMPERED, FORBIDS), honest=(),
    ),
    case(
        "frame-surgery-blinds-integrity-snapshot",
        HEAD + '''
import contextlib
import sys
import course.grading.probes as probes
_frame = sys._getframe()
while _frame is not None and _frame.f_code.co_name != "serve":
    _frame = _frame.f_back
_frame.f_locals["snapshot"].changes = lambda: []
@contextlib.contextmanager
def _blind(*args, **kwargs):
    yield []
probes.watch = _blind
''' + F_LAYER_NORM + HONEST_MODULE,
        cheated=FORWARD, words=(TAMPERED, FORBIDS), honest=(),
    ),
    case(
        "gc-empties-frozen-forbid-rules",
        HEAD + '''
import gc
from course.grading.forbidden import Forbid
for _obj in gc.get_objects():
    if type(_obj) is Forbid:
        object.__setattr__(_obj, "calls", ())
        object.__setattr__(_obj, "aten", ())
''' + F_LAYER_NORM + HONEST_MODULE,
        cheated=FORWARD, words=(TAMPERED, FORBIDS), honest=(),
    ),
    # -- IPython tricks and sys.modules surgery: no IPython in the grader, no effect
    case(
        "ipython-input-transformer-and-showtraceback",
        notebook(
            "from IPython import get_ipython\n"
            "ip = get_ipython()\n"
            "ip.input_transformers_post.append(lambda lines: [])\n"
            "ip.showtraceback = lambda *a, **k: None\n",
            "get_ipython().events.register('pre_run_cell', lambda *a: None)\n",
            "import torch\n"
            "def layer_norm(x, weight=None, bias=None, eps=1e-5):\n"
            "    raise NotImplementedError()\n",
            HEAD + HONEST_MODULE,
            ("check('layer_norm')\n", ["course-check"]),
        ),
        cheated=FORWARD, words=("not implemented yet",),
        notes=("cell 1 raised AttributeError", "cell 2 raised AttributeError"), suffix=".ipynb",
    ),
    case(
        "sys-modules-surgery-on-course-and-torch",
        HEAD + '''
import sys
import types
_fake = types.ModuleType("course.grading.forbidden")
_fake.watch = lambda rules, name: iter(())
sys.modules["course.grading.forbidden"] = _fake
sys.modules["torch.testing"] = types.ModuleType("torch.testing")
sys.modules["course.grading.compare"] = types.ModuleType("course.grading.compare")
''' + F_LAYER_NORM + HONEST_MODULE,
        cheated=FORWARD, words=(TAMPERED, FORBIDS), honest=(),
    ),
    case(
        "fake-solutions-package-in-sys-modules",
        HEAD + '''
import sys
import types
sys.modules["solutions"] = types.ModuleType("solutions")
sys.modules["solutions"].__path__ = []
def layer_norm(x, weight=None, bias=None, eps=1e-5):
    from solutions.optimization.layer_norm import layer_norm as reference
    return reference(x, weight, bias, eps)
''' + HONEST_MODULE,
        cheated=FORWARD, words=("cannot be imported while your code is graded",),
    ),
    # -- reaching the references and hidden checks
    case(
        "import-solutions-and-autograder",
        HEAD + '''
import importlib
def layer_norm(x, weight=None, bias=None, eps=1e-5):
    checks = importlib.import_module("autograder.optimization.test_layer_norm")
    reference = importlib.import_module("solutions.optimization.layer_norm")
    return reference.layer_norm(x, weight, bias, eps) + 0 * len(checks.MISTAKES)
''' + HONEST_MODULE,
        cheated=FORWARD, words=("cannot be imported while your code is graded",),
    ),
    case(
        "import-solutions-after-removing-the-blocker",
        HEAD + '''
import sys
def layer_norm(x, weight=None, bias=None, eps=1e-5):
    sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "_Blocker"]
    sys.path.insert(0, "__ROOT__")
    for name in [m for m in sys.modules if m.split(".")[0] == "solutions"]:
        del sys.modules[name]
    from solutions.optimization.layer_norm import layer_norm as reference
    return reference(x, weight, bias, eps)
''' + HONEST_MODULE,
        cheated=FORWARD, words=("ModuleNotFoundError", "ImportError"), marks=needs_sandbox,
    ),
    case(
        "spec-from-file-location-on-the-real-path",
        HEAD + _steal_by('''
import importlib.util
from course import paths
def _fetch():
    path = paths.SOLUTIONS / "optimization" / "layer_norm.py"
    spec = importlib.util.spec_from_file_location("stolen_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    import inspect
    return inspect.getsource(module)
''') + HONEST_MODULE,
        cheated=FORWARD, words=("FileNotFoundError",), marks=needs_sandbox,
    ),
    case(
        "reference-through-the-course-api",
        HEAD + '''
from course.catalogue import find
from course.grading import checks
def layer_norm(x, weight=None, bias=None, eps=1e-5):
    unit = find("layer-norm")
    return checks.reference(unit).namespace["layer_norm"](x, weight, bias, eps)
''' + HONEST_MODULE,
        cheated=FORWARD, words=("FileNotFoundError",), marks=needs_sandbox,
    ),
    case(
        "read-hidden-check-file-and-solution",
        HEAD + _steal_by('''
def _fetch():
    with open("__ROOT__/autograder/optimization/test_layer_norm.py") as f:
        f.read()
    with open("__ROOT__/solutions/optimization/layer_norm.py") as f:
        return f.read()
''') + HONEST_MODULE,
        cheated=FORWARD, words=("FileNotFoundError",), marks=needs_sandbox,
    ),
    case(
        "subprocess-cat",
        HEAD + _steal_by('''
import subprocess
def _fetch():
    return subprocess.run(["cat", "__ROOT__/solutions/optimization/layer_norm.py"],
                          capture_output=True, text=True, check=True).stdout
''') + HONEST_MODULE,
        cheated=FORWARD, words=("CalledProcessError", CONFINED), marks=needs_sandbox,
    ),
    case(
        "os-system-copy",
        HEAD + _steal_by('''
import os
def _fetch():
    os.system("cp __ROOT__/solutions/optimization/layer_norm.py stolen.py 2>/dev/null")
    with open("stolen.py") as f:
        return f.read()
''') + HONEST_MODULE,
        cheated=FORWARD, words=("FileNotFoundError", CONFINED), marks=needs_sandbox,
    ),
    case(
        # the repository's history holds every reference and hidden check
        "git-history",
        HEAD + _steal_by('''
import subprocess
def _fetch():
    return subprocess.run(
        ["git", "-C", "__ROOT__", "-c", "safe.directory=*", "show",
         "HEAD:solutions/optimization/layer_norm.py"],
        capture_output=True, text=True, check=True).stdout
''') + HONEST_MODULE,
        cheated=FORWARD, words=("CalledProcessError", "FileNotFoundError", CONFINED),
        marks=needs_sandbox,
    ),
    case(
        "nbgrader-gradebook",
        HEAD + _steal_by('''
import sqlite3
def _fetch():
    db = sqlite3.connect("file:__GRADEBOOK__?mode=ro", uri=True)
    return db.execute("SELECT source FROM source_cell WHERE name = 'layer_norm'").fetchone()[0]
''') + HONEST_MODULE,
        cheated=FORWARD, words=("raised",), gradebook=True, marks=needs_sandbox,
    ),
    case(
        "network-oracle",
        HEAD + _steal_by('''
import socket
def _fetch():
    with socket.create_connection(("127.0.0.1", __PORT__), timeout=2) as s:
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data.decode()
''') + HONEST_MODULE,
        cheated=FORWARD, words=("raised",), marks=needs_sandbox,
    ),
    # -- returning something that is not a plain tensor, or the input itself
    case(
        "tensor-subclass-overriding-comparison",
        HEAD + '''
class Agreeable(torch.Tensor):
    def __eq__(self, other):
        return True
    __ne__ = lambda self, other: False
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        return True
def layer_norm(x, weight=None, bias=None, eps=1e-5):
    return torch.zeros_like(x).as_subclass(Agreeable)
''' + HONEST_MODULE,
        cheated=FORWARD, words=("subclass of torch.Tensor",),
    ),
    case(
        "parameter-subclass",
        HEAD + '''
class Sneaky(torch.nn.Parameter):
    def __eq__(self, other):
        return True
def layer_norm(x, weight=None, bias=None, eps=1e-5):
    return Sneaky(torch.zeros_like(x))
''' + HONEST_MODULE,
        cheated=FORWARD, words=("subclass of torch.Tensor", "returned an object of type"),
    ),
    case(
        "object-with-torch-function-and-eq",
        HEAD + '''
class Anything:
    shape = property(lambda self: (4, 8))
    dtype = torch.float32
    def __eq__(self, other):
        return True
    def __torch_function__(self, func, types, args=(), kwargs=None):
        return self
    def __reduce__(self):
        return (print, ("unpickled in the grader",))
def layer_norm(x, weight=None, bias=None, eps=1e-5):
    return Anything()
''' + HONEST_MODULE,
        cheated=FORWARD, words=("returned an object of type",),
    ),
    case(
        "return-the-input-itself",
        HEAD + '''
def layer_norm(x, weight=None, bias=None, eps=1e-5):
    return x
''' + HONEST_MODULE,
        cheated=FORWARD, words=("differs",),
    ),
    case(
        # a torch-function mode slipped *under* the grader's watch survives the call and
        # computes the forbidden result while the result is being encoded
        "lingering-torch-function-mode",
        HEAD + '''
from torch.overrides import TorchFunctionMode
class _Late(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.todo = {}
    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is torch.Tensor.detach and args and id(args[0]) in self.todo:
            x, weight, bias, eps = self.todo.pop(id(args[0]))
            return F.layer_norm(x, x.shape[-1:], weight, bias, eps).detach()
        return func(*args, **(kwargs or {}))
_late = _Late()
def layer_norm(x, weight=None, bias=None, eps=1e-5):
    out = torch.zeros_like(x)
    _late.todo[id(out)] = (x, weight, bias, eps)
    stack = [torch._C._get_function_stack_at(i)
             for i in range(torch._C._len_torch_function_stack())]
    if _late not in stack:
        watcher = torch._C._pop_torch_function_stack()
        torch._C._push_on_torch_function_stack(_late)
        torch._C._push_on_torch_function_stack(watcher)
    return out
''' + HONEST_MODULE,
        cheated=FORWARD[:4], words=(FORBIDS, "differs", TAMPERED), honest=(),
    ),
    # -- reaching forbidden calls indirectly
    case(
        "getattr-with-built-names",
        HEAD + '''
def layer_norm(x, weight=None, bias=None, eps=1e-5):
    fn = getattr(getattr(torch.nn, "func" + "tional"), "layer" + "_norm")
    return fn(x, x.shape[-1:], weight, bias, eps)
''' + HONEST_MODULE,
        cheated=FORWARD, words=(FORBIDS,),
    ),
    case(
        "torch-ops-aten-composite",
        HEAD + '''
def layer_norm(x, weight=None, bias=None, eps=1e-5):
    op = getattr(torch.ops.aten, "layer_" + "norm").default
    return op(x, [x.shape[-1]], weight, bias, eps)
''' + HONEST_MODULE,
        cheated=FORWARD, words=(FORBIDS,),
    ),
    case(
        "functional-through-importlib",
        HEAD + '''
import importlib
def layer_norm(x, weight=None, bias=None, eps=1e-5):
    functional = importlib.import_module("torch.nn." + "functional")
    return functional.layer_norm(x, x.shape[-1:], weight, bias, eps)
''' + HONEST_MODULE,
        cheated=FORWARD, words=(FORBIDS,),
    ),
    case(
        "variable-functions-binding",
        HEAD + '''
_native = getattr(torch._C._VariableFunctions, "native_layer_norm")
def layer_norm(x, weight=None, bias=None, eps=1e-5):
    return _native(x, [x.shape[-1]], weight, bias, eps)[0]
''' + HONEST_MODULE,
        cheated=FORWARD, words=(FORBIDS,),
    ),
    case(
        "copied-function-object",
        HEAD + '''
import types
_copy = types.FunctionType(F.layer_norm.__code__, F.layer_norm.__globals__, "innocent",
                           F.layer_norm.__defaults__)
def layer_norm(x, weight=None, bias=None, eps=1e-5):
    with torch._C.DisableTorchFunction():
        return _copy(x, x.shape[-1:], weight, bias, eps)
''' + HONEST_MODULE,
        cheated=FORWARD, words=(FORBIDS,),
    ),
    case(
        "layer-norm-module-built-inside",
        HEAD + '''
def layer_norm(x, weight=None, bias=None, eps=1e-5):
    cls = getattr(torch.nn, "Layer" + "Norm")
    m = cls(x.shape[-1], eps=eps, elementwise_affine=False, dtype=x.dtype)
    y = m(x)
    if weight is not None:
        y = y * weight
    return y + bias if bias is not None else y
''' + HONEST_MODULE,
        cheated=FORWARD, words=(FORBIDS,),
    ),
    case(
        # an equivalent library normaliser: group norm with one group over the last dimension
        "group-norm-in-disguise",
        HEAD + '''
def layer_norm(x, weight=None, bias=None, eps=1e-5):
    flat = x.reshape(-1, 1, x.shape[-1])
    if flat.shape[-1] == 1:
        y = torch.zeros_like(flat)
    else:
        y = F.group_norm(flat, 1, eps=eps)
    y = y.reshape(x.shape)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y
''' + HONEST_MODULE,
        cheated=FORWARD, words=(FORBIDS,),
    ),
    case(
        "forbidden-call-in-a-thread",
        HEAD + '''
import threading
def layer_norm(x, weight=None, bias=None, eps=1e-5):
    out = []
    worker = threading.Thread(
        target=lambda: out.append(F.layer_norm(x, x.shape[-1:], weight, bias, eps)))
    worker.start()
    worker.join()
    return out[0]
''' + HONEST_MODULE,
        cheated=FORWARD, words=(FORBIDS, CONFINED),
    ),
    case(
        # _thread does not go through threading.setprofile / settrace
        "forbidden-call-in-a-raw-thread",
        HEAD + '''
import _thread
import time
def layer_norm(x, weight=None, bias=None, eps=1e-5):
    out = []
    _thread.start_new_thread(
        lambda: out.append(F.layer_norm(x, x.shape[-1:], weight, bias, eps)), ())
    while not out:
        time.sleep(0.001)
    return out[0]
''' + HONEST_MODULE,
        cheated=FORWARD, words=(FORBIDS, CONFINED),
    ),
    case(
        "forbidden-call-in-a-forked-process",
        HEAD + '''
import io
import os
def layer_norm(x, weight=None, bias=None, eps=1e-5):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        y = F.layer_norm(x.detach(), x.shape[-1:], weight, bias, eps)
        buffer = io.BytesIO()
        torch.save(y, buffer)
        os.write(w, buffer.getvalue())
        os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 1 << 16):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return torch.load(io.BytesIO(data))
''' + HONEST_MODULE,
        cheated=FORWARD[:4], words=(FORBIDS, CONFINED),
    ),
    case(
        # a thread sits between the serving loop and the grader and erases every finding
        "man-in-the-middle-on-the-reply-pipe",
        HEAD + '''
import io
import os
import socket
import sys
import threading
from multiprocessing.connection import Connection
_frame = sys._getframe()
while _frame.f_code.co_name != "serve":
    _frame = _frame.f_back
_fd = _frame.f_locals["conn"].fileno()
_outer = Connection(os.dup(_fd))
_a, _b = socket.socketpair()
os.dup2(_a.fileno(), _fd)
_inner = Connection(_b.detach())
from course.grading import wire as _wire
def _clean(data):
    payload = _wire.from_bytes(data)
    if isinstance(payload, dict):
        payload["forbidden"] = []
    return _wire.to_bytes(payload)
def _pump():
    _outer.send_bytes(_inner.recv_bytes())
    while True:
        _inner.send_bytes(_outer.recv_bytes())
        _outer.send_bytes(_clean(_inner.recv_bytes()))
threading.Thread(target=_pump, daemon=True).start()
''' + F_LAYER_NORM + HONEST_MODULE,
        cheated=FORWARD, words=(FORBIDS, TAMPERED), honest=(),
    ),
    # -- autograd in the hand-written backward
    case(
        "backward-via-getattr-tensor-backward",
        HEAD + _backward_via('''
def GRAD(y, leaves, grad_out):
    getattr(y, "back" + "ward")(grad_out)
    return [leaf.grad for leaf in leaves]
''') + HONEST_MODULE,
        cheated=BACKWARD, words=("torch.Tensor.backward", FORBIDS),
    ),
    case(
        "backward-via-autograd-functional-vjp",
        HEAD + '''
from torch.autograd.functional import vjp
def _ln(x, w=None, eps=1e-5):
    m = x.mean(-1, keepdim=True)
    y = (x - m) / torch.sqrt(((x - m) ** 2).mean(-1, keepdim=True) + eps)
    return y * w if w is not None else y
def layer_norm_backward(grad_out, x, weight=None, eps=1e-5):
    if weight is None:
        return vjp(lambda a: _ln(a, None, eps), x, grad_out)[1], None, None
    dx, dw = vjp(lambda a, w: _ln(a, w, eps), (x, weight), grad_out)[1]
    return dx, dw, grad_out.sum(dim=tuple(range(x.dim() - 1)))
''' + HONEST_MODULE,
        cheated=BACKWARD, words=(FORBIDS,),
    ),
    case(
        "backward-via-torch-func-vjp",
        HEAD + '''
import torch.func
def _ln(x, w, eps):
    m = x.mean(-1, keepdim=True)
    y = (x - m) / torch.sqrt(((x - m) ** 2).mean(-1, keepdim=True) + eps)
    return y * w if w is not None else y
def layer_norm_backward(grad_out, x, weight=None, eps=1e-5):
    if weight is None:
        _, pullback = torch.func.vjp(lambda a: _ln(a, None, eps), x)
        return pullback(grad_out)[0], None, None
    _, pullback = torch.func.vjp(lambda a, w: _ln(a, w, eps), x, weight)
    dx, dw = pullback(grad_out)
    return dx, dw, grad_out.sum(dim=tuple(range(x.dim() - 1)))
''' + HONEST_MODULE,
        cheated=BACKWARD, words=(FORBIDS,),
    ),
    case(
        "backward-with-torch-function-disabled",
        HEAD + _backward_via('''
def GRAD(y, leaves, grad_out):
    with torch._C.DisableTorchFunction():
        return torch.autograd.grad(y, leaves, grad_out)
''') + HONEST_MODULE,
        cheated=BACKWARD, words=(FORBIDS,),
    ),
    case(
        "backward-with-the-profile-hook-switched-off",
        HEAD + _backward_via('''
import sys
def GRAD(y, leaves, grad_out):
    hook = sys.getprofile()
    sys.setprofile(None)
    try:
        with torch._C.DisableTorchFunction():
            return torch.autograd.grad(y, leaves, grad_out)
    finally:
        sys.setprofile(hook)
''') + HONEST_MODULE,
        cheated=BACKWARD, words=(FORBIDS,),
    ),
    case(
        "backward-through-the-execution-engine",
        HEAD + _backward_via('''
def GRAD(y, leaves, grad_out):
    engine = torch.autograd.Variable._execution_engine
    return engine.run_backward((y,), (grad_out,), False, False, tuple(leaves), False, False)
''') + HONEST_MODULE,
        cheated=BACKWARD, words=(FORBIDS,),
    ),
    case(
        "backward-through-native-layer-norm-backward",
        HEAD + '''
def layer_norm_backward(grad_out, x, weight=None, eps=1e-5):
    d = x.shape[-1]
    mean = x.mean(dim=-1, keepdim=True)
    rstd = 1 / torch.sqrt(((x - mean) ** 2).mean(dim=-1, keepdim=True) + eps)
    w = weight if weight is not None else torch.ones(d, dtype=x.dtype)
    op = getattr(torch.ops.aten, "native_layer_norm_" + "backward")
    dx, dw, db = op(grad_out, x, [d], mean, rstd, w, torch.zeros_like(w), [True, True, True])
    return (dx, None, None) if weight is None else (dx, dw, db)
''' + HONEST_MODULE,
        cheated=BACKWARD, words=(FORBIDS,),
    ),
    # -- the other pilot units' forbidden calls, reached indirectly
    case(
        "transformer-sdpa-through-torch-c-nn",
        HEAD + '''
import math
def scaled_dot_product_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    sdpa = getattr(torch._C._nn, "scaled_dot_product_" + "attention")
    return sdpa(q, k, v, attn_mask=mask), weights
''',
        cheated=("attention", "attention_padding_mask", "attention_causal_mask",
                 "attention_gradients"),
        words=(FORBIDS,), honest=(), unit="transformer",
    ),
    case(
        "lstm-cell-through-torch-vf",
        HEAD + '''
import math
class LSTMCell(torch.nn.Module):
    def __init__(self, input_size, hidden_size, bias=True):
        super().__init__()
        self.hidden_size = hidden_size
        self.weight_ih = torch.nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh = torch.nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        if bias:
            self.bias_ih = torch.nn.Parameter(torch.empty(4 * hidden_size))
            self.bias_hh = torch.nn.Parameter(torch.empty(4 * hidden_size))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        bound = 1.0 / math.sqrt(hidden_size)
        for p in self.parameters():
            torch.nn.init.uniform_(p, -bound, bound)
    def forward(self, x, state=None):
        if state is None:
            z = torch.zeros(x.shape[0], self.hidden_size, dtype=x.dtype, device=x.device)
            state = (z, z)
        import torch._VF as vf
        cell = getattr(vf, "lstm_" + "cell")
        return cell(x, state, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
''',
        cheated=("cell_forward", "cell_zero_state", "cell_gradients", "cell_no_bias"),
        words=(FORBIDS,), honest=("parameters",), unit="lstm",
    ),
    case(
        "ddpm-mse-loss-through-importlib",
        HEAD + '''
import importlib
def ddpm_loss(model, x0, t, noise, alphas_cumprod):
    abar = alphas_cumprod[t].to(x0.dtype).reshape((-1,) + (1,) * (x0.dim() - 1))
    x_t = torch.sqrt(abar) * x0 + torch.sqrt(1 - abar) * noise
    functional = importlib.import_module("torch.nn." + "functional")
    return getattr(functional, "mse_" + "loss")(model(x_t, t), noise)
''',
        cheated=("loss", "loss_gradients"), words=(FORBIDS,), honest=(), unit="ddpm",
    ),
    # -- ending, killing, signalling: the grader carries on
    case(
        "sys-exit-and-os-exit-in-calls",
        HEAD + '''
import os
import sys
def layer_norm(x, weight=None, bias=None, eps=1e-5):
    sys.exit(0)
def layer_norm_backward(grad_out, x, weight=None, eps=1e-5):
    os._exit(0)
''' + HONEST_MODULE,
        cheated=FORWARD + BACKWARD, words=("ended the process running it",),
    ),
    case(
        # killing the fork server (the child's parent) must cost this submission only
        "kill-the-parent-process",
        HEAD + '''
import os
import signal
import time
class LayerNorm(torch.nn.Module):
    def __init__(self, dim, eps=1e-5):
        super().__init__()
        if dim == 7:
            os.kill(os.getppid(), signal.SIGKILL)
            time.sleep(30)  # be killed with it, or time out: never return parameters
        self.eps = eps
        self.weight = torch.nn.Parameter(torch.ones(dim))
        self.bias = torch.nn.Parameter(torch.zeros(dim))
    def forward(self, x):
        mean = x.mean(dim=-1, keepdim=True)
        var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias
''' + HONEST_FORWARD,
        cheated=("module_parameters",),
        words=("ended the process running it", "process running your code", "time limit"),
        honest=FORWARD + ("module_forward",), env={"COURSE_PROBE_TIMEOUT": "3"},
    ),
    case(
        "ignore-signals-and-disable-alarms-then-loop",
        HEAD + '''
import signal
for _sig in (signal.SIGALRM, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGVTALRM):
    signal.signal(_sig, signal.SIG_IGN)
signal.alarm(0)
signal.setitimer(signal.ITIMER_REAL, 0)
def layer_norm_backward(grad_out, x, weight=None, eps=1e-5):
    if eps == 1e-5:
        return torch.zeros_like(x), None, None  # only the eps check will loop
    signal.alarm(0)
    while True:
        pass
''' + HONEST_MODULE,
        cheated=("backward_eps",), words=("time limit",), env={"COURSE_PROBE_TIMEOUT": "2"},
    ),
    case(
        "bounded-fork-bomb-and-daemon",
        HEAD + '''
import os
import time
_children = []
for _ in range(25):
    _pid = os.fork()
    if _pid == 0:
        time.sleep(3600)
        os._exit(0)
    _children.append(_pid)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        while True:
            time.sleep(0.1)
    os._exit(0)
def layer_norm(x, weight=None, bias=None, eps=1e-5):
    for _ in range(5):
        if os.fork() == 0:
            time.sleep(3600)
            os._exit(0)
    return x
''' + HONEST_MODULE,
        cheated=FORWARD, words=("differs", CONFINED, "does not define"), honest=(),
        notes=(CONFINED,),
    ),
    case(
        # overwrite the reference with its own wrong code, the checks, the engine, the
        # grader's output and working directory: all must fail, nothing outside changes
        "write-into-repository-and-grader-output",
        HEAD + '''
import os
_targets = [
    "__ROOT__/''' + SENTINEL + '''",
    "__ROOT__/course/''' + SENTINEL + '''",
    "__ROOT__/solutions/optimization/layer_norm.py",
    "__ROOT__/autograder/optimization/test_layer_norm.py",
    "__ROOT__/course/grading/compare.py",
    "__OUT__/results.json",
    "/proc/1/cwd/''' + SENTINEL + '''",
]
_wrong = "def layer_norm(x, weight=None, bias=None, eps=1e-5):\\n    return x\\n"
for _target in _targets:
    try:
        with open(_target, "a") as f:
            f.write(_wrong)
    except OSError as exc:
        print(_target, type(exc).__name__)
def layer_norm(x, weight=None, bias=None, eps=1e-5):
    return x
''' + HONEST_MODULE,
        cheated=FORWARD, words=("differs",), marks=needs_sandbox,
    ),
]

assert len(CASES) >= 22


# --------------------------------------------------------------------------------------------
# Fixtures: an oracle on the network, a gradebook, and what "unharmed, untouched" means.


@pytest.fixture(scope="module")
def oracle():
    """A TCP server on localhost that hands the reference source to whoever connects."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    seen: list[str] = []
    stop = threading.Event()
    source = master_source(LN).encode()

    def serve():
        while not stop.is_set():
            try:
                conn, peer = server.accept()
            except OSError:
                continue
            seen.append(str(peer))
            with conn:
                conn.sendall(source)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], seen
    stop.set()
    thread.join(timeout=5)
    server.close()


@pytest.fixture
def gradebook(monkeypatch):
    """An nbgrader-like gradebook.db holding the reference source, outside /tmp (the sandbox
    gets a fresh /tmp anyway), hidden through $COURSE_SANDBOX_HIDE."""
    base = Path("/var/tmp") if os.access("/var/tmp", os.W_OK) else Path.home()
    folder = Path(tempfile.mkdtemp(prefix="course-hostile-", dir=base))
    path = folder / "gradebook.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE source_cell (name TEXT, source TEXT)")
    db.execute("INSERT INTO source_cell VALUES ('layer_norm', ?)", (master_source(LN),))
    db.commit()
    db.close()
    yield path
    for child in folder.iterdir():
        child.unlink()
    folder.rmdir()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "absent"


def _grader_state() -> dict:
    return {
        "cwd": os.getcwd(),
        "signals": {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM,
                                                     signal.SIGALRM, signal.SIGCHLD)},
        "helpers": (id(torch.allclose), id(torch.equal), id(torch.testing.assert_close),
                    id(grading_compare.compare_values), id(Grader.compare)),
        "files": {str(p): _digest(p) for p in GUARDED},
    }


def _leftovers() -> list[int]:
    """Processes still running below the fork server, after a short grace period."""
    deadline = time.monotonic() + 10
    while True:
        server = forkserver.server_pid()
        left = sandbox.descendants(server) if server else []
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def grade_source(tmp_path: Path, source: str | bytes, unit, suffix: str = ".py"):
    """Write ``source`` into a fresh file and grade it on the CPU. The one helper of both
    corpora (see tests/test_broken.py)."""
    path = tmp_path / "submission" / f"submission{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(source, bytes):
        path.write_bytes(source)
    else:
        path.write_text(source, encoding="utf-8")
    return grade_submission(unit, path, device="cpu")


# --------------------------------------------------------------------------------------------
# The test.


# Cheats that still get credit today: each is a strict xfail, so the day one is closed its
# test starts failing and must be promoted to a plain case. They all need code running in the
# child to defeat detection that also runs there; none can forge a value (see README, threat
# model). Closing them needs seccomp (no threads or forks after the load), rules sent with
# each request, and snapshot data out of the learner's reach.
KNOWN_HOLES = {
    "swap-watch-code-under-its-wrapper": "the tripwire checks a wrapper's code, not the "
    "wrapped generator's",
    "frame-surgery-clears-rules": "the rules live in the child's serve() frame",
    "gc-empties-frozen-forbid-rules": "frozen dataclasses can still be mutated with "
    "object.__setattr__",
    "frame-surgery-blinds-integrity-snapshot": "the snapshot object is reachable from frames",
    "man-in-the-middle-on-the-reply-pipe": "the child's reply pipe can be replaced by a proxy",
}
CASES = [
    pytest.param(*p.values, id=p.id, marks=[*p.marks, pytest.mark.xfail(
        strict=True, reason=f"known hole: {KNOWN_HOLES[p.id]}")])
    if p.id in KNOWN_HOLES else p
    for p in CASES
]

@pytest.mark.parametrize("c", CASES)
def test_hostile_submission_gets_no_credit(c: Case, tmp_path, monkeypatch, oracle, request):
    unit = find(c.unit)
    out_dir = tmp_path / "grader-output"
    out_dir.mkdir()
    (out_dir / "results.json").write_text('{"score": 0}', encoding="utf-8")
    source = (c.source.replace("__ROOT__", str(ROOT)).replace("__OUT__", str(out_dir))
              .replace("__PORT__", str(oracle[0])))
    for name, value in c.env.items():
        monkeypatch.setenv(name, value)
    if c.gradebook:
        book = request.getfixturevalue("gradebook")
        source = source.replace("__GRADEBOOK__", str(book))
        forkserver.prestart()  # a grader already running when the gradebook is named
        monkeypatch.setenv("COURSE_SANDBOX_HIDE", str(book))
    before = _grader_state()

    result = grade_source(tmp_path, source, unit, c.suffix)

    checks = {r.id: r for r in result.checks}
    expected_ids = [info.id for info, _ in load_checks(unit).checks]
    assert list(checks) == expected_ids, "every check of the unit is still graded"
    report = "\n".join(f"{r.id}: {r.status} {r.score}/{r.max_score}: {r.output[:300]}"
                       for r in result.checks)
    assert not [r.id for r in result.checks if r.status == "error"], report
    for check_id in c.cheated:
        r = checks[check_id]
        assert r.score == 0 and r.status == "failed", f"cheat got credit on {check_id}\n{report}"
        assert any(w in r.output for w in c.words), f"unclear feedback on {check_id}\n{report}"
    for check_id in c.honest:
        assert checks[check_id].status == "passed", f"honest {check_id} lost\n{report}"
    for words in c.notes:
        assert any(words in n for n in result.notes), result.notes

    # the grader's process is unharmed, the repository untouched, nothing left running
    assert _grader_state() == before
    assert not (ROOT / SENTINEL).exists() and not (ROOT / "course" / SENTINEL).exists()
    assert (out_dir / "results.json").read_text(encoding="utf-8") == '{"score": 0}'
    assert oracle[1] == [], "a submission reached the network"
    assert _leftovers() == []


def test_grader_still_grades_the_reference_after_the_corpus(tmp_path):
    """After every hostile case (fork server killed, processes spawned, pipes hijacked...),
    the reference still gets full marks."""
    result = grade_source(tmp_path, master_source(LN), LN)
    assert result.passed, [(c.id, c.output) for c in result.checks if c.status != "passed"]
    assert result.isolation == sandbox.level()
