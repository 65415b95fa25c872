"""Build the course website with Sphinx and myst-nb, incrementally, and tell when it is stale.

``build_site(out)`` writes the site's source tree (pages from ``course.site.pages``, the
exercise notebooks to download, MathJax, the configuration) into a state folder under the cache
(only files whose content changed are rewritten, so Sphinx re-reads only those), runs Sphinx
there, and mirrors the HTML into ``out``. Lectures are executed by myst-nb through jupyter-cache,
keyed by the hash of their code cells: a rebuild executes only lectures whose code changed.
``out/.course-site.json`` records the hash of every source the pages were built from;
``check_site(out)`` compares it with the sources as they are now and names every stale page.
Nothing here reaches the network.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import IO

from course import paths
from course.catalogue import Unit, units
from course.site import mathjax, pages

MANIFEST = ".course-site.json"
TEMPLATES = Path(__file__).resolve().parent / "templates"
FORMAT = 1
TOOLS = ("sphinx", "myst-nb", "furo", "sphinx-mathjax-offline")


class SiteError(RuntimeError):
    """The site could not be built (a lecture failed, a folder is not the site's)."""


@dataclass
class SiteResult:
    out: Path
    pages: int
    executed: list[str] = field(default_factory=list)  # pages whose lecture ran in this build
    lectures: int = 0  # pages that carry an executed lecture
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    log: Path | None = None


def default_cache() -> Path:
    """``$COURSE_SITE_CACHE``, else ``.site-cache/`` in the course checkout (git-ignored)."""
    env = os.environ.get("COURSE_SITE_CACHE")
    return Path(env).resolve() if env else paths.ROOT / ".site-cache"


def state_dir(out: Path, cache: Path) -> Path:
    """Sphinx's source tree, doctrees and HTML for one output folder, kept in the cache."""
    key = hashlib.sha256(str(out.resolve()).encode()).hexdigest()[:16]
    return cache / "sites" / key


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def builder_key() -> str:
    """The hash of this builder: its code, templates and the versions of the tools it runs."""
    h = hashlib.sha256()
    for path in sorted(Path(__file__).resolve().parent.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".css", ".md") and "__pycache__" not in \
                path.parts:
            h.update(path.name.encode() + path.read_bytes())
    for tool in TOOLS:
        try:
            h.update(f"{tool}={metadata.version(tool)}".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{tool}=missing".encode())
    return h.hexdigest()


def _selected(selected: Iterable[Unit] | None) -> list[Unit]:
    return list(units()) if selected is None else list(selected)


def sources(selected: Iterable[Unit] | None = None) -> dict[str, bytes]:
    """Every file of the site's source tree as it should be now: relative path -> bytes."""
    chosen = _selected(selected)
    files: dict[str, bytes] = {
        rel: text.encode("utf-8") for rel, text in pages.site_pages(chosen, units()).items()}
    for rel, source in pages.downloads(units()).items():
        files[rel] = source.read_bytes()
    files["conf.py"] = (TEMPLATES / "conf.py").read_bytes()
    files["_static/course.css"] = (TEMPLATES / "course.css").read_bytes()
    return files


def source_hashes(selected: Iterable[Unit] | None = None) -> dict[str, str]:
    return {rel: _sha(data) for rel, data in sources(selected).items()}


def _write_if_changed(path: Path, data: bytes) -> bool:
    if path.exists() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return True


def stage(src: Path, files: dict[str, bytes], settings: dict[str, str]) -> None:
    """Bring the source tree to ``files`` (plus MathJax and the settings), touching only files
    that changed and removing pages and downloads that are no longer part of the site."""
    all_files = dict(files)
    all_files["site-settings.json"] = json.dumps(settings, indent=1, sort_keys=True).encode()
    for rel, installed in mathjax.mathjax_files().items():
        all_files[f"_static/mathjax/{rel}"] = installed.read_bytes()
    for rel, data in all_files.items():
        _write_if_changed(src / rel, data)
    for folder in ("lectures", "downloads", "_static"):
        for path in sorted((src / folder).rglob("*"), reverse=True):
            if path.is_file() and path.relative_to(src).as_posix() not in all_files:
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()


def _mirror(html: Path, out: Path) -> None:
    """Make ``out`` hold exactly the built HTML (and the manifest), copying changed files."""
    wanted = {MANIFEST}
    for path in sorted(html.rglob("*")):
        rel = path.relative_to(html)
        wanted.add(rel.as_posix())
        target = out / rel
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        st = path.stat()
        if target.exists():
            tt = target.stat()
            if tt.st_size == st.st_size and int(tt.st_mtime) == int(st.st_mtime):
                continue
        shutil.copy2(path, target)
    for path in sorted(out.rglob("*"), reverse=True):
        if path.relative_to(out).as_posix() in wanted:
            continue
        if path.is_dir() and not path.is_symlink():
            if not any(path.iterdir()):
                path.rmdir()
        else:
            path.unlink()


def _claim_out(out: Path) -> None:
    """Refuse to write into a folder that holds anything but a site this command built."""
    if out.exists() and not out.is_dir():
        raise SiteError(f"{out} is a file, not a folder for the site")
    if out.exists() and any(out.iterdir()) and not (out / MANIFEST).exists():
        raise SiteError(f"{out} is not empty and holds no site built by `course site` "
                        f"(no {MANIFEST}); choose an empty or new folder")


def _write_manifest(out: Path, data: dict) -> None:
    _write_if_changed(out / MANIFEST, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())


def _cache_records(cache_path: Path) -> dict[int, str]:
    from jupyter_cache import get_cache

    return {r.pk: r.uri for r in get_cache(str(cache_path)).list_cache_records()}


def html_page(rel: str) -> str:
    """The HTML file Sphinx writes for a page source (``lectures/…/x.md`` -> ``…/x.html``)."""
    return rel[: -len(".md")] + ".html"


def build_site(out: Path, selected: Iterable[Unit] | None = None, cache: Path | None = None,
               verbose: bool = False) -> SiteResult:
    """Build the site into ``out``: every unit's page, the lectures of ``selected`` (default:
    all) executed (or taken from the cache). Raises SiteError when a lecture fails."""
    from sphinx.application import Sphinx
    from sphinx.util.docutils import docutils_namespace, patch_docutils

    started = time.monotonic()
    out = out.resolve()
    cache = (cache or default_cache()).resolve()
    _claim_out(out)
    chosen = _selected(selected)
    state = state_dir(out, cache)
    src, html, doctrees = state / "src", state / "html", state / "doctrees"
    execution_cache = cache / "jupyter"
    execution_cache.mkdir(parents=True, exist_ok=True)
    overview = next((u for u in units() if u.slug == pages.OVERVIEW_SLUG), None)
    settings = {
        "execution_cache": str(execution_cache),
        "mathjax_path": mathjax.MATHJAX_PATH,
        "course_map_lecture": str(overview.lecture_path) if overview else "",
    }
    files = sources(chosen)
    stage(src, files, settings)
    before = _cache_records(execution_cache)
    log = state / "sphinx.log"
    warnings = io.StringIO()
    with open(log, "w", encoding="utf-8") as status:
        with patch_docutils(src), docutils_namespace():
            shown: IO[str] = _Tee(status) if verbose else status  # type: ignore[assignment]
            app = Sphinx(str(src), str(src), str(html), str(doctrees), "html",
                         status=shown, warning=warnings,
                         freshenv=False, verbosity=0)
            try:
                app.build()
            except Exception as exc:  # a lecture that fails to execute, a broken page
                status.write(warnings.getvalue())
                raise SiteError(f"the site did not build: {exc} (Sphinx's log: {log})") from exc
            status.write(warnings.getvalue())
    after = _cache_records(execution_cache)
    new_uris = {Path(uri).resolve() for pk, uri in after.items() if pk not in before}
    executed = sorted(rel for rel in files if rel.endswith(".md")
                      and (src / rel).resolve() in new_uris)
    out.mkdir(parents=True, exist_ok=True)
    manifest = {"format": FORMAT, "complete": False, "builder": builder_key(),
                "units": sorted(u.slug for u in chosen), "sources": {}}
    _write_manifest(out, manifest)
    _mirror(html, out)
    manifest.update(complete=True, sources={rel: _sha(data) for rel, data in files.items()})
    _write_manifest(out, manifest)
    lectures = sum(1 for u in chosen if pages.in_full(u))
    return SiteResult(out=out, pages=sum(rel.endswith(".md") for rel in files),
                      executed=executed, lectures=lectures,
                      seconds=time.monotonic() - started,
                      warnings=[w for w in warnings.getvalue().splitlines() if w.strip()],
                      log=log)


class _Tee(io.TextIOBase):
    def __init__(self, other: io.TextIOBase) -> None:
        self.other = other

    def write(self, text: str) -> int:
        import sys

        sys.stdout.write(text)
        return self.other.write(text)


def check_site(out: Path, selected: Iterable[Unit] | None = None) -> list[str]:
    """Why the site in ``out`` is stale, one line per page or file; empty when it is current
    for the sources as they are now and the lectures of ``selected`` (default: all)."""
    manifest_path = out / MANIFEST
    if not manifest_path.exists():
        return [f"{out}: no site built here (no {MANIFEST})"]
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except ValueError:
        return [f"{manifest_path}: unreadable"]
    if manifest.get("format") != FORMAT or not manifest.get("complete"):
        return [f"{out}: an unfinished or older build"]
    problems = []
    if manifest.get("builder") != builder_key():
        problems.append("every page: the site builder or its tools changed since the build")
    built = manifest.get("sources", {})
    expected = source_hashes(selected)
    for rel, sha in sorted(expected.items()):
        if rel not in built:
            problems.append(f"{rel}: new since the build")
        elif built[rel] != sha:
            problems.append(f"{rel}: changed since the build")
        elif rel.endswith(".md") and not (out / html_page(rel)).exists():
            problems.append(f"{html_page(rel)}: missing from the site")
    problems += [f"{rel}: no longer part of the site" for rel in sorted(built)
                 if rel not in expected]
    return problems
