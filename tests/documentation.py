"""The documentation the tests read: the README, then the site's pages in the order of
mkdocs.yml's nav (the reference pages, generated from the code, aside)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def pages() -> list[Path]:
    """The site's written pages, in the nav's order."""
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8").split("\nnav:\n", 1)[1]
    names = re.findall(r"^\s+- [^:]+: (\S+\.md)$", nav, flags=re.M)
    return [DOCS / name for name in names if not name.startswith("reference/")]


def texts() -> list[tuple[str, str]]:
    """(name, text) of the README and of each page."""
    return [("README.md", (ROOT / "README.md").read_text(encoding="utf-8"))] + \
        [(f"docs/{p.name}", p.read_text(encoding="utf-8")) for p in pages()]


def page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def bash_blocks() -> list[str]:
    """Every ```bash block of the README and of the pages, but the README's two set-up
    commands (CI's own) wherever they are shown."""
    every = [re.findall(r"```bash\n(.*?)\n```", text, re.S) for _, text in texts()]
    setup = set(every[0][:2])
    return [block for blocks in every for block in blocks if block not in setup]
