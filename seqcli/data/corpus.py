"""The default corpus: English prose that every Python installation carries.

CPython ships the text of its language reference's topics (`pydoc_data.topics`, about
450 KB, used by `help()`); when a distribution leaves it out, the standard library's own
source files stand in. Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import sys
import sysconfig
from pathlib import Path

MAX_SOURCE_BYTES = 1_000_000


def default_corpus() -> tuple[str, str]:
    """(text, description) of the default corpus."""
    try:
        from pydoc_data.topics import topics

        text = "\n".join(topics[k] for k in sorted(topics))
        origin = "pydoc_data.topics"
    except ImportError:
        text = _stdlib_source()
        origin = "standard library source"
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    return text, f"{origin} of Python {sys.version.split()[0]} ({len(text):,} characters, sha256 {digest})"


def _stdlib_source() -> str:
    parts, size = [], 0
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        part = path.read_text(encoding="utf-8", errors="replace")
        parts.append(part)
        size += len(part)
        if size >= MAX_SOURCE_BYTES:
            break
    return "\n".join(parts)
