"""JupyterLab settings the course ships: lectures (MyST ``.md`` files) open as runnable
notebooks, through jupytext, when double-clicked in the file browser or followed from an
exercise's link.

JupyterLab merges every JSON file in ``<prefix>/share/jupyter/lab/settings/overrides.d/`` into
its default settings. A regular install puts :data:`SETTINGS_FILE` there (``data-files`` in
pyproject.toml); an editable install (``pip install -e .``) installs no data files, so
``course start`` puts it there itself when it is missing (:func:`ensure_lab_settings`). A
learner's own settings still win over these defaults.
"""

from __future__ import annotations

import sys
from pathlib import Path

from course.files import write_atomic

SETTINGS_FILE = Path(__file__).with_name("course.json")


def overrides_dir(prefix: str | None = None) -> Path:
    """Where JupyterLab of the environment ``prefix`` (default: this one) reads overrides."""
    return Path(prefix or sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.d"


def ensure_lab_settings(prefix: str | None = None) -> Path | None:
    """Install the course's JupyterLab defaults into the environment if they are missing or
    stale; the installed path, or None when the environment cannot be written to."""
    target = overrides_dir(prefix) / SETTINGS_FILE.name
    wanted = SETTINGS_FILE.read_bytes()
    try:
        if target.exists() and target.read_bytes() == wanted:
            return target
        write_atomic(target, wanted)
    except OSError:
        return None
    return target
