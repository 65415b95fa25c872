"""Reference results kept between runs (course.grading.refcache): read back instead of
recomputed, the same grade either way, invalidated by any change to what determines them, never
trusted when damaged, and not used from disk where learner code could have written it."""

from __future__ import annotations

import pytest

from course import catalogue
from course.grading import engine, grader, refcache
from course.grading.checks import load_checks
from course.grading.engine import grade_submission


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh, empty cache folder; every reference result is worth keeping; a counter of
    the trusted implementations' computations."""
    folder = tmp_path / "refcache"
    monkeypatch.setenv("COURSE_REFERENCE_CACHE", str(folder))
    monkeypatch.setattr(refcache, "WORTH_SECONDS", 0.0)
    monkeypatch.setattr(refcache, "_memory", {})
    monkeypatch.setattr(refcache, "_files", {})
    monkeypatch.setattr(refcache, "_disk", True)
    computed = []
    real = grader.execute

    def counting(probe, ns, device, rules, *args, **kwargs):
        computed.append(probe)
        return real(probe, ns, device, rules, *args, **kwargs)

    monkeypatch.setattr(grader, "execute", counting)
    return folder, computed


def _forget(monkeypatch) -> None:
    """As a fresh process would start: nothing in memory."""
    monkeypatch.setattr(refcache, "_memory", {})
    monkeypatch.setattr(refcache, "_files", {})


def _grade(unit):
    result = grade_submission(unit, unit.solution_path, device="cpu", isolation="none")
    return [(c.id, c.status, c.score, c.message) for c in result.checks]


def test_a_second_run_reads_every_reference_result_back(cache, monkeypatch):
    folder, computed = cache
    unit = catalogue.find("layer-norm")
    first = _grade(unit)
    assert computed and all(status == "passed" for _, status, _, _ in first)
    files = sorted(p.name for p in folder.iterdir())
    assert files == [f for f in files if f.startswith("layer-norm.reference.")] and files
    _forget(monkeypatch)
    computed.clear()
    assert _grade(unit) == first
    assert computed == []  # nothing recomputed: all came from the file


def test_a_wrong_submission_gets_the_same_feedback_from_the_cache(cache, monkeypatch, write):
    _, computed = cache
    unit = catalogue.find("layer-norm")
    mistake = load_checks(unit).mistakes[0]
    wrong = write("wrong.py", mistake.apply(unit.solution_path.read_text()))
    first = grade_submission(unit, wrong, device="cpu", isolation="none")
    assert not first.passed
    _forget(monkeypatch)
    computed.clear()
    again = grade_submission(unit, wrong, device="cpu", isolation="none")
    assert [(c.status, c.message, c.mistake) for c in again.checks] == [
        (c.status, c.message, c.mistake) for c in first.checks]
    assert mistake.id in {c.mistake for c in again.checks}  # diagnosed from cached results
    assert computed == []  # the reference's and the mistakes' results alike


def test_keys_change_with_source_checks_unit_and_name():
    base = refcache.implementation_key("u", "reference", "src", "checks")
    assert base == refcache.implementation_key("u", "reference", "src", "checks")
    assert len({base, refcache.implementation_key("u", "reference", "src2", "checks"),
                refcache.implementation_key("u", "reference", "src", "checks2"),
                refcache.implementation_key("v", "reference", "src", "checks"),
                refcache.implementation_key("u", "mistake", "src", "checks")}) == 5


def test_a_changed_master_gets_a_new_file_and_the_stale_one_goes(cache, monkeypatch):
    folder, computed = cache
    unit = catalogue.find("layer-norm")
    _grade(unit)
    old = {p.name for p in folder.iterdir()}
    _forget(monkeypatch)
    computed.clear()
    from course.grading import checks

    checks.reference.cache_clear()
    real = checks.master_source
    monkeypatch.setattr(checks, "master_source", lambda u: real(u) + "\n# edited\n")
    try:
        _grade(unit)
        assert computed  # the edited master is computed afresh
        new = {p.name for p in folder.iterdir()}
        assert new and not (new & old)  # its own file; the stale ones removed
    finally:
        checks.reference.cache_clear()


@pytest.mark.parametrize("damage", ["flip", "truncate", "pickle"])
def test_a_damaged_file_is_recomputed_and_rewritten(cache, monkeypatch, damage):
    import pickle

    folder, computed = cache
    unit = catalogue.find("layer-norm")
    first = _grade(unit)
    (path,) = [p for p in folder.iterdir() if p.name.startswith("layer-norm.reference.")]
    data = path.read_bytes()
    if damage == "flip":
        data = data[:-5] + bytes([data[-5] ^ 0xFF]) + data[-4:]
    elif damage == "truncate":
        data = data[: len(data) // 2]
    else:  # a forged file whose digest is right, holding a pickle
        import hashlib

        body = pickle.dumps({"x": 1})
        data = hashlib.sha256(body).hexdigest().encode() + b"\n" + body
    path.write_bytes(data)
    _forget(monkeypatch)
    computed.clear()
    assert _grade(unit) == first
    assert computed  # recomputed, not trusted
    _forget(monkeypatch)
    computed.clear()
    _grade(unit)
    assert computed == []  # and the rewritten file serves the next run


def test_memory_only_neither_reads_nor_writes_the_folder(cache, monkeypatch):
    folder, computed = cache
    unit = catalogue.find("layer-norm")
    _grade(unit)
    _forget(monkeypatch)
    computed.clear()
    refcache.use_disk(False)
    for path in folder.iterdir():
        path.unlink()
    _grade(unit)
    assert computed and not list(folder.iterdir())
    computed.clear()
    _grade(unit)
    assert computed == []  # still kept in this process's memory


def test_off_turns_the_disk_cache_off(cache, monkeypatch):
    folder, _ = cache
    monkeypatch.setenv("COURSE_REFERENCE_CACHE", "off")
    _grade(catalogue.find("layer-norm"))
    assert refcache.folder() is None and not folder.exists()


def test_graders_of_others_work_use_the_disk_only_inside_a_sandbox(cache, monkeypatch):
    from course import batch
    from course.isolation import sandbox

    unit = catalogue.find("layer-norm")
    for level, disk in (("process", False), ("bubblewrap", True)):
        monkeypatch.setattr(sandbox, "level", lambda level=level: level)
        monkeypatch.setattr(engine, "grade_submission", lambda *a, **k: 1 / 0)
        assert batch.outcome(unit, lambda: unit.solution_path, "cpu")[0] == "error"
        assert refcache._disk is disk


def test_a_float64_probe_runs_the_reference_once_a_float32_one_twice(cache, monkeypatch):
    import torch

    from course.grading.engine import unit_context
    from course.grading.grader import Grader
    from course.grading.spec import Call
    from course.isolation.inprocess import InProcessRunner

    monkeypatch.setattr(refcache, "WORTH_SECONDS", float("inf"))  # nothing kept: count runs
    _, computed = cache
    unit = catalogue.find("layer-norm")
    runner = InProcessRunner.from_cells([(1, unit.solution_path.read_text())], "cpu", [])
    grader = Grader(unit_context(unit, "cpu"), runner, "forward")
    for dtype, runs in ((torch.float64, 1), (torch.float32, 2)):
        computed.clear()
        grader.compare(Call("layer_norm", (torch.randn(4, 8, dtype=dtype),)))
        assert len(computed) == runs, dtype
