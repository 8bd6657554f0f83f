"""MkDocs hook: pages generated from the code at build time, so they cannot drift from it.

A page that holds ``<!-- generated: inputs -->`` gets the input reference written from the
pydantic models of hybridmd.config; ``<!-- generated: cli -->`` the ``--help`` of every
sub-command (hybridmd.input_reference).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this checkout's hybridmd
from hybridmd.input_reference import cli_reference, input_reference  # noqa: E402

_MARKERS = {"<!-- generated: inputs -->": input_reference,
            "<!-- generated: cli -->": cli_reference}


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace each marker by the markdown it stands for."""
    for marker, make in _MARKERS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, make())
    return markdown
