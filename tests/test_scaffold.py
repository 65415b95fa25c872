"""`course new SLUG` scaffolds a planned unit in a copy of the course: the three hand-written
sources at the catalogue's paths, the exercise built from them, a draft that the tests and
`course check --all` leave alone, whose untouched stub scores zero; it never overwrites."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SYLLABUS = """# Syllabus (a test's excerpt)

**4.8 `rlhf`** — a paper.
- `preference_loss(r_chosen, r_rejected) -> 0-dim` = −mean(log σ(r_c − r_r)).
- `kl_penalized_reward(reward (B,), logprobs (B, T), ref_logprobs (B, T), beta, mask=None) ->
  (B,)` = reward − β·Σ_t mask·(logprobs − ref_logprobs).
- `class RewardHead(nn.Module)`: `__init__(dim)`; `forward(h) -> (B,)`.

**4.9 `instructgpt`** — another paper.
- `not_this(x)`.
"""


def _course(tree: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COURSE_ROOT": str(tree), "COURSE_SYLLABUS": str(tree / "SYL.md"),
           "COLUMNS": "100"}
    return subprocess.run([sys.executable, "-m", "course.cli", *args], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture
def tree(tmp_path):
    copy = tmp_path / "course-copy"
    copy.mkdir()
    for name in ("lectures", "solutions", "exercises", "autograder"):
        shutil.copytree(ROOT / name, copy / name)
    shutil.copy(ROOT / "jupytext.toml", copy / "jupytext.toml")
    (copy / "SYL.md").write_text(SYLLABUS, encoding="utf-8")
    # 4.8 rlhf is ready in the course; in the copy it goes back to planned (no unit files)
    for path in (copy / "solutions/transformers/rlhf.py",
                 copy / "autograder/transformers/test_rlhf.py",
                 copy / "lectures/04-transformers/08-rlhf.md",
                 copy / "exercises/04-transformers/08-rlhf.ipynb"):
        path.unlink(missing_ok=True)
    return copy



def test_course_new_scaffolds_a_draft_whose_stub_scores_zero(tree):
    made = _course(tree, "new", "rlhf")
    assert made.returncode == 0, made.stdout + made.stderr
    master = (tree / "solutions/transformers/rlhf.py").read_text(encoding="utf-8")
    assert "def preference_loss(r_chosen, r_rejected):" in master
    assert "def kl_penalized_reward(reward, logprobs, ref_logprobs, beta, mask=None):" in master
    assert "class RewardHead(nn.Module):" in master and "def forward(self, h):" in master
    assert "not_this" not in master  # the next entry's API is not this unit's
    assert "``reward (B,)``" in master and "Forbidden:" in master and "dtype" in master
    assert master.count("# BEGIN SOLUTION") == master.count("# END SOLUTION") == 4
    checks = (tree / "autograder/transformers/test_rlhf.py").read_text(encoding="utf-8")
    assert "FORBIDDEN" in checks and "MISTAKES" in checks and "@check(" in checks
    lecture = (tree / "lectures/04-transformers/08-rlhf.md").read_text(encoding="utf-8")
    for section in ("## The problem of the day", "## The idea and its math",
                    "## Its place among the constraints", "## The headline result",
                    "## A miniature reproduction", ":tags: [claim]", "course check rlhf"):
        assert section in lecture, section
    exercise = tree / "exercises/04-transformers/08-rlhf.ipynb"
    assert exercise.exists() and "BEGIN SOLUTION" not in exercise.read_text(encoding="utf-8")

    listed = _course(tree, "list", "--part", "4")
    assert "draft" in listed.stdout, listed.stdout
    graded = _course(tree, "check", "rlhf", "--submission", str(exercise),
                     "--json", str(tree / "r.json"))
    result = json.loads((tree / "r.json").read_text(encoding="utf-8"))
    assert graded.returncode == 1 and result["score"] == 0, graded.stdout + graded.stderr
    assert result["tests"], "the example check ran"
    # a draft is not gradable for `--all`, the tests' unit lists or the exports
    probe = subprocess.run(
        [sys.executable, "-c", "from course import catalogue; u = catalogue.find('rlhf'); "
         "print(u.status, u.gradable, u.slug in [v.slug for v in catalogue.gradable_units()])"],
        env={**os.environ, "COURSE_ROOT": str(tree)}, capture_output=True, text=True, check=True)
    assert probe.stdout.split() == ["draft", "False", "False"]


def test_course_new_refuses_to_overwrite(tree):
    assert _course(tree, "new", "rlhf").returncode == 0
    before = {p: p.read_bytes() for p in tree.rglob("*rlhf*") if p.is_file()}
    again = _course(tree, "new", "rlhf")
    assert again.returncode == 2
    assert "never overwrites" in again.stderr + again.stdout
    assert {p: p.read_bytes() for p in tree.rglob("*rlhf*") if p.is_file()} == before
    ready = _course(tree, "new", "layer-norm")
    assert ready.returncode == 2 and "already has" in ready.stderr + ready.stdout
