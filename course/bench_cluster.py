"""``course bench --cluster``: grading throughput on a Dask cluster of this machine.

What is measured, on ``count`` submissions of one unit (the reference, the stub and every
banked mistake, cycled):

- ``course grade --workers W`` (local processes, a cold start as an instructor runs it) and
  ``course grade --scheduler`` on a cluster of W ``course worker`` processes already started
  (W = 1 and 2): wall time and jobs per second;
- the scheduler's own overhead per job: the round trip of a job that does nothing, carrying a
  submission's bytes, on the same cluster;
- a projection to ``students`` × ``units`` jobs on 1, 16 and 128 workers from the measured
  cost per job, with its assumptions printed beside it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from course.catalogue import Unit

CLI = [sys.executable, "-m", "course.cli"]


def _class(unit: Unit, folder: Path, count: int) -> Path:
    from course.grading.checks import load_checks, master_source

    master = master_source(unit)
    pool = [master, None] + [m.apply(master) for m in load_checks(unit).mistakes]
    folder.mkdir(parents=True)
    for i in range(count):
        source = pool[i % len(pool)]
        if source is None:
            (folder / f"s{i:03d}.ipynb").write_bytes(unit.exercise_path.read_bytes())
        else:
            (folder / f"s{i:03d}.py").write_text(source + f"\n# student {i}\n")
    return folder


def _timed(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - started


class _LocalCluster:
    """A scheduler and one ``course worker`` with ``nworkers`` processes on 127.0.0.1."""

    def __init__(self, folder: Path, nworkers: int):
        info = folder / f"scheduler-{nworkers}.json"
        dask = str(Path(sys.executable).with_name("dask"))
        self.procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0",
                                        "--scheduler-file", str(info), "--no-dashboard"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                       start_new_session=True)]
        deadline = time.monotonic() + 60
        while not info.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.address = json.loads(info.read_text())["address"]
        self.procs.append(subprocess.Popen([*CLI, "worker", self.address, "--nworkers",
                                            str(nworkers)], stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL, start_new_session=True))
        from distributed import Client

        with Client(self.address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(nworkers, timeout=120)
            client.run(_warm)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def _warm() -> None:
    from course.cluster import prepare_worker

    prepare_worker()


def _echo(data: bytes) -> int:
    return len(data)


def scheduler_overhead(address: str, payload: bytes, jobs: int = 200) -> float:
    """Seconds per job of the scheduler's round trip alone (a job that does nothing)."""
    from distributed import Client

    with Client(address, timeout=30, set_as_default=False) as client:
        started = time.perf_counter()
        futures = [client.submit(_echo, payload, pure=False) for _ in range(jobs)]
        client.gather(futures)
        return (time.perf_counter() - started) / jobs


def cluster_bench(unit: Unit, count: int = 20, students: int = 2000, units: int = 20,
                  console: Console | None = None) -> dict:
    console = console or Console()
    figures: dict = {"jobs": count}
    with tempfile.TemporaryDirectory(prefix="course-bench-cluster-") as tmp:
        root = Path(tmp)
        sub = _class(unit, root / "class", count)
        payload = max((p.read_bytes() for p in sub.iterdir()), key=len)
        for workers in (1, 2):
            figures[f"local_{workers}_s"] = _timed(
                [*CLI, "grade", str(sub), "--unit", unit.slug, "--out",
                 str(root / f"local{workers}"), "--workers", str(workers), "--log"])
            cluster = _LocalCluster(root, workers)
            try:
                figures[f"cluster_{workers}_s"] = _timed(
                    [*CLI, "grade", str(sub), "--unit", unit.slug, "--out",
                     str(root / f"cluster{workers}"), "--scheduler", cluster.address, "--log"])
                if workers == 2:
                    figures["scheduler_s_per_job"] = scheduler_overhead(cluster.address,
                                                                        payload)
            finally:
                cluster.stop()
    per_job = figures["cluster_1_s"] / count  # one warm worker: the cost of one job
    figures["per_job_s"] = per_job
    total = students * units
    console.print(f"{count} submissions of {unit.slug} ({len(payload)} bytes the largest)")
    for w in (1, 2):
        console.print(f"  {w} worker(s): local {figures[f'local_{w}_s']:.1f} s "
                      f"({count / figures[f'local_{w}_s']:.2f} jobs/s, cold start included), "
                      f"cluster {figures[f'cluster_{w}_s']:.1f} s "
                      f"({count / figures[f'cluster_{w}_s']:.2f} jobs/s, workers warm)")
    console.print(f"  scheduler round trip per job (a job that does nothing): "
                  f"{1000 * figures['scheduler_s_per_job']:.1f} ms; one job on one warm "
                  f"worker: {per_job:.2f} s")
    console.print(f"Projection for {students} × {units} = {total} jobs, assuming every job "
                  f"costs what one {unit.slug} job cost here ({per_job:.2f} s on one core of "
                  "this machine), one job per core at a time, linear scaling across "
                  "workers, and a scheduler that hands out jobs one after another at the "
                  "measured round trip (units differ: `--units U` measures another):")
    for w in (1, 16, 128):
        hours = max(total * per_job / w, total * figures["scheduler_s_per_job"]) / 3600
        figures[f"projected_{w}_h"] = hours
        console.print(f"  {w:>4} worker(s): {hours:.2f} h")
    return figures
