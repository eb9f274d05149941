"""The compiled message catalogues (.mo) are built from the .po files at install time, not committed.

Babel compiles them in pure Python: GNU gettext's msgfmt is not on a fresh machine (README: only Python), and
requirements.txt alone must be enough for the Docker image. Like msgfmt without --use-fuzzy, a fuzzy entry is
left out (the English text shows) rather than shipped as a guess. Run as ``python -m core.catalogues [PO...]``:
no Django settings needed (the Makefile and the Docker build call it before any configuration exists).
"""

import sys
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

BASE_DIR = Path(__file__).resolve().parent.parent
# The project's catalogues (LOCALE_PATHS) and those of the apps that keep their own (touchpoints).
PO_PATTERNS = ("locale/*/LC_MESSAGES/*.po", "*/locale/*/LC_MESSAGES/*.po")


def catalogue_paths(*, root: Path = BASE_DIR) -> list[Path]:
    return sorted(path for pattern in PO_PATTERNS for path in root.glob(pattern))


def catalogue_compile(*, po_path: Path) -> Path:
    """Writes the .mo beside the .po (atomically: a running server never reads half a file)."""
    with po_path.open("rb") as po_file:
        catalog = read_po(po_file, locale=po_path.parent.parent.name, abort_invalid=True)
    mo_path = po_path.with_suffix(".mo")
    partial = mo_path.with_suffix(".mo.partial")
    with partial.open("wb") as mo_file:
        write_mo(mo_file, catalog, use_fuzzy=False)
    partial.replace(mo_path)
    return mo_path


def catalogues_compile(*, po_paths: list[Path] | None = None, root: Path = BASE_DIR) -> list[Path]:
    return [catalogue_compile(po_path=path) for path in (po_paths if po_paths is not None else catalogue_paths(root=root))]


if __name__ == "__main__":
    compiled = catalogues_compile(po_paths=[Path(arg) for arg in sys.argv[1:]] or None)
    print(f"compiled {len(compiled)} catalogue(s)", file=sys.stderr)
