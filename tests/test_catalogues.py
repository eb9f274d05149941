"""The message catalogues: every non-English language complete, and every catalogue up to date with the code.

(a) Each catalogue of each language but English (settings.LANGUAGES) exists, parses, and has no untranslated
    and no fuzzy entry: a fuzzy entry is left out of the compiled catalogue (core/catalogues.py), so either
    way a person would read English in the middle of their language.
(b) A makemessages run would not change the msgids: the commands of `make messages`, run on a copy of the
    project, extract exactly the committed msgids. Needs GNU gettext (xgettext): skipped without it, except on
    CI (CI=true), where it fails (.ci/run installs Debian's gettext).

The two catalogues and the commands that reproduce them exactly (`make messages` runs both):
- the project's, locale/: ``manage.py makemessages --ignore touchpoints --ignore var`` from the project's root
  (var/ may hold virtualenvs of the tests: their site-packages are not our strings);
- the touchpoints app's, touchpoints/locale/: its code and the templates it owns (templates/touchpoints,
  templates/admin/touchpoints). makemessages sends a file to the nearest locale/ above it, so run inside
  touchpoints/ it misses the templates and run from the root it puts them in the project's catalogue: it runs
  from a folder holding only touchpoints/, those templates and touchpoints/locale as locale/ (symlinks),
  ``django-admin makemessages --symlinks --ignore locale`` without settings.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po
from django.conf import settings

from tests.conftest import ON_CI

BASE_DIR = Path(settings.BASE_DIR)
CATALOGUES = {"project": Path("locale"), "touchpoints": Path("touchpoints/locale")}
TOUCHPOINTS_TEMPLATES = (Path("templates/touchpoints"), Path("templates/admin/touchpoints"))
# The msgids are English: every other language needs a translation of each.
TRANSLATED = [code for code, _name in settings.LANGUAGES if code != "en"]
# Not the project: local state, and the compiled catalogues a copy must not carry.
NOT_COPIED = shutil.ignore_patterns(".git", ".venv", "var", ".hypothesis", ".pytest_cache", "__pycache__", "*.mo",
                                    "node_modules", ".env")


def po_path(catalogue: str, language: str, root: Path = BASE_DIR) -> Path:
    return root / CATALOGUES[catalogue] / language / "LC_MESSAGES" / "django.po"


def read_catalogue(path: Path, language: str) -> Catalog:
    with path.open("rb") as po_file:
        return read_po(po_file, locale=language, abort_invalid=True)


def untranslated(message: Message) -> bool:
    strings = message.string if isinstance(message.string, tuple) else (message.string,)
    return not all(strings)


def msgids(catalog: Catalog) -> set[str]:
    """Each entry's context and msgid (a plural's: both its forms), one string. Obsolete entries are not read."""
    return {" | ".join(filter(None, (message.context, *(message.id if isinstance(message.id, tuple) else (message.id,)))))
            for message in catalog if message.id}


@pytest.mark.parametrize("catalogue", sorted(CATALOGUES))
@pytest.mark.parametrize("language", TRANSLATED)
def test_every_entry_is_translated_and_none_is_fuzzy(catalogue, language):
    path = po_path(catalogue, language)
    if not path.exists():
        pytest.fail(f"{path.relative_to(BASE_DIR)} does not exist: {language} is in settings.LANGUAGES but has no "
                    f"{catalogue} catalogue (`make messages LANGS=\"-l {language}\"` creates it, then translate it).",
                    pytrace=False)
    catalog = read_catalogue(path, language)
    entries = [message for message in catalog if message.id]
    missing = [message.id for message in entries if untranslated(message)]
    fuzzy = [message.id for message in entries if message.fuzzy]
    assert not missing and not fuzzy, (
        f"{path.relative_to(BASE_DIR)}: {len(missing)} of {len(entries)} entries untranslated, {len(fuzzy)} fuzzy. "
        f"Untranslated: {missing[:5]}{' ...' if len(missing) > 5 else ''} Fuzzy: {fuzzy[:5]}{' ...' if len(fuzzy) > 5 else ''}")


def project_copy(into: Path) -> Path:
    """The project's sources and catalogues, so that makemessages rewrites the copy's, never the real ones."""
    copy = into / "project"
    shutil.copytree(BASE_DIR, copy, ignore=NOT_COPIED, symlinks=True)
    return copy


def touchpoints_layout(*, project: Path, into: Path) -> Path:
    """What `make messages` builds for the touchpoints catalogue: the app, its templates and its locale/."""
    layout = into / "touchpoints-messages"
    for source, target in [(Path("touchpoints"), Path("touchpoints")), (CATALOGUES["touchpoints"], Path("locale")),
                           *[(folder, folder) for folder in TOUCHPOINTS_TEMPLATES]]:
        (layout / target).parent.mkdir(parents=True, exist_ok=True)
        (layout / target).symlink_to(project / source, target_is_directory=True)
    return layout


def makemessages(*, catalogue: str, project: Path, into: Path, languages: list[str]) -> None:
    env = {**os.environ, "VAR_DIR": str(into / "var")}
    flags = [arg for language in languages for arg in ("-l", language)]
    if catalogue == "project":
        command = [sys.executable, "manage.py", "makemessages", "--ignore", "touchpoints", "--ignore", "var", *flags]
        cwd = project
    else:
        env.pop("DJANGO_SETTINGS_MODULE", None)  # no LOCALE_PATHS: the layout's locale/ is the only one
        command = [sys.executable, "-m", "django", "makemessages", "--symlinks", "--ignore", "locale", *flags]
        cwd = touchpoints_layout(project=project, into=into)
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def gettext_tools():
    if shutil.which("xgettext") is None or shutil.which("msgmerge") is None:
        message = "GNU gettext (xgettext, msgmerge) is not installed: makemessages cannot run (apt-get install gettext)"
        if ON_CI:
            pytest.fail(message + "; on CI it must run.", pytrace=False)
        pytest.skip(message)


@pytest.mark.parametrize("catalogue", sorted(CATALOGUES))
def test_the_catalogues_hold_exactly_the_strings_of_the_code(catalogue, gettext_tools, tmp_path):
    # Given a copy of the project and the languages whose catalogue exists (a missing one fails above)
    languages = [language for language in TRANSLATED if po_path(catalogue, language).exists()]
    assert languages, f"no {catalogue} catalogue exists for any of {TRANSLATED}"
    project = project_copy(tmp_path)
    # When makemessages runs on it
    makemessages(catalogue=catalogue, project=project, into=tmp_path, languages=languages)
    # Then it changed no msgid: none added (a new string nobody translated), none dropped (an obsolete one)
    stale = {}
    for language in languages:
        committed = msgids(read_catalogue(po_path(catalogue, language), language))
        extracted = msgids(read_catalogue(po_path(catalogue, language, root=project), language))
        if committed != extracted:
            stale[language] = {"new in the code": sorted(extracted - committed),
                               "gone from the code": sorted(committed - extracted)}
    assert not stale, f"the {catalogue} catalogues are out of date (run `make messages`, then translate): {stale}"
