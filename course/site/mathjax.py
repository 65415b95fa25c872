"""MathJax for the website from files installed with the ``site`` extra, never from a CDN.

The ``sphinx-mathjax-offline`` package ships MathJax 3's combined components. The site needs
one of them (TeX input with every extension, CommonHTML output) and its web fonts; those are
copied into the site's ``_static/mathjax`` and Sphinx's ``mathjax_path`` points there.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

PACKAGE = "sphinx-mathjax-offline"
SCRIPT = "tex-chtml-full.js"
FONTS = "output/chtml/fonts/woff-v2"
MATHJAX_PATH = f"mathjax/{SCRIPT}"  # relative to the site's _static


def mathjax_root() -> Path | None:
    """The installed MathJax folder, or None when the package is missing."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(list(spec.submodule_search_locations)[0]) / "static" / "mathjax"
    return root if (root / SCRIPT).exists() else None


def mathjax_files() -> dict[str, Path]:
    """The files the site ships: path under ``_static/mathjax`` -> installed file."""
    root = mathjax_root()
    if root is None:
        raise FileNotFoundError(f"{PACKAGE} is not installed: pip install -e \".[site]\"")
    files = {SCRIPT: root / SCRIPT}
    for font in sorted((root / FONTS).glob("*.woff")):
        files[f"{FONTS}/{font.name}"] = font
    return files
