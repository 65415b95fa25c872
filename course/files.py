"""Writing files so that a reader, or a run resumed after a crash, never sees half of one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

PARTIAL = ".partial-"  # in the names of files being written; never read back as results


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``: a
    reader sees the old file or the new one, never a part of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}{PARTIAL}")
    try:
        if isinstance(data, bytes):
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        else:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def remove_partial_files(folder: Path) -> int:
    """Delete what a killed run left half-written below ``folder`` (temporary files of
    :func:`write_atomic`); returns how many."""
    removed = 0
    for leftover in folder.rglob(f".*{PARTIAL}*"):
        with contextlib.suppress(OSError):
            leftover.unlink()
            removed += 1
    return removed
