"""The Sphinx extension of the course website: the home page's course map.

The course map is a figure that lecture 0.1 draws from the catalogue. The home page shows that
very figure, taken from the lecture's executed copy in the execution cache (never redrawn by
other code): ``{course-map}`` looks the lecture up by the hash of its code cells. The home page
is read last, after every lecture has been executed, and depends on lecture 0.1's source, so it
is read again whenever that lecture changes.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

MAP_TITLE = "The course map"  # the title lecture 0.1 gives its map figure
MAP_FILE = "_generated/course-map.png"


def executed_lecture(env: Any, lecture: Path) -> Any:
    """The executed copy of a lecture in the execution cache, or None when it has none."""
    from jupyter_cache import get_cache
    from myst_nb.core.read import create_nb_reader

    text = lecture.read_text(encoding="utf-8")
    reader = create_nb_reader(str(lecture), env.myst_config, env.mystnb_config, text)
    if reader is None:
        return None
    cache = get_cache(env.mystnb_config.execution_cache_path)
    try:
        record = cache.match_cache_notebook(reader.read(text))
    except KeyError:
        return None
    return cache.get_cache_bundle(record.pk).nb


def course_map_png(nb: Any) -> bytes | None:
    """The PNG of the cell that draws the course map (the cell that sets its title)."""
    for cell in nb.cells:
        if cell.cell_type != "code" or f'"{MAP_TITLE}' not in cell.source:
            continue
        for output in cell.get("outputs", []):
            png = output.get("data", {}).get("image/png")
            if png:
                return base64.b64decode(png)
    return None


class CourseMap(SphinxDirective):
    """``{course-map}``: lecture 0.1's course map figure, or a sentence saying why it is absent."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        lecture = Path(self.config.course_map_lecture)
        self.env.note_dependency(str(lecture))
        nb = executed_lecture(self.env, lecture) if lecture.exists() else None
        png = course_map_png(nb) if nb is not None else None
        if png is None:
            logger.warning("no executed copy of lecture 0.1 with its course map: the home "
                           "page shows none", location=self.get_location())
            return [nodes.paragraph(text="(The course map appears here once lecture 0.1 has "
                                         "been executed for the site.)")]
        target = Path(self.env.srcdir) / MAP_FILE
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.read_bytes() != png:
            target.write_bytes(png)
        image = nodes.image(uri="/" + MAP_FILE, alt="The course map: every unit of the course "
                            "placed by year on the constraints its paper pushed")
        return [image]


def read_home_last(app: Sphinx, env: Any, docnames: list[str]) -> None:
    """Read the home page after the lectures, so that lecture 0.1 is executed before it."""
    if "index" in docnames:
        docnames.remove("index")
        docnames.append("index")


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("course_map_lecture", "", "env")
    app.add_directive("course-map", CourseMap)
    app.connect("env-before-read-docs", read_home_last)
    return {"parallel_read_safe": False, "parallel_write_safe": True}
