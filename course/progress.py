"""The progress bar of ``course grade``: jobs done, running and failed, and the time left.

Local and cluster grading alike (the runner says how many jobs it holds now). Jobs already
graded in an earlier run are counted as kept and left out of the time estimate, which is made
from the jobs graded in this run only.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.text import Text

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Task

    from course.batch import Runner

FAILED = ("error", "unreadable")


class _Counts(ProgressColumn):
    """done / total · running · failed · kept, asking the runner at most once a second."""

    def __init__(self, bar: GradingProgress):
        super().__init__()
        self.bar = bar

    def render(self, task: Task) -> Text:
        b = self.bar
        return Text(f"{b.done}/{b.total} done · {b.running()} running · {b.failed} failed"
                    + (f" · {b.kept} kept" if b.kept else ""))


class GradingProgress:
    """A :class:`course.batch.Display` drawn with rich; use as a context manager."""

    def __init__(self, console: Console | None = None, title: str = "grading"):
        self.total = self.done = self.failed = self.kept = 0
        self._runner: Runner | None = None
        self._running = (0.0, 0)
        self._progress = Progress(TextColumn(f"[bold]{title}"), BarColumn(), _Counts(self),
                                  TextColumn("· left"), TimeRemainingColumn(),
                                  console=console, transient=False)
        self._task = self._progress.add_task(title, total=None, start=False)

    def __enter__(self) -> GradingProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.refresh()
        self._progress.stop()

    def running(self) -> int:
        now = time.monotonic()
        if self._runner is not None and now - self._running[0] >= 1.0:
            self._running = (now, self._runner.running())
        return self._running[1]

    def start(self, total: int, kept: int, runner: Runner) -> None:
        self.total, self._runner = total, runner
        todo = total - kept
        self._progress.update(self._task, total=todo or 1, completed=0 if todo else 1)
        self._progress.start_task(self._task)

    def record(self, record: dict, kept: bool) -> None:
        self.done += 1
        self.failed += record["status"] in FAILED
        if kept:
            self.kept += 1
            return
        self._progress.advance(self._task)
        self._running = (0.0, self._running[1])  # ask again at the next refresh
