"""The README and docs/ hold together: every relative link points at a file that exists (and a `#heading` at a
heading of that page, as GitHub names its anchors), and the README links every page of docs/."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]

FENCED = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+).+?\1", re.DOTALL)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} +(.+?) *#*$", re.MULTILINE)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # http:, https:, mailto:


def without_code_blocks(text: str) -> str:
    return FENCED.sub("", text)


def links(page: Path) -> list[str]:
    """The link targets of a page's prose (code blocks and code spans hold no links)."""
    return LINK.findall(CODE_SPAN.sub("", without_code_blocks(page.read_text(encoding="utf-8"))))


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as hyphens, and
    -1, -2, ... after a repeated one."""
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(without_code_blocks(page.read_text(encoding="utf-8"))):
        slug = re.sub(r"[^\w\- ]", "", heading.replace("`", "").strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def relative_links(page: Path) -> list[tuple[str, Path, str]]:
    """(as written, the file it points at, its #fragment) for every link that is not to another site."""
    out = []
    for target in links(page):
        if EXTERNAL.match(target):
            continue
        path, _, fragment = target.partition("#")
        out.append((target, (page.parent / path).resolve() if path else page, fragment))
    return out


def test_every_relative_link_points_at_a_file_that_exists():
    broken = [f"{page.relative_to(ROOT)}: {target}" for page in PAGES
              for target, file, _ in relative_links(page) if not file.exists()]
    assert broken == []


def test_every_link_to_a_heading_names_a_heading_of_its_page():
    broken = [f"{page.relative_to(ROOT)}: {target}" for page in PAGES
              for target, file, fragment in relative_links(page)
              if fragment and file.suffix == ".md" and file.exists() and fragment not in anchors(file)]
    assert broken == []


def test_the_readme_links_every_docs_page():
    linked = {file for _, file, _ in relative_links(README)}
    assert DOCS, "docs/ holds no page"
    assert [page.name for page in DOCS if page.resolve() not in linked] == []


def test_anchors_are_named_as_github_names_them(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# One machine: `--jobs N`\n\n## Coming from optuna-integration's MLflowCallback\n\n"
                    "```python\n# not a heading\n```\n\n## Notes\n\n## Notes\n", encoding="utf-8")
    assert anchors(page) == {"one-machine---jobs-n", "coming-from-optuna-integrations-mlflowcallback", "notes",
                             "notes-1"}
