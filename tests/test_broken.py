"""A broken corpus: submissions that are wrong, malformed or runaway, not malicious.

Each is graded for real (``grade_submission(unit, path, device="cpu")``) and must get a clear
message in words (asserted on its key words), keep the credit it earned on the checks it does
pass, and finish: time, memory and output are bounded by the engine's limits (made small here
through the environment so the corpus stays fast), never by an assertion on wall-clock time.

A file that cannot be read at all is refused with :class:`SubmissionError` before anything
runs; everything else is graded check by check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
from test_hostile import (  # what both corpora share
    BACKWARD,
    FORWARD,
    HONEST,
    HONEST_MODULE,
    grade_source,
)

from course.catalogue import find
from course.grading.checks import load_checks
from course.grading.submission import SubmissionError

LN = find("layer-norm")

NOT_DEFINED = "does not define"

# A LayerNorm whose parameters are right and whose forward is not written yet: the cheap
# credit ("module_parameters") most broken submissions carry, to show that it is kept.
PARAMS_ONLY, CREDIT = HONEST_MODULE, HONEST

FORWARD_OK = '''
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

HEAD = "import torch\n"


def returning(expression: str) -> str:
    """A layer_norm that returns ``expression`` (of x), plus the cheap credit."""
    return (HEAD + "import numpy as np\n\ndef layer_norm(x, weight=None, bias=None, eps=1e-5):"
            f"\n    return {expression}\n" + PARAMS_ONLY)


BAD_DEF = "def layer_norm(x, weight=None, bias=None, eps=1e-5:"
SYNTAX_ERROR = HEAD + PARAMS_ONLY + f"\n{BAD_DEF}\n    pass\n"
SYNTAX_LINE = SYNTAX_ERROR.splitlines().index(BAD_DEF) + 1


def notebook(*sources: str, outputs: list | None = None) -> str:
    cells = [{"cell_type": "code", "id": f"c{i}", "metadata": {}, "source": s,
              "outputs": [], "execution_count": None} for i, s in enumerate(sources)]
    if outputs is not None:
        cells[0]["outputs"] = outputs
        cells[0]["execution_count"] = 1
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells})


@dataclass(frozen=True)
class Case:
    id: str
    content: str | bytes
    suffix: str = ".py"
    refused: tuple[str, ...] = ()  # words of the SubmissionError, when it cannot be read
    failed: dict = field(default_factory=dict)  # check id -> words its feedback must hold
    passed: tuple[str, ...] = CREDIT  # checks whose credit must be kept
    notes: tuple[str, ...] = ()  # words expected among the result's notes
    fatal: tuple[str, ...] = ()  # words of the result's fatal message (and of every check)
    env: dict = field(default_factory=dict)


def case(*args, **kwargs):
    c = Case(*args, **kwargs)
    return pytest.param(c, id=c.id)


def each(checks, words: str) -> dict:
    return dict.fromkeys(checks, words)


CASES = [
    # -- files that cannot be read: refused, with the reason in words
    case("not-json", "{ this is not json", ".ipynb", refused=("not JSON",)),
    case("json-but-not-a-notebook", '{"cell": [], "format": 4}', ".ipynb",
         refused=("JSON but not a Jupyter notebook",)),
    case("json-array", "[1, 2, 3]", ".ipynb", refused=("JSON but not a Jupyter notebook",)),
    case("empty-python-file", "", ".py", refused=("is empty",)),
    case("blank-notebook", "  \n\n\t ", ".ipynb", refused=("is empty",)),
    case("nbformat-3", json.dumps({"nbformat": 3, "nbformat_minor": 0, "cells": [],
                                   "worksheets": []}), ".ipynb",
         refused=("nbformat version 3", "version 4")),
    case("nbformat-4-with-a-malformed-cell",
         '{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": "import torch"}',
         ".ipynb", refused=("not a readable notebook",)),
    case("binary-junk", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x00" * 64, ".ipynb",
         refused=("not UTF-8",)),
    case("latin-1-source", "# café au lait\nimport torch\n".encode("latin-1"), ".py",
         refused=("not UTF-8", "save the file as UTF-8")),
    # -- readable, but broken code: graded check by check
    case(
        # Windows editors save UTF-8 with a byte-order mark; Python itself accepts it
        "utf-8-with-byte-order-mark",
        b"\xef\xbb\xbf" + (HEAD + PARAMS_ONLY).encode(),
        failed={"forward": NOT_DEFINED},
    ),
    case(
        "syntax-error",
        SYNTAX_ERROR,
        failed=each(FORWARD + ("module_parameters",), NOT_DEFINED),
        passed=(), notes=(f"syntax error on line {SYNTAX_LINE}",),
    ),
    case(
        # a .py in the percent format (like the course's own master files): a syntax error
        # in a later helper cell costs that cell only, as it does in a notebook
        "syntax-error-in-a-later-percent-cell",
        "# %%\n" + HEAD + PARAMS_ONLY + "\n# %%\ndef helper(:\n    pass\n",
        failed={"forward": NOT_DEFINED}, notes=("syntax error",),
    ),
    case(
        "exception-at-import",
        HEAD + PARAMS_ONLY + "\nraise RuntimeError('dataset not found')\n" + FORWARD_OK,
        failed={"forward": NOT_DEFINED},
        notes=("raised RuntimeError: dataset not found",),
    ),
    case(
        # an exception whose message cannot even be turned into text
        "exception-with-a-broken-message",
        HEAD + PARAMS_ONLY + '''
class Weird(Exception):
    def __str__(self):
        raise ValueError("no words for this")
raise Weird()
''',
        failed={"forward": NOT_DEFINED}, notes=("Weird",),
    ),
    case(
        "missing-required-name",
        notebook(HEAD + PARAMS_ONLY, FORWARD_OK.replace("def layer_norm(", "def layernorm(")),
        ".ipynb",
        failed={**each(FORWARD, "does not define `layer_norm`"),
                "backward": "does not define `layer_norm_backward`"},
    ),
    case(
        "wrong-signature",
        HEAD + '''
def layer_norm(x):
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + 1e-5)
''' + PARAMS_ONLY,
        failed={"forward_affine": "TypeError", "forward_small_variance": "TypeError"},
        passed=("forward", "batch_independence", "module_parameters"),
    ),
    case(
        "name-bound-to-a-non-callable",
        HEAD + "layer_norm = 3\n" + PARAMS_ONLY,
        failed={"forward": "not callable"},
    ),
    case(
        "infinite-loop-at-import",
        HEAD + PARAMS_ONLY + "\nwhile True:\n    pass\n",
        fatal=("time limit of 3 s",), passed=(), env={"COURSE_LOAD_TIMEOUT": "3"},
    ),
    case(
        "infinite-loop-in-backward",
        HEAD + FORWARD_OK + '''
def layer_norm_backward(grad_out, x, weight=None, eps=1e-5):
    while True:
        pass
''' + PARAMS_ONLY,
        failed=each(BACKWARD, "time limit of 3 s"),
        passed=FORWARD + ("module_parameters",), env={"COURSE_PROBE_TIMEOUT": "3"},
    ),
    case(
        "runaway-memory-at-import",
        HEAD + PARAMS_ONLY + '''
def _hoard():
    junk = []
    while True:
        junk.append(bytearray(10**6))
_hoard()
''',
        failed={"forward": NOT_DEFINED}, notes=("MemoryError",),
        env={"COURSE_MEMORY_MB": "400"},
    ),
    case(
        "huge-allocation-in-a-call",
        returning("torch.empty(10**12)"),
        failed={"forward": "allocate"}, env={"COURSE_MEMORY_MB": "400"},
    ),
    case(
        "hundred-megabytes-of-printing",
        HEAD + "import os\nimport sys\n" + PARAMS_ONLY + '''
for _ in range(100):
    print("x" * 10**6)
os.write(1, b"y" * 10**8)
sys.__stdout__.write("z" * 10**7)
def layer_norm(x, weight=None, bias=None, eps=1e-5):
    print("w" * 10**8, file=sys.stderr)
    return x
''',
        failed={"forward": "differs"},
    ),
    case(
        "deep-recursion",
        HEAD + "def layer_norm(x, weight=None, bias=None, eps=1e-5):\n"
        "    return layer_norm(x, weight, bias, eps)\n" + PARAMS_ONLY,
        failed={"forward": "maximum recursion depth exceeded"},
    ),
    case(
        # recursion through C with the limit lifted overflows the C stack
        "deep-recursion-with-the-limit-lifted",
        HEAD + "import sys\nsys.setrecursionlimit(10**7)\n" + PARAMS_ONLY + '''
class Bottomless:
    def __getattr__(self, name):
        return getattr(self, name)
def layer_norm(x, weight=None, bias=None, eps=1e-5):
    return Bottomless().x
''',
        failed={"forward": "SIGSEGV"},
    ),
    case("returns-a-numpy-array", returning("x.numpy()"),
         failed={"forward": "numpy.ndarray"}),
    case("returns-a-list", returning("x.tolist()"),
         failed={"forward": "expected a tensor"}),
    case("returns-none", returning("None"), failed={"forward": "expected a tensor"}),
    case("wrong-shape", returning("x.mean(dim=-1)"),
         failed={"forward": "has shape (4,), expected (4, 8)"}),
    case("wrong-dtype", returning("x.double()"),
         failed={"forward": "dtype float64, expected float32"}),
    case("integer-dtype", returning("x.long()"),
         failed={"forward": "dtype int64, expected float32"}),
    case("wrong-device", returning("torch.empty_like(x, device='meta')"),
         failed={"forward": "meta"}),
    case("nan-output", returning("x * float('nan')"),
         failed={"forward": "non-finite values (NaN"}),
    case("inf-output", returning("torch.full_like(x, float('inf'))"),
         failed={"forward": "non-finite values (inf"}),
    case(
        "module-without-super-init",
        HEAD + PARAMS_ONLY.replace("        super().__init__()\n", ""),
        failed={"module_parameters": "Module.__init__", "module_forward": "Module.__init__"},
        passed=(),
    ),
    case(
        "module-with-other-parameter-names",
        HEAD + PARAMS_ONLY.replace("self.weight", "self.gamma").replace("self.bias", "self.beta"),
        failed={"module_parameters": "missing ['bias', 'weight']",
                "module_forward": "could not load the grader's weights"},
        passed=(),
    ),
    case(
        "markdown-only-notebook",
        json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
            {"cell_type": "markdown", "id": "m", "metadata": {}, "source": "# my answer"}]}),
        ".ipynb", failed=each(FORWARD + ("module_parameters",), NOT_DEFINED), passed=(),
        notes=("no code cells to grade",),
    ),
    case(
        "thousands-of-cells",
        notebook(HEAD + PARAMS_ONLY, *[f"x_{i} = {i}" for i in range(2500)], FORWARD_OK),
        ".ipynb", failed={"forward": "does not define `layer_norm`"},
        notes=("only the first 2000 code cells were graded",),
    ),
    case(
        # 31 MiB of stored figures: the code is what is graded, outputs are not
        "huge-stored-outputs",
        notebook(HEAD + PARAMS_ONLY, outputs=[{
            "output_type": "display_data", "metadata": {},
            "data": {"image/png": "iVBORw0KGgo" * (3 * 2**20), "text/plain": "<Figure>"}}]),
        ".ipynb", failed={"forward": NOT_DEFINED},
    ),
]

assert len(CASES) >= 22


@pytest.mark.parametrize("c", CASES)
def test_broken_submission_is_explained(c: Case, tmp_path, monkeypatch):
    for name, value in c.env.items():
        monkeypatch.setenv(name, value)
    if c.refused:
        with pytest.raises(SubmissionError) as info:
            grade_source(tmp_path, c.content, LN, c.suffix)
        assert all(w in str(info.value) for w in c.refused), str(info.value)
        return

    result = grade_source(tmp_path, c.content, LN, c.suffix)

    checks = {r.id: r for r in result.checks}
    assert list(checks) == [info.id for info, _ in load_checks(LN).checks]
    report = "\n".join(f"{r.id}: {r.status} {r.score}/{r.max_score}: {r.output[:300]}"
                       for r in result.checks) + f"\nnotes: {result.notes}\nfatal: {result.fatal}"
    assert not [r.id for r in result.checks if r.status == "error"], report
    for check_id, words in c.failed.items():
        r = checks[check_id]
        assert r.status == "failed" and r.score == 0, f"{check_id} should fail\n{report}"
        assert words in r.output, f"feedback on {check_id} lacks {words!r}\n{report}"
    for check_id in c.passed:
        assert checks[check_id].status == "passed", f"{check_id} lost its credit\n{report}"
    for words in c.notes:
        assert any(words in n for n in result.notes), f"no note says {words!r}\n{report}"
    for words in c.fatal:
        assert words in result.fatal, report
        assert all(words in r.output and r.score == 0 for r in result.checks), report
    # whatever the submission printed, the report stays small
    assert len(json.dumps(result.to_dict())) < 100_000
