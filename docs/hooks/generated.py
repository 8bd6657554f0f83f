"""MkDocs hook: pages generated from the code, written afresh at build time, so the site
cannot drift from the code.

The generated parts are committed too (``python -m hybridmd.input_reference`` writes them;
``tests/test_docs.py`` checks they are up to date): the input reference from the pydantic
models of hybridmd.config between ``<!-- generated: inputs -->`` and ``<!-- end generated:
inputs -->``, the ``--help`` of every sub-command between the ``cli`` markers.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this checkout's hybridmd
from hybridmd.input_reference import PAGES, filled  # noqa: E402


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Write each generated part afresh."""
    for name in PAGES.values():
        markdown = filled(markdown, name)
    return markdown
