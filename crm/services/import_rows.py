"""What every CSV import shares: reading the header, the per-row reasons a record is not one, the result."""

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.utils.translation import gettext, ngettext

NOT_UTF8 = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of a byte that is not UTF-8


class ImportFileError(Exception):
    """The file as a whole cannot be imported (no header, unknown or missing columns): nothing was written."""


@dataclass
class ImportResult:
    kind: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    # Rows whose opt-out or do-not-call the file would have undone: applied, with those kept (reported).
    kept: int = 0
    report_path: Path | None = None

    def summary(self) -> str:
        data = {"kind": self.kind, "rows": self.rows, "created": self.created, "updated": self.updated,
                "unchanged": self.unchanged, "rejected": self.rejected, "kept": self.kept}
        if self.kept:
            # Translators: after a CSV import; kind is the file's kind as typed (customers, orders...).
            return ngettext(
                "%(kind)s: %(rows)s row read, %(created)s created, %(updated)s updated, %(unchanged)s already "
                "present, %(rejected)s rejected, %(kept)s with an opt-out or do-not-call kept",
                "%(kind)s: %(rows)s rows read, %(created)s created, %(updated)s updated, %(unchanged)s already "
                "present, %(rejected)s rejected, %(kept)s with an opt-out or do-not-call kept", self.rows) % data
        # Translators: after a CSV import; kind is the file's kind as typed (customers, orders...).
        return ngettext(
            "%(kind)s: %(rows)s row read, %(created)s created, %(updated)s updated, %(unchanged)s already present, "
            "%(rejected)s rejected",
            "%(kind)s: %(rows)s rows read, %(created)s created, %(updated)s updated, %(unchanged)s already present, "
            "%(rejected)s rejected", self.rows) % data


def width_error(width: int, found: int) -> str:
    return gettext("Expected %(width)s fields, found %(found)s.") % {"width": width, "found": found}


def undecodable_error(row: dict[str, str]) -> str:
    """Why a row holding bytes that are not UTF-8 is rejected, or ""."""
    if undecodable := [name for name, value in row.items() if NOT_UTF8.search(value)]:
        return gettext(
            "Not UTF-8 text (in %(columns)s): save the file as UTF-8 and import it again; the other rows were "
            "read.") % {"columns": ", ".join(undecodable)}
    return ""


def header_read(reader: Iterator[list[str]], *, required: tuple[str, ...], columns: tuple[str, ...]) -> list[str]:
    """The header's column names (lower case), or ImportFileError saying what is wrong with it."""
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError(gettext("The file is empty: expected a header row.")) from None
    except csv.Error as exc:
        raise ImportFileError(gettext("The header row is not valid CSV: %(why)s.") % {"why": exc}) from None
    names = [h.strip().lower() for h in header]
    unknown = [n for n in names if n not in columns]
    missing = [c for c in required if c not in names]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if unknown or missing or duplicated:
        problems = []
        # Column names are the file's and the API's: kept as they are in every language.
        if missing:
            problems.append(gettext("missing required column(s) %(columns)s") % {"columns": ", ".join(missing)})
        if unknown:
            problems.append(gettext("unknown column(s) %(columns)s") % {"columns": ", ".join(unknown)})
        if duplicated:
            problems.append(gettext("repeated column(s) %(columns)s") % {"columns": ", ".join(duplicated)})
        raise ImportFileError(gettext("Header: %(problems)s. Expected columns: %(columns)s.") % {
            "problems": gettext("; ").join(problems), "columns": ", ".join(columns)})
    return names
