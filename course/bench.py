"""``course bench``: the figures behind the speed budgets.

- in-kernel ``check()`` latency per unit (public checks, learner code = the reference
  executed as a notebook kernel would hold it), median of ``repeat`` warm runs, and the first
  call in a fresh interpreter that has run the exercise's cells (what a learner's first check
  cell costs in a new kernel);
- ``course check UNIT --reference`` wall time per unit, as a learner would run it (a fresh
  process: interpreter start, torch import, fork server, isolated child): its first run
  (which may fill the reference cache) and the median of two more;
- ``course check --all --reference`` wall time with isolation (one worker per core, the
  default, and one worker), and the one-worker time's ratio to the same command with
  ``--no-isolation`` (learner code in the grader's own process, which grades in turn).

- ``python -c "import torch"`` wall time on the same machine, the yardstick of
  ``course check UNIT``.

Targets on two cores: check() ≤ 0.5 s warm and ≤ 1.5 s first, ``course check UNIT`` ≤ 1.8× the
import of torch, ``--all`` ≤ 60 s, isolation ratio ≤ 1.3×.
Benchmarks print figures; no test asserts on them.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from rich.console import Console
from rich.table import Table

from course.catalogue import Unit

TARGET_CHECK = 0.5
TARGET_FIRST_CHECK = 1.5
TARGET_CLI_RATIO = 1.8  # course check UNIT ÷ python -c "import torch"
TARGET_ALL = 60.0
TARGET_RATIO = 1.3


def _wall(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "course.cli", *args], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - started


def torch_import_wall(repeat: int = 3) -> float:
    """Median wall time of ``python -c "import torch"`` in a fresh interpreter."""
    def once() -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch"], check=False)
        return time.perf_counter() - started

    return statistics.median(once() for _ in range(repeat))


def in_kernel_latency(unit: Unit, repeat: int) -> float:
    from course.grading.submission import execute_cells
    from course.notebook import Checker

    ns, _ = execute_cells([(1, unit.solution_path.read_text())], f"_bench_{unit.module}")
    checker = Checker(unit.slug)
    checker(namespace=ns)._repr_html_()  # warm: imports, reference, first-use costs
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        checker(namespace=ns)._repr_html_()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


_FIRST_CALL = """
import time, torch
from course import catalogue
from course.grading.submission import execute_cells
unit = catalogue.find({slug!r})
ns, _ = execute_cells([(1, unit.solution_path.read_text())], "_bench_first")
from course.notebook import Checker
started = time.perf_counter()
check = Checker(unit.slug)
check(namespace=ns)._repr_html_()
print(time.perf_counter() - started)
"""


def first_call_latency(unit: Unit) -> float:
    """The first ``check()`` in a fresh interpreter that has imported torch and run the
    exercise's cells, as in a new kernel (the cells' own cost is not counted)."""
    proc = subprocess.run([sys.executable, "-c", _FIRST_CALL.format(slug=unit.slug)],
                          capture_output=True, text=True, check=False)
    try:
        return float(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return float("nan")


def run_bench(units: list[Unit], repeat: int = 5, console: Console | None = None,
              whole: bool = True) -> dict:
    """Print and return the per-unit figures and (``whole``) those of ``--all``."""
    console = console or Console()
    torch_s = torch_import_wall()
    figures: dict = {"units": {}, "import_torch_s": torch_s}
    table = Table(title=f"Per unit (two-core targets: check() ≤ {TARGET_CHECK:g} s warm, ≤ "
                        f"{TARGET_FIRST_CHECK:g} s first call in a fresh kernel; course check "
                        f"≤ {TARGET_CLI_RATIO:g}× python -c \"import torch\", measured before "
                        f"each unit: {torch_s:.2f} s at the start)")
    for col in ("unit", "check() warm", "check() first call", "course check, first run",
                "course check UNIT", "import torch", "÷ import torch"):
        table.add_column(col, justify="right" if col != "unit" else "left")
    recent = [torch_s]
    for u in units:
        latency = in_kernel_latency(u, repeat)
        first = first_call_latency(u)
        # the machine's speed drifts over a long run: each unit's yardstick is the median of
        # the last three imports of torch, one measured just before it
        recent = [*recent[-2:], torch_import_wall(1)]
        yardstick = statistics.median(recent)
        first_cli = _wall(["check", u.slug, "--reference"])  # may fill the reference cache
        cli = statistics.median(_wall(["check", u.slug, "--reference"]) for _ in range(2))
        figures["units"][u.slug] = {"check_s": latency, "first_check_s": first, "cli_s": cli,
                                    "first_cli_s": first_cli, "import_torch_s": yardstick,
                                    "cli_ratio": cli / yardstick}
        table.add_row(u.slug, _mark(latency, TARGET_CHECK), _mark(first, TARGET_FIRST_CHECK),
                      f"{first_cli:.2f} s", f"{cli:.2f} s", f"{yardstick:.2f} s",
                      _mark(cli / yardstick, TARGET_CLI_RATIO, unit="×"))
    console.print(table)
    if not whole:
        return figures
    isolated = _wall(["check", "--all", "--reference"])  # one worker per core
    alone = _wall(["check", "--all", "--reference", "--workers", "1"])
    inproc = _wall(["check", "--all", "--reference", "--no-isolation"])
    ratio = alone / inproc
    figures.update(all_isolated_s=isolated, all_isolated_one_worker_s=alone,
                   all_inprocess_s=inproc, ratio=ratio, ratio_default=isolated / inproc)
    console.print(
        f"course check --all --reference: {_mark(isolated, TARGET_ALL)} isolated, one worker "
        f"per core (every gradable unit; target ≤ {TARGET_ALL:g} s); {alone:.2f} s isolated "
        f"with one worker; {inproc:.2f} s in one process without isolation. Isolation "
        f"overhead at equal workers: {_mark(ratio, TARGET_RATIO, unit='×')} (target ≤ "
        f"{TARGET_RATIO:g}×); as run by default: {isolated / inproc:.2f}×"
    )
    return figures


def _mark(value: float, target: float, unit: str = " s") -> str:
    colour = "green" if value <= target else "red"
    return f"[{colour}]{value:.2f}{unit}[/{colour}]"


TARGET_BATCH_SPEEDUP = 5.0


def simulated_submissions(unit: Unit, release, count: int) -> dict[str, object]:
    """``count`` filled notebooks of ``release``: the reference, the stub, every banked
    mistake, a syntax error and a noisy-but-correct one, cycled."""
    from course.export import simulate
    from course.grading.checks import load_checks, master_source

    master = master_source(unit)
    mistakes = load_checks(unit).mistakes
    base = simulate.simulated_class(master, mistakes[0].apply(master), release)
    pool = [base["reference"], base["stub"], base["syntax-error"], base["warnings"]]
    pool += [simulate.fill(release, simulate.answers_from_source(m.apply(master)))
             for m in mistakes]
    return {f"student{i:02d}": pool[i % len(pool)] for i in range(count)}


def batch_bench(unit: Unit, count: int = 20, workers: int = 2,
                console: Console | None = None) -> dict:
    """Stock ``nbgrader autograde`` vs ``course grade --workers N`` on the same ``count``
    simulated submissions of ``unit`` (both from a cold start, as an instructor runs them)."""
    import tempfile
    from pathlib import Path

    import nbformat

    from course.export import nbgrader as nbg

    console = console or Console()
    with tempfile.TemporaryDirectory(prefix="course-bench-") as tmp:
        root = Path(tmp) / "course"
        nbg.export([unit], root)
        subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", unit.slug,
                        "--force"], cwd=root, capture_output=True, check=True)
        release = nbformat.read(root / "release" / unit.slug / nbg.notebook_name(unit), 4)
        for name, nb in simulated_submissions(unit, release, count).items():
            folder = root / "submitted" / name / unit.slug
            folder.mkdir(parents=True)
            nbformat.write(nb, folder / nbg.notebook_name(unit))
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "nbgrader", "autograde", unit.slug, "--force"],
                       cwd=root, capture_output=True, check=False)
        stock = time.perf_counter() - started
        ours = _wall(["grade", str(root / "submitted"), "--nbgrader", str(root),
                      "--assignment", unit.slug, "--out", str(Path(tmp) / "out"),
                      "--workers", str(workers)])
    ratio = stock / ours
    console.print(
        f"{count} submissions of {unit.slug}: stock nbgrader autograde {stock:.1f} s, "
        f"course grade --workers {workers} {ours:.1f} s; speed-up "
        f"[{'green' if ratio >= TARGET_BATCH_SPEEDUP else 'red'}]{ratio:.1f}×[/] "
        f"(target ≥ {TARGET_BATCH_SPEEDUP:g}×)")
    return {"stock_s": stock, "course_grade_s": ours, "speedup": ratio}
