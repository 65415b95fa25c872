"""Reference results kept between runs: a trusted implementation's payload on a probe, keyed
by everything that determines it.

A reference (or banked mistake) is deterministic for a given implementation source, check
module, course engine, probe, torch and numpy versions, default dtype and thread count: every
probe runs under ``torch.manual_seed(0)`` on the CPU (:func:`course.grading.probes.execute`).
So its payload is computed once and read back afterwards:

- in memory, for the life of the process (a class graded in one run computes each reference
  once, not once per student);
- on disk, in ``.course-cache/references/`` beside the course (git-ignored), or in
  ``$COURSE_REFERENCE_CACHE``; ``COURSE_REFERENCE_CACHE=off`` turns the disk cache off. One file
  per unit and implementation holds its probes' payloads; a changed master, check module or
  engine gives a new key, and the stale file is removed when the new one is written.

Only results that took a while are kept (:data:`WORTH_SECONDS`): a cheap reference is
recomputed faster than it is looked up.

Learner code can neither read nor write the cache: the bubblewrap sandbox hides the folder
(:func:`course.isolation.sandbox.hidden_paths`), and where there is no sandbox, graders of other
people's work (``course grade``) keep the cache in memory only (:func:`use_disk`), since a
submission could write the folder. Entries are read with the same plain-data reader as the
child's replies (:mod:`course.grading.wire`) and checked against their SHA-256, so a damaged
file is recomputed and rewritten, never trusted.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path

import torch

from course import paths
from course.grading import encode as enc
from course.grading import wire

WORTH_SECONDS = 0.002  # results cheaper than this are recomputed, not stored
MEMORY_BYTES = 512 * 2**20
FORMAT = "refcache-1"

_disk = True
_memory: dict[str, bytes] = {}
_memory_bytes = 0
_files: dict[tuple[str, str], _File] = {}


def folder() -> Path | None:
    """Where the disk cache lives (:func:`course.paths.reference_cache`), None when off."""
    return paths.reference_cache()


def use_disk(enabled: bool) -> None:
    """Keep results on disk (the default) or in this process's memory only."""
    global _disk
    _disk = enabled


@cache
def engine_digest() -> str:
    """What every key shares: the course package's sources, Python, torch, numpy, machine."""
    digest = hashlib.sha256(FORMAT.encode())
    package = Path(__file__).resolve().parent.parent
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    import numpy

    versions = (sys.version, torch.__version__, numpy.__version__, platform.machine())
    digest.update(repr(versions).encode())
    return digest.hexdigest()


def implementation_key(slug: str, name: str, source: str, checks_source: str) -> str:
    """The key of one implementation (``name``: reference or a mistake id) of unit ``slug``."""
    digest = hashlib.sha256(engine_digest().encode())
    for part in (slug, name, source, checks_source):
        digest.update(b"\0" + part.encode())
    return digest.hexdigest()


class _File:
    """One implementation's stored payloads: ``probe key -> reply bytes``, read at first use,
    written back at exit when it gained entries."""

    def __init__(self, root: Path, slug: str, name: str, key: str) -> None:
        self.key = key
        self.path = root / f"{slug}.{name}.{key[:24]}.bin"
        self.stale = [p for p in root.glob(f"{slug}.{name}.*.bin") if p != self.path]
        self.entries: dict[str, bytes] = _read(self.path)
        self.added = False

    def save(self) -> None:
        if not self.added:
            return
        body = wire.to_bytes({k: {"b": torch.frombuffer(bytearray(v), dtype=torch.uint8)}
                              for k, v in self.entries.items()})
        data = hashlib.sha256(body).hexdigest().encode() + b"\n" + body
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, self.path)  # atomic: a reader sees the old file or the new one
            for old in self.stale:
                old.unlink(missing_ok=True)
        except OSError:  # a read-only course: the cache stays in memory
            pass
        self.added = False


def _read(path: Path) -> dict[str, bytes]:
    """The entries stored at ``path``; {} when it is missing, damaged or not plain data."""
    try:
        data = path.read_bytes()
    except OSError:
        return {}
    digest, _, body = data.partition(b"\n")
    if hashlib.sha256(body).hexdigest().encode() != digest:
        return {}
    try:
        entries = enc.validate(wire.from_bytes(body))
    except Exception:
        return {}
    if not isinstance(entries, dict):
        return {}
    found = {}
    for key, value in entries.items():
        blob = value.get("b") if isinstance(value, dict) else None
        if isinstance(blob, torch.Tensor) and blob.dtype == torch.uint8 and blob.dim() == 1:
            found[key] = blob.numpy().tobytes()
    return found


def _file(slug: str, name: str, key: str) -> _File | None:
    root = folder() if _disk else None
    if root is None:
        return None
    if (slug, name) not in _files or _files[slug, name].key != key:
        _files[slug, name] = _File(root, slug, name, key)
    return _files[slug, name]


def _remember(key: str, data: bytes) -> None:
    global _memory_bytes
    _memory[key] = data
    _memory_bytes += len(data)
    while _memory_bytes > MEMORY_BYTES and _memory:
        _memory_bytes -= len(_memory.pop(next(iter(_memory))))


def run(slug: str, name: str, key: str, probe, compute: Callable[[], dict]) -> dict:
    """``compute()``'s payload for ``probe``, from the cache when it holds one."""
    digest = hashlib.sha256(key.encode())
    digest.update(f"{torch.get_num_threads()} {torch.get_default_dtype()}".encode())
    digest.update(wire.request_to_bytes(probe))
    probe_key = digest.hexdigest()
    data = _memory.get(probe_key)
    stored = _file(slug, name, key)
    if data is None and stored is not None:
        data = stored.entries.get(probe_key)
    if data is not None:
        try:
            return enc.validate(wire.from_bytes(data))
        except Exception:  # damaged: recompute below
            _memory.pop(probe_key, None)
    started = time.perf_counter()
    payload = compute()
    if time.perf_counter() - started < WORTH_SECONDS:
        return payload
    try:
        data = wire.to_bytes(payload)
    except Exception:  # not plain data: not kept
        return payload
    _remember(probe_key, data)
    if stored is not None:
        stored.entries[probe_key] = data
        stored.added = True
    return payload


def save() -> None:
    """Write every file that gained entries (also done at exit)."""
    for stored in list(_files.values()):
        stored.save()


atexit.register(save)
