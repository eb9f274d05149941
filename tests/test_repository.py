"""The repository stands on its own: what the code cites is in it."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [p for p in ROOT.rglob("*") if p.suffix in {".py", ".html", ".md", ".yml", ".txt", ".in"}
           and not {".venv", "var", ".git", "node_modules"} & set(p.relative_to(ROOT).parts)]


def test_no_file_cites_a_document_outside_the_repository():
    outside = re.compile(r"\.\./shared|(?<![\w/])(METRICS|DESIGN|GLOSSARY)\.md")
    offenders = [f"{p.relative_to(ROOT)}:{n}" for p in SOURCES
                 for n, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
                 if outside.search(line)]
    assert offenders == []


def test_the_cited_definitions_are_in_docs():
    assert (ROOT / "docs" / "metrics.md").read_text().startswith("#")
    assert (ROOT / "docs" / "design.md").read_text().startswith("#")
