"""``course grade --scheduler``: a class graded on a Dask cluster on 127.0.0.1.

The cluster is real: ``dask scheduler`` and ``course worker`` processes (each a nanny and its
worker, as an instructor starts them), stopped by process group at the end, bounded in time.

- a mixed class of 20 (correct, stub, banked mistakes, hostile, broken) graded on 2 workers
  gives the very bytes of ``course grade --workers 2``: gradebook, class report, mistakes,
  every student's results.json and feedback.md; a re-run sends nothing;
- a worker SIGKILLed while it holds a job costs nothing: the batch completes identically;
- a job that kills every worker it lands on becomes an error row with its reason, in bounded
  time, and the others are graded;
- a worker whose hidden checks differ is refused: it never gets a job, the grader names the
  file, ``course worker`` refuses to join once the cluster's course is known, and a cluster of
  stale workers only is an error in words.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed", reason="the cluster extra is not installed")

from test_batch import ENV, write_broken, write_hostile  # noqa: E402

from course import catalogue  # noqa: E402
from course.cluster import resource_name  # noqa: E402
from course.grading.checks import load_checks, master_source  # noqa: E402
from course.manifest import digest, manifest  # noqa: E402
from course.paths import ROOT  # noqa: E402

LN = catalogue.find("layer-norm")
CLI = [sys.executable, "-m", "course.cli"]
OUTPUTS = ("gradebook.csv", "class_report.md", "mistakes.csv")


class Cluster:
    """A scheduler and ``course worker`` processes on 127.0.0.1, each in its own session."""

    def __init__(self, folder: Path, env: dict[str, str] | None = None):
        self.folder, self.env = folder, {**ENV, **(env or {})}
        self.procs: list[subprocess.Popen] = []
        info = folder / "scheduler.json"
        dask = str(Path(sys.executable).with_name("dask"))
        self._start([dask, "scheduler", "--host", "127.0.0.1", "--port", "0",
                     "--scheduler-file", str(info), "--no-dashboard"], "scheduler")
        deadline = time.monotonic() + 60
        while not info.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.address = json.loads(info.read_text())["address"]

    def _start(self, argv: list[str], name: str, env: dict[str, str] | None = None):
        log = (self.folder / f"{name}.log").open("w")
        proc = subprocess.Popen(argv, env=env or self.env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def worker(self, name: str, env: dict[str, str] | None = None,
               wait: bool = True) -> subprocess.Popen:
        proc = self._start([*CLI, "worker", self.address, "--name", name], name,
                           {**self.env, **(env or {})})
        if wait:
            self.wait_for(lambda info: name in {w["name"] for w in info["workers"].values()})
        return proc

    def client(self):
        return distributed.Client(self.address, timeout=30, set_as_default=False)

    def wait_for(self, condition, timeout: float = 120) -> None:
        with self.client() as client:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if condition(client.scheduler_info(n_workers=-1)):
                    return
                time.sleep(0.3)
        raise AssertionError(f"cluster condition not met in {timeout} s; logs in {self.folder}")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        c.worker("w0")
        c.worker("w1")
        yield c
    finally:
        c.stop()


def _grade(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, "grade", *args, "--log"], env=ENV, capture_output=True,
                          text=True, timeout=timeout)


def _mixed_class(root: Path) -> Path:
    """20 students: 5 correct, the stub, 8 banked mistakes, 3 hostile, 3 broken."""
    sub = root / "class"
    sub.mkdir()
    master = master_source(LN)
    for i in range(5):
        (sub / f"correct{i}.py").write_text(master + f"\n# student {i}\n")
    (sub / "stub.ipynb").write_bytes(LN.exercise_path.read_bytes())
    for m in load_checks(LN).mistakes[:8]:
        (sub / f"wrong-{m.id}.py").write_text(m.apply(master))
    assert len(write_hostile(sub, 3, root / "decoy-output")) == 3
    assert len(write_broken(sub, 3)) == 3
    assert len(list(sub.iterdir())) == 20
    return sub


def _outputs(out: Path) -> dict[str, bytes]:
    files = {name: (out / name).read_bytes() for name in OUTPUTS}
    for path in sorted(out.glob("students/*/*")):
        if path.name in ("results.json", "feedback.md"):
            files[str(path.relative_to(out))] = path.read_bytes()
    return files


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """The class, and what ``course grade --workers 2`` makes of it."""
    root = tmp_path_factory.mktemp("mixed")
    sub = _mixed_class(root)
    local = _grade(str(sub), "--unit", "layer-norm", "--out", str(root / "local"),
                   "--workers", "2")
    assert local.returncode == 1, local.stdout + local.stderr  # the broken ones
    return sub, _outputs(root / "local")


@pytest.mark.slow
def test_the_cluster_grades_byte_for_byte_like_local_workers(cluster, mixed, tmp_path):
    sub, local = mixed
    out = tmp_path / "out"
    done = _grade(str(sub), "--unit", "layer-norm", "--out", str(out), "--scheduler",
                  cluster.address)
    assert done.returncode == 1, done.stdout + done.stderr
    got = _outputs(out)
    assert len(got) == 3 + 2 * 20
    assert [name for name in local if got.get(name) != local[name]] == []
    again = _grade(str(sub), "--unit", "layer-norm", "--out", str(out), "--scheduler",
                   cluster.address)
    assert again.stdout.count("kept") == 20, again.stdout  # resumable: nothing sent again
    assert _outputs(out) == local


@pytest.mark.slow
def test_a_worker_killed_holding_a_job_costs_nothing(cluster, mixed, tmp_path):
    sub, local = mixed
    out = tmp_path / "out"
    proc = subprocess.Popen([*CLI, "grade", str(sub), "--unit", "layer-norm", "--out", str(out),
                             "--scheduler", cluster.address, "--log"], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    killed = None
    with cluster.client() as client:
        deadline = time.monotonic() + 300
        while killed is None and time.monotonic() < deadline and proc.poll() is None:
            holding = [w for w, keys in client.processing().items()
                       if any(str(k).startswith("grade-") for k in keys)]
            if holding:
                pids = client.run(os.getpid, workers=holding[:1])
                killed = pids[holding[0]]
                os.kill(killed, signal.SIGKILL)
            time.sleep(0.05)
    output, _ = proc.communicate(timeout=900)
    assert killed is not None, "no worker was seen holding a job"
    assert proc.returncode == 1, output
    assert _outputs(out) == local, "a killed worker changed the gradebook"
    rows = (out / "gradebook.csv").read_text().splitlines()
    assert len(rows) == 21 and len(set(rows)) == 21, "a row was lost or doubled"
    cluster.wait_for(lambda info: len(info["workers"]) == 2)  # the nanny restarted it


@pytest.mark.slow
def test_a_job_that_kills_every_worker_is_an_error_with_its_reason(tmp_path):
    sub = tmp_path / "class"
    sub.mkdir()
    for name in ("ann", "doomed", "cy"):
        (sub / f"{name}.py").write_text(master_source(LN))
    c = Cluster(tmp_path, {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1",
                           "COURSE_CRASH_AT": "cluster-job-layer-norm-doomed.py"})
    try:
        c.worker("w0")
        c.worker("w1")
        started = time.monotonic()
        done = _grade(str(sub), "--unit", "layer-norm", "--out", str(tmp_path / "out"),
                      "--scheduler", c.address, timeout=600)
        assert time.monotonic() - started < 600
    finally:
        c.stop()
    rows = {line.split(",")[0]: line for line in
            (tmp_path / "out" / "gradebook.csv").read_text().splitlines()[1:]}
    assert done.returncode == 1, done.stdout + done.stderr
    assert ",error," in rows["doomed"] and "died every time it was tried" in rows["doomed"]
    assert ",graded," in rows["ann"] and ",graded," in rows["cy"]


def _stale_course(root: Path) -> tuple[Path, str]:
    """A copy of the course whose layer-norm hidden checks were edited."""
    for name in ("lectures", "solutions", "exercises", "autograder"):
        shutil.copytree(ROOT / name, root / name)
    shutil.copy(ROOT / "jupytext.toml", root / "jupytext.toml")
    checks = root / LN.checks_path.relative_to(ROOT)
    checks.write_text(checks.read_text() + "\n# edited on this worker only\n")
    return root, f"changed: {LN.checks_path.relative_to(ROOT).as_posix()}"


@pytest.mark.slow
def test_a_worker_with_other_hidden_checks_is_refused(tmp_path):
    stale, changed = _stale_course(tmp_path / "stale-course")
    sub = tmp_path / "class"
    sub.mkdir()
    (sub / "ann.py").write_text(master_source(LN))
    (sub / "bob.py").write_text(load_checks(LN).mistakes[0].apply(master_source(LN)))
    c = Cluster(tmp_path)
    try:
        c.worker("stale", env={"COURSE_ROOT": str(stale)})
        alone = _grade(str(sub), "--unit", "layer-norm", "--out", str(tmp_path / "o1"),
                       "--scheduler", c.address, timeout=300)
        assert alone.returncode == 2, alone.stdout + alone.stderr
        words = " ".join((alone.stdout + alone.stderr).split())
        assert "no worker at" in words and "worker stale refused" in words and changed in words
        assert not (tmp_path / "o1" / "gradebook.csv").exists()
        c.worker("good")
        mixed = _grade(str(sub), "--unit", "layer-norm", "--out", str(tmp_path / "o2"),
                       "--scheduler", c.address, timeout=300)
        assert mixed.returncode == 0, mixed.stdout + mixed.stderr
        assert "worker stale refused" in " ".join(mixed.stdout.split())
        with c.client() as client:
            resources = {w["name"]: w.get("resources", {})
                         for w in client.scheduler_info(n_workers=-1)["workers"].values()}
            executed = dict(client.run(lambda dask_worker: (
                dask_worker.name, dask_worker.state.executed_count)).values())
        ours = resource_name(digest(manifest()))
        assert ours in resources["good"] and ours not in resources["stale"]
        assert executed == {"stale": 0, "good": 2}, "only the good worker graded"
        late = subprocess.run([*CLI, "worker", c.address, "--name", "late"],
                              env={**ENV, "COURSE_ROOT": str(stale)}, capture_output=True,
                              text=True, timeout=120)
        assert late.returncode != 0
        assert changed in " ".join((late.stdout + late.stderr).split())
    finally:
        c.stop()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_the_output_folder_is_hidden_from_learner_code_on_the_cluster(cluster, tmp_path,
                                                                     request):
    """A worker on the grading machine hides its output folder, as local grading does: this
    submission is right only where it cannot see a file in that folder. (The folder is not
    under /tmp, which every sandbox replaces anyway: in the course's git-ignored cache.)"""
    out = ROOT / ".course-cache" / f"test-cluster-out-{os.getpid()}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    request.addfinalizer(lambda: shutil.rmtree(out, ignore_errors=True))
    (out / "marker.txt").write_text("the grading machine's outputs")
    sub = tmp_path / "class"
    sub.mkdir()
    peek = f"import os\nSEEN = os.path.exists({str(out / 'marker.txt')!r})\n"
    source = master_source(LN).replace("    return y\n", "    return y * (2 if SEEN else 1)\n")
    assert "SEEN else" in source
    (sub / "peeker.py").write_text(peek + source)
    done = _grade(str(sub), "--unit", "layer-norm", "--out", str(out), "--scheduler",
                  cluster.address)
    assert done.returncode == 0, done.stdout + done.stderr
    row = (out / "gradebook.csv").read_text().splitlines()[1].split(",")
    assert float(row[2]) == load_checks(LN).max_score, "learner code saw the output folder"
