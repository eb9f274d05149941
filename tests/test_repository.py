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


APP_CODE = [p for p in SOURCES if p.suffix == ".py" and p.relative_to(ROOT).parts[0] in
            {"core", "crm", "winback", "touchpoints", "metrics", "config"} and "migrations" not in p.parts]


def _lines(pattern: str, files: list[Path]) -> list[str]:
    found = re.compile(pattern)
    return [f"{p.relative_to(ROOT)}:{n}" for p in files
            for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if found.search(line)]


def test_no_sql_is_built_from_fstrings():
    # Statements are composed with psycopg.sql (core/sql.py), tables from the models.
    assert _lines(r'\bf"""|\bf"[^"]*\b(SELECT|INSERT INTO|UPDATE|DELETE FROM|CREATE|DROP TABLE)\b', APP_CODE) == []


def test_a_cases_state_is_written_only_by_the_cases_module():
    others = [p for p in APP_CODE if p.relative_to(ROOT).as_posix() != "winback/services/cases.py"]
    writes = r"(UPDATE|INSERT INTO)\s+\{?case\}?|winback_winbackcase\s+SET|WinbackCase\.objects\.[^\n]*\.(update|create)\("
    assert _lines(writes, others) == []
