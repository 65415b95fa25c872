"""The ``course`` command line.

Exit status: 0 when every check passed, 1 when some failed, 2 when nothing could be graded
(unknown unit, unreadable submission, bad arguments) — always with a message.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from course import catalogue, workspace
from course.catalogue import CONSTRAINTS, Unit

# Reports and tables wrap at the terminal's width (soft_wrap would crop panels and tables);
# one-line error messages are left whole for the terminal to wrap.
console = Console(highlight=False)
errors = Console(stderr=True, highlight=False, soft_wrap=True)


def waited_seconds() -> float:
    """Wall time since this process started (what the learner waited), from the kernel's
    record of the process's start where there is one, else since the CLI was imported."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        import os

        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, AttributeError):
        return time.monotonic() - _IMPORTED


_IMPORTED = time.monotonic()


class Abort(click.ClickException):
    """Exit with status 2 and a message."""

    exit_code = 2

    def show(self, file=None) -> None:
        errors.print(f"[red]error:[/red] {self.message}")


def _unit(name: str) -> Unit:
    try:
        return catalogue.find(name)
    except KeyError:
        close = [u.slug for u in catalogue.units() if name.lower()[:3] in u.slug]
        hint = f" Did you mean: {', '.join(close[:5])}?" if close else ""
        raise Abort(f"unknown unit {name!r}.{hint} `course list` shows every unit.") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="course")
def main() -> None:
    """A graded course on the history of deep learning."""


@main.command("list")
@click.option("--part", type=int, help="Only this part (0-6).")
@click.option("--ready", is_flag=True, help="Only units that are ready.")
def list_units(part: int | None, ready: bool) -> None:
    """Show the syllabus: every unit, its paper, constraints and status."""
    table = Table(show_lines=False)
    for col in ("unit", "slug", "title", "paper", "constraints", "status"):
        table.add_column(col)
    shown = 0
    for u in catalogue.units():
        if part is not None and u.part.number != part:
            continue
        if ready and u.status != "ready":
            continue
        paper = "; ".join(f"{p.authors.split(',')[0].split(' and ')[0]} ({p.year})"
                          for p in u.papers) or "—"
        style = "green" if u.status == "ready" else "dim"
        table.add_row(u.number, u.slug, u.title, paper,
                      ", ".join(CONSTRAINTS[c] for c in u.constraints) or "—",
                      f"[{style}]{u.status}[/{style}]")
        shown += 1
    console.print(table)
    n_ready = sum(u.status == "ready" for u in catalogue.units())
    console.print(f"{shown} units shown; {n_ready} of {len(catalogue.units())} ready.")


@main.command()
@click.argument("unit")
def info(unit: str) -> None:
    """Everything about UNIT: papers (full citations), constraints, files, status."""
    u = _unit(unit)
    root = catalogue.paths.ROOT
    console.print(f"[bold]{u.number} {u.title}[/bold]  ({u.slug}, part {u.part.folder})")
    if u.summary:
        console.print(u.summary)
    for paper in u.papers:
        console.print(f"  • {paper.citation()}")
    console.print("Constraints: " + (", ".join(CONSTRAINTS[c] for c in u.constraints) or "—"))
    files = [("lecture", u.lecture_path)]
    if not u.lecture_only:
        files += [("master solution", u.solution_path), ("checks", u.checks_path),
                  ("exercise", u.exercise_path)]
    for label, path in files:
        mark = "[green]✓[/green]" if path.exists() else "[dim]–[/dim]"
        console.print(f"  {mark} {label}: {path.relative_to(root)}")
    console.print(f"Status: {u.status}")


@main.command()
@click.argument("unit")
def start(unit: str) -> None:
    """Copy UNIT's exercise notebook into your workspace (never overwrites your work)."""
    u = _unit(unit)
    if u.lecture_only:
        raise Abort(f"{u.slug} is a lecture without an exercise: open {u.lecture_path}")
    try:
        path, created = workspace.start(u)
    except FileNotFoundError as exc:
        raise Abort(str(exc)) from None
    from course.jupyter import ensure_lab_settings

    ensure_lab_settings()  # lectures open as notebooks in this environment's JupyterLab
    if created:
        console.print(f"Created [bold]{path}[/bold]. Open it in JupyterLab; the lecture is "
                      f"{u.lecture_path.relative_to(catalogue.paths.ROOT)}.")
    else:
        console.print(f"[yellow]{path} already exists; it was left untouched.[/yellow]")
    console.print(f"When done: [bold]course check {u.slug}[/bold]")


def _gradable(u: Unit, drafts: bool = False) -> None:
    """Refuse a unit with nothing to grade; ``drafts``: an author may check a draft by name."""
    if not (u.gradable or (drafts and u.draft and u.checks_path.exists())):
        raise Abort(f"unit {u.slug} has no exercise to grade yet (status: {u.status})")


@main.command()
@click.argument("units", nargs=-1)
@click.option("--all", "all_units", is_flag=True, help="Every gradable unit.")
@click.option("--submission", type=click.Path(path_type=Path),
              help="A filled exercise notebook or a .py file (default: your workspace copy).")
@click.option("--reference", is_flag=True, help="Grade the master solutions (for authors).")
@click.option("--json", "json_path", type=click.Path(path_type=Path),
              help="Write Gradescope-style results.json here.")
@click.option("--device", default="auto", show_default=True,
              type=click.Choice(["auto", "cpu", "cuda", "mps"], case_sensitive=False))
@click.option("--public", is_flag=True, help="Only the public checks.")
@click.option("--no-isolation", is_flag=True,
              help="Run learner code in this process (faster, not trustworthy; for authors).")
@click.option("-v", "--verbose", is_flag=True, help="Also list the cases that passed.")
@click.option("--budget", type=click.FloatRange(min=1), default=None,
              help="Seconds all of one submission's code may take (default 60, or "
                   "$COURSE_BUDGET); checks after it is spent score zero, not run.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="With several units: grading processes in parallel (default: one per "
                   "core, as `course bench` measures fastest).")
def check(units, all_units, submission, reference, json_path, device, public, no_isolation,
          verbose, budget, workers) -> None:
    """Grade UNIT(S) with the full hidden checks, learner code isolated."""
    if not units and not all_units:
        raise Abort("name a unit (e.g. `course check layer-norm`) or pass --all")
    if units and all_units:
        raise Abort("give unit names or --all, not both")
    if submission and (all_units or len(units) != 1):
        raise Abort("--submission grades one unit: `course check UNIT --submission PATH`")
    if submission and reference:
        raise Abort("--submission and --reference exclude each other")
    from course.many import parallel

    count = len(units) if units else len(catalogue.units())
    if not no_isolation and not parallel(count, workers):
        from course.isolation.forkserver import prestart

        prestart(many=count > 1)  # graded here: the server warms up while this imports torch
    if all_units:
        chosen = [u for u in catalogue.units() if u.gradable]
        if not reference:
            chosen = [u for u in chosen if workspace.workspace_copy(u).exists()]
            if not chosen:
                raise Abort("no started units in your workspace; `course start UNIT` first")
    else:
        chosen = [_unit(name) for name in units]
        for u in chosen:
            _gradable(u, drafts=True)

    from course.grading.engine import resolve_device
    from course.report import print_result, write_json

    try:
        device = resolve_device(device)
    except ValueError as exc:
        raise Abort(str(exc)) from None
    from course.many import UnitJob, grade_units

    jobs = []
    for u in chosen:
        path = submission or (u.solution_path if reference else workspace.workspace_copy(u))
        if not submission and not reference and not path.exists():
            raise Abort(f"no workspace copy of {u.slug} at {path}; run `course start {u.slug}` "
                        "or pass --submission PATH")
        jobs.append(UnitJob(u, Path(path)))
    graded = grade_units(jobs, device, public_only=public, budget=budget, workers=workers,
                         isolation="none" if no_isolation else "process")
    results, unreadable = [], []
    for job, kind, value in graded:
        u = job.unit
        if kind != "result":
            unreadable.append(f"{u.slug}: {value}")
            errors.print(f"[red]error:[/red] cannot grade {u.slug}: {value}")
            continue
        result = value
        print_result(result, console, verbose=verbose,
                     waited=waited_seconds() if len(chosen) == 1 else None)
        results.append(result)
        if not submission and not reference:
            entry = workspace.record(u, result.score, result.max_score)
            console.print(f"[dim]Best so far for {u.slug}: {entry['best']:g}/"
                          f"{entry['max_score']:g}[/dim]")
    if json_path:
        write_json(results, json_path)
    if not results:
        sys.exit(2)
    if len(results) > 1:
        total = sum(r.score for r in results)
        most = sum(r.max_score for r in results)
        console.print(f"[bold]Total: {total:g}/{most:g} over {len(results)} units[/bold]")
        grading = sum(r.seconds for r in results)
        console.print(f"[dim]You waited {waited_seconds():.1f} s in all, {grading:.1f} s of it "
                      "grading.[/dim]")
    sys.exit(0 if all(r.passed for r in results) and not unreadable else 1)


def _selected(unit_names, part: int | None, all_units: bool) -> list[Unit]:
    """--unit U ... | --part N | --all, gradable units only."""
    if sum(map(bool, (unit_names, part is not None, all_units))) != 1:
        raise Abort("choose the units with exactly one of --unit U (repeatable), --part N, --all")
    if unit_names:
        chosen = [_unit(n) for n in unit_names]
        for u in chosen:
            _gradable(u)
        return chosen
    chosen = [u for u in catalogue.units() if u.gradable
              and (all_units or u.part.number == part)]
    if not chosen:
        raise Abort(f"part {part} has no gradable units yet")
    return chosen


@main.command()
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.option("--unit", "unit_names", multiple=True, help="A unit to grade (repeatable).")
@click.option("--all", "all_units", is_flag=True, help="Every gradable unit.")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Folder for gradebook.csv and per-student results and feedback.")
@click.option("--workers", default=2, show_default=True, help="Grading processes in parallel.")
@click.option("--force", is_flag=True, help="Grade again what is already graded.")
@click.option("--device", default="cpu", show_default=True,
              type=click.Choice(["auto", "cpu", "cuda", "mps"], case_sensitive=False))
@click.option("--nbgrader", "nbgrader_dir", type=click.Path(path_type=Path),
              help="An nbgrader course: grade its submitted/ tree and write the gradebook.")
@click.option("--assignment", help="With --nbgrader: the assignment (default unit: its name).")
@click.option("--budget", type=click.FloatRange(min=1), default=None,
              help="Seconds all of one submission's code may take, per unit (default 60, or "
                   "$COURSE_BUDGET).")
@click.option("--scheduler", metavar="ADDRESS",
              help="Grade on a Dask cluster (e.g. tcp://host:8786) instead of local workers; "
                   'needs pip install "course[cluster]" here and `course worker` there.')
@click.option("--log/--bar", "as_log", default=None,
              help="One line per record (default when the output is not a terminal), or a "
                   "progress bar with done, running, failed and the time left.")
def grade(path, unit_names, all_units, out, workers, force, device, nbgrader_dir,
          assignment, budget, scheduler, as_log) -> None:
    """Grade a class: PATH holds one sub-folder or file per student (or use --nbgrader)."""
    import os

    from course import batch

    if nbgrader_dir is not None:
        if not assignment:
            raise Abort("--nbgrader needs --assignment A")
        if not unit_names and not all_units:
            unit_names = (assignment,)
        path = path or nbgrader_dir / "submitted"
    elif assignment:
        raise Abort("--assignment goes with --nbgrader COURSE_DIR")
    if path is None:
        raise Abort("give the folder of submissions: `course grade PATH --unit U --out DIR`")
    if not path.is_dir():
        raise Abort(f"{path} is not a folder of submissions")
    if workers < 1:
        raise Abort("--workers must be at least 1")
    units = _selected(unit_names, None, all_units)
    from course.grading.engine import resolve_device

    try:
        device = resolve_device(device)
    except ValueError as exc:
        raise Abort(str(exc)) from None
    jobs = (batch.nbgrader_jobs(nbgrader_dir, assignment, units, path) if nbgrader_dir
            else batch.folder_jobs(path, units))
    if not jobs:
        raise Abort(f"{path} holds no submissions")
    hide = [str(out.resolve())] + ([str(nbgrader_dir.resolve())] if nbgrader_dir else [])
    os.environ["COURSE_SANDBOX_HIDE"] = os.pathsep.join(
        [p for p in os.environ.get("COURSE_SANDBOX_HIDE", "").split(os.pathsep) if p] + hide)

    def show(record: dict, kept: bool) -> None:
        style = {"graded": "green", "missing": "yellow"}.get(record["status"], "red")
        word = "kept" if kept else record["status"]
        console.print(f"[{style}]{word:>10}[/{style}]  {record['student']:<20} "
                      f"{record['unit']:<14} {record['score']:g}/{record['max_score']:g}  "
                      f"[dim]{record['message'][:90]}[/dim]")

    runner: batch.Runner = batch.LocalRunner(workers, device, budget)
    if scheduler:
        from course.cluster import ClusterRunner

        runner = ClusterRunner(scheduler, device, budget)
    if as_log is None:
        as_log = not console.is_terminal
    try:
        if as_log:
            records = batch.grade_all(jobs, out, force=force, progress=show, runner=runner)
        else:
            from course.progress import GradingProgress

            with GradingProgress(console, "grading" + (f" on {scheduler}" if scheduler
                                                       else "")) as bar:
                records = batch.grade_all(jobs, out, force=force, runner=runner, display=bar)
    except RuntimeError as exc:
        if not scheduler:
            raise
        from course.cluster import ClusterError

        if isinstance(exc, ClusterError):
            raise Abort(str(exc)) from None
        raise
    for note in runner.notes:
        console.print(f"[yellow]{note}[/yellow]")
    if nbgrader_dir:
        from course.export.nbgrader import write_gradebook

        for u in units:
            mine = [r for r in records if r["unit"] == u.slug]
            count = write_gradebook(nbgrader_dir, assignment, u, mine)
            console.print(f"Wrote {count} student(s) of {u.slug} into "
                          f"{nbgrader_dir / 'gradebook.db'}.")
    bad = [r for r in records if r["status"] != "graded"]
    console.print(f"[bold]{len(records)} grade(s) in {out / 'gradebook.csv'}; "
                  f"{len(bad)} not graded (missing, unreadable or grader error).[/bold]")
    top = batch.top_mistakes(records)
    if top:
        console.print(f"Most common known mistakes (all in {out / 'class_report.md'}):")
        for line in top:
            console.print(f"  {line}", markup=False)
    sys.exit(1 if bad else 0)


@main.command()
@click.argument("scheduler", metavar="ADDRESS")
@click.option("--nworkers", default=1, show_default=True,
              help="Worker processes; each grades one submission at a time.")
@click.option("--name", help="The worker's name (with --nworkers 1).")
def worker(scheduler, nworkers, name) -> None:
    """Join the Dask cluster at ADDRESS as a grader, after checking that this machine's course
    (engine, hidden checks, references, version) is the one the cluster grades with."""
    import os

    from course import cluster

    try:
        argv = cluster.worker_command(scheduler, nworkers, name)
    except cluster.ClusterError as exc:
        raise Abort(str(exc)) from None
    console.print(f"course worker: course matches; joining {scheduler} with {nworkers} "
                  "process(es)")
    os.environ["DASK_DISTRIBUTED__WORKER__DAEMON"] = "False"
    os.execvp(argv[0], argv)


@main.group()
def export() -> None:
    """Write the course for nbgrader, otter-grader or Gradescope."""


def _unit_options(fn):
    fn = click.option("--all", "all_units", is_flag=True, help="Every gradable unit.")(fn)
    fn = click.option("--part", type=int, help="Every gradable unit of part N.")(fn)
    return click.option("--unit", "unit_names", multiple=True, help="A unit (repeatable).")(fn)


@export.command("nbgrader")
@click.argument("directory", type=click.Path(path_type=Path))
@_unit_options
def export_nbgrader(directory, unit_names, part, all_units) -> None:
    """An nbgrader course in DIRECTORY: nbgrader_config.py and source/<unit>/<unit>.ipynb."""
    from course.export import nbgrader

    units = _selected(unit_names, part, all_units)
    for path in nbgrader.export(units, directory):
        console.print(f"wrote {path}")
    console.print(f"Next: cd {directory} && nbgrader generate_assignment {units[0].slug}")


@export.command("otter")
@click.argument("directory", type=click.Path(path_type=Path))
@_unit_options
def export_otter(directory, unit_names, part, all_units) -> None:
    """otter-grader master notebooks in DIRECTORY: <unit>/<unit>.ipynb, one per unit."""
    from course.export import otter

    units = _selected(unit_names, part, all_units)
    for path in otter.export(units, directory):
        console.print(f"wrote {path}")
    slug = units[0].slug
    console.print(f"Next: cd {directory}/{slug} && otter assign {slug}.ipynb dist")


@export.command("gradescope")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--unit", "unit_name", required=True, help="The unit this assignment grades.")
@click.option("--budget", type=click.FloatRange(min=1), default=60.0, show_default=True,
              help="Seconds all of a submission's code may take.")
def export_gradescope(directory, unit_name, budget) -> None:
    """A Gradescope autograder bundle in DIRECTORY (upload DIRECTORY/autograder.zip)."""
    from course.export import gradescope

    unit = _unit(unit_name)
    _gradable(unit)
    for path in gradescope.export(unit, directory, budget=budget):
        console.print(f"wrote {path}")


@main.command()
def progress() -> None:
    """Your best score for every unit you have checked."""
    data = workspace.load_progress()
    table = Table()
    for col in ("unit", "slug", "best", "attempts", "last checked"):
        table.add_column(col)
    for u in catalogue.units():
        if not u.gradable:
            continue
        entry = data.get(u.slug)
        if entry:
            done = entry["best"] >= entry["max_score"]
            best = f"[{'green' if done else 'yellow'}]{entry['best']:g}/{entry['max_score']:g}"
            table.add_row(u.number, u.slug, best, str(entry["attempts"]), entry["updated"])
        else:
            started = workspace.workspace_copy(u).exists()
            table.add_row(u.number, u.slug, "started" if started else "—", "", "")
    console.print(table)


@main.command()
@click.argument("unit")
@click.option("--syllabus", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="SYLLABUS.md to take the unit's API from (default: $COURSE_SYLLABUS, or "
                   "shared/SYLLABUS.md beside the course).")
def new(unit: str, syllabus: Path | None) -> None:
    """Scaffold a planned UNIT: master, checks and lecture skeletons, then `course build`."""
    from course.build import build as run_build
    from course.scaffold import ScaffoldError, scaffold

    u = _unit(unit)
    try:
        written = scaffold(u, syllabus)
    except ScaffoldError as exc:
        raise Abort(str(exc)) from None
    for path in written:
        console.print(f"  written  {path.relative_to(catalogue.paths.ROOT)}")
    for r in run_build(only=[u]):
        console.print(f"{r.status:>9}  {r.path.relative_to(catalogue.paths.ROOT)}")
    console.print(f"{u.number} {u.slug} is a draft: write the TODOs, delete the "
                  f"{catalogue.SCAFFOLD_MARK} line in the master, then prove it with "
                  f"`python -m pytest -n auto -k {u.slug}`.")


@main.command()
@click.option("--check", "check_only", is_flag=True,
              help="Fail (exit 1) if a committed generated file is stale; write nothing.")
def build(check_only: bool) -> None:
    """Regenerate exercise notebooks from their masters; put lectures in canonical form."""
    from course.build import build as run_build

    results = run_build(check_only=check_only)
    bad = [r for r in results if r.status in ("stale", "missing")]
    for r in results:
        if r.status != "unchanged" or check_only:
            console.print(f"{r.status:>9}  {r.path.relative_to(catalogue.paths.ROOT)}")
    if bad:
        console.print(f"[red]{len(bad)} generated file(s) out of date: run `course build`.[/red]")
        sys.exit(1)
    console.print(f"{len(results)} generated or normalised file(s) (exercises, lectures) "
                  "up to date.")


@main.command("site")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--units", "unit_names", metavar="SLUGS",
              help="Comma-separated units whose lectures to build (default: all); the others "
                   "get short pages.")
@click.option("--check", "check_only", is_flag=True,
              help="Build nothing; fail (exit 1) if any page of OUT is stale.")
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path),
              help="Execution cache and build state (default: $COURSE_SITE_CACHE or "
                   ".site-cache/ in the course).")
@click.option("-v", "--verbose", is_flag=True, help="Show Sphinx's progress.")
def site(out: Path, unit_names: str | None, check_only: bool, cache: Path | None,
         verbose: bool) -> None:
    """Build the course as a static website in OUT (offline; open OUT/index.html)."""
    from course.site import missing_tools

    if missing_tools():
        raise Abort(f"the website needs {', '.join(missing_tools())}: "
                    'pip install -e ".\\[site]"')  # \[: a bracket, not rich markup
    from course.site.build import SiteError, build_site, check_site

    chosen = None if unit_names is None else [
        _unit(n) for n in unit_names.replace(" ", "").split(",") if n]
    if check_only:
        stale = check_site(out, chosen)
        for line in stale:
            console.print(f"    stale  {line}")
        if stale:
            console.print(f"[red]{len(stale)} stale: run `course site {out}`.[/red]")
            sys.exit(1)
        console.print(f"{out}: every page up to date.")
        return
    try:
        result = build_site(out, chosen, cache=cache, verbose=verbose)
    except SiteError as exc:
        from rich.markup import escape

        raise Abort(escape(str(exc))) from None
    for line in result.warnings:
        errors.print(f"[yellow]{line}[/yellow]")
    ran = ", ".join(result.executed) or "none (all from the cache)"
    console.print(f"{result.pages} pages, {result.lectures} with their executed lecture, in "
                  f"{result.seconds:.0f} s; executed now: {ran}.")
    console.print(f"Open {result.out / 'index.html'} (or `python -m http.server -d {out}`).")


@main.command()
@click.option("--repeat", default=5, show_default=True, help="Repeats for in-kernel timing.")
@click.option("--units", "unit_names", multiple=True, help="Units to time (default: all).")
@click.option("--batch", "batch_unit", metavar="UNIT",
              help="Instead: stock nbgrader autograde vs `course grade` on simulated "
                   "submissions of UNIT.")
@click.option("--students", default=20, show_default=True, help="With --batch: class size.")
@click.option("--workers", default=2, show_default=True, help="With --batch: grading workers.")
@click.option("--cluster", "on_cluster", is_flag=True,
              help="Throughput on a Dask cluster of this machine (1 and 2 workers) against "
                   "local workers, the scheduler's overhead per job, and a projection "
                   "(unit: the first --units, default layer-norm; --students submissions).")
def bench(repeat: int, unit_names, batch_unit, students, workers, on_cluster) -> None:
    """Time check() in-kernel, `course check UNIT`, and isolation overhead for --all."""
    from course.bench import batch_bench, run_bench

    if on_cluster:
        from course.bench_cluster import cluster_bench

        unit = _unit(unit_names[0] if unit_names else "layer-norm")
        _gradable(unit)
        cluster_bench(unit, count=students, console=console)
        return
    if batch_unit:
        unit = _unit(batch_unit)
        _gradable(unit)
        batch_bench(unit, count=students, workers=workers, console=console)
        return
    chosen = [_unit(n) for n in unit_names] or [u for u in catalogue.units() if u.gradable]
    run_bench(chosen, repeat=repeat, console=console)


def run() -> None:
    """The ``course`` command: :func:`main`, then a quick exit. Once torch is imported, the
    interpreter's shutdown (tearing down its modules and collecting their objects) takes about
    half a second and does nothing a finished command needs; so when the command has finished,
    its exit handlers run, its output is flushed and the process ends at once."""
    import atexit
    import os

    try:
        main()
    except SystemExit as exc:
        code = exc.code
        if isinstance(code, str):  # sys.exit("message")
            print(code, file=sys.stderr)
            code = 1
        atexit._run_exitfuncs()  # the runners, fork servers, caches and clients close here
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    run()
