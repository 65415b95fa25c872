"""Grading imports neither ``torch._dynamo`` (about a second) nor ``sympy`` (a third of a
second): the first comes with a ``torch.optim`` optimizer (the drivers train with the grader's
own Adam; a learner's ``Optimizer`` subclass is deferred, see ``test_deferred_dynamo.py``), the
second with a backward pass given ``grad_outputs`` (the probes and checks contract with the
cotangents instead). Graded in one process, so that the learner's side (here the master) and
the drivers are watched too."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

GRADE = textwrap.dedent("""
    import sys
    from course import catalogue
    from course.grading.engine import grade_submission
    unit = catalogue.find(sys.argv[1])
    result = grade_submission(unit, unit.solution_path, isolation="none")
    print(all(c.status == "passed" for c in result.checks) and len(result.checks) > 0,
          "torch._dynamo" in sys.modules, "sympy" in sys.modules)
""")


@pytest.mark.parametrize("slug", ["conv", "adam", "word2vec", "weight-decay"])
def test_grading_imports_neither_dynamo_nor_sympy(slug, tmp_path):
    env_cache = {"COURSE_REFERENCE_CACHE": str(tmp_path / "cache")}  # references computed too
    out = subprocess.run([sys.executable, "-c", GRADE, slug], capture_output=True, text=True,
                         check=True, env={**os.environ, **env_cache}).stdout.split()
    assert out == ["True", "False", "False"], out


def test_the_fork_server_does_not_import_sympy():
    code = textwrap.dedent("""
        import sys
        import course.isolation.zygote
        print("sympy" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False"]
