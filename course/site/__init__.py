"""The course as a static website: ``course site OUT``.

Sphinx with myst-nb builds it (``course.site.build``) from pages generated from the catalogue
and the lectures (``course.site.pages``); the tools come with the ``site`` extra, and nothing
here imports them until a build starts.
"""

from __future__ import annotations

import importlib.util

# import name -> distribution, for the message that says what to install
REQUIRED = {"sphinx": "sphinx", "myst_nb": "myst-nb", "furo": "furo",
            "sphinx-mathjax-offline": "sphinx-mathjax-offline", "jupyter_cache": "jupyter-cache"}


def missing_tools() -> list[str]:
    """The distributions the site needs that are not installed."""
    return [dist for name, dist in REQUIRED.items() if importlib.util.find_spec(name) is None]
