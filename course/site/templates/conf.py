"""Sphinx configuration of the course website, written by ``course site`` (do not edit).

The values that depend on the machine (where the execution cache lives, which lecture draws
the course map) come from ``site-settings.json`` beside this file.
"""

import json
from pathlib import Path

_settings = json.loads((Path(__file__).parent / "site-settings.json").read_text("utf-8"))

project = "Deep learning, paper by paper"
html_title = project
extensions = ["myst_nb", "course.site.sphinx_ext"]
exclude_patterns = ["downloads/**", "_generated/**", "_static/**", "_templates/**"]

html_theme = "furo"
html_static_path = ["_static"]
html_css_files = ["course.css"]
html_copy_source = False
html_show_sourcelink = False
html_last_updated_fmt = None

myst_enable_extensions = ["dollarmath", "amsmath"]
suppress_warnings = ["myst.header"]

# Lectures execute once: jupyter-cache keeps each executed notebook under the hash of its code
# cells, so a rebuild executes only lectures whose code changed. A failing cell fails the build.
nb_execution_mode = "cache"
nb_execution_cache_path = _settings["execution_cache"]
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True
# Markdown that a cell displays (lecture 0.1's generated unit list) is read as MyST, so its
# links to other lectures (`../01-…/03-lenet.md`) resolve to their pages like the text's.
nb_render_markdown_format = "myst"
nb_ipywidgets_js: dict[str, dict] = {}  # no widget scripts from a CDN

# MathJax from the files copied into _static/mathjax, never from a CDN.
mathjax_path = _settings["mathjax_path"]

course_map_lecture = _settings["course_map_lecture"]
