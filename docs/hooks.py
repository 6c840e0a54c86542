"""MkDocs hooks: the reference pages, generated from the code when the site is built
(docs/reference.py), never kept by hand."""

from __future__ import annotations

import sys
from pathlib import Path

from mkdocs.structure.files import File

sys.path.insert(0, str(Path(__file__).resolve().parent))

import reference  # noqa: E402


def on_files(files, config):
    for path, make in reference.PAGES.items():
        files.append(File.generated(config, path, content=make()))
    return files
