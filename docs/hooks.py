"""MkDocs hooks: the pages made when the site is built.

- reference/*.md: generated from the code (docs/reference.py);
- guide/*.md: the README's sections, one page each ("## Title" becomes the page's title),
  with their links to each other and to files in the repository made into links of the site.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from mkdocs.structure.files import File

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import reference  # noqa: E402

GUIDE = "guide"


def slug(title: str) -> str:
    """A heading's anchor as GitHub and this site make it."""
    text = re.sub(r"[^\w\- ]", "", title.strip().lower())
    return text.replace(" ", "-")


def sections(readme: str) -> list[tuple[str, str, str]]:
    """(file name, title, body) of each `## ` section of the README."""
    parts = re.split(r"^## (.+)$", readme, flags=re.M)
    out = []
    for title, body in zip(parts[1::2], parts[2::2]):
        out.append((slug(title.replace("`", "")) + ".md", title, body))
    return out


def guide_pages(readme: str) -> dict[str, str]:
    """The README's sections as pages, their anchors and file links made the site's."""
    found = sections(readme)
    where: dict[str, str] = {}  # an anchor -> the page that has it
    for name, title, body in found:
        where[slug(title)] = name
        for heading in re.findall(r"^#{3,6} (.+)$", body, flags=re.M):
            where[slug(heading)] = name
    pages = {}
    for name, title, body in found:
        def link(match: re.Match, name=name) -> str:
            target = match.group(1)
            if target.startswith("#"):  # a section of the README: the page that has it
                page = where.get(target[1:])
                return f"]({'' if page in (None, name) else page}{target})"
            if target.startswith("docs/"):  # a picture beside this site's pages
                return f"](../{target[len('docs/'):]})"
            return match.group(0)

        body = re.sub(r"\]\(([^)\s]+)\)", link, body)
        body = re.sub(r"^(#{3,6}) ", lambda m: m.group(1)[1:] + " ", body, flags=re.M)
        pages[f"{GUIDE}/{name}"] = f"# {title}\n{body}"
    return pages


def on_files(files, config):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    made = {**guide_pages(readme), **{path: make() for path, make in reference.PAGES.items()}}
    for path, content in made.items():
        files.append(File.generated(config, path, content=content))
    return files


def on_config(config):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    config["nav"] = [
        {"Home": "index.md"},
        {"Guide": [{title.replace("`", ""): f"{GUIDE}/{name}"} for name, title, _ in sections(readme)]},
        {"Reference": [{"Commands": "reference/commands.md"}, {"Recipe keys": "reference/keys.md"},
                       {"Tasks and their options": "reference/tasks.md"}, {"Plugin API": "reference/api.md"}]},
    ]
    return config
