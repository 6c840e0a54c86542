"""The README's two set-up commands stay true: CI runs the second one as written."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = text.split("```bash\n")[1:3]
    return [b.split("\n```")[0].strip() for b in blocks]


def test_readme_opens_with_the_two_commands():
    run, test = setup_commands()
    assert "seqcli run char-lm" in run and "pip install torch==2.13.0" in run
    assert "pytest" in test and "[test]" in test


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert setup_commands()[1] in ci.splitlines()


def test_the_readme_is_a_front_page_whose_links_lead_somewhere():
    """At most 250 lines, the two set-up commands first, and every link into the repository
    (the documentation's pages, the example plugins) names a file or folder that exists."""
    import re

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    assert text.index("```bash") < text.index("## ")
    targets = [t for t in re.findall(r"\]\(([^)\s#]+)[^)]*\)", text) if "://" not in t]
    assert len(targets) >= 15
    assert [t for t in targets if not (ROOT / t).exists()] == []
