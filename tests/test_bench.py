"""``course bench`` runs and prints every per-unit figure (its numbers are never asserted)."""

from __future__ import annotations

import io

from rich.console import Console

from course import catalogue
from course.bench import run_bench


def test_bench_prints_every_per_unit_figure():
    out = io.StringIO()
    figures = run_bench([catalogue.find("sdxl")], repeat=1, whole=False,
                        console=Console(file=out, width=250))
    unit = figures["units"]["sdxl"]
    assert set(unit) == {"check_s", "first_check_s", "cli_s", "first_cli_s", "import_torch_s",
                         "cli_ratio"}
    assert all(value > 0 for value in unit.values())
    text = out.getvalue()
    for column in ("check() warm", "first call", "course check, first run", "import torch",
                   "÷ import torch", "sdxl"):
        assert column in text
