"""Checks that a rendered page is in its language: shared by the browser tests of issue 16.

Two checks, because either alone misses something:

- ``catalogue_english_left``: every msgid of this project's catalogues (the project's and the touchpoints
  app's) whose translation differs from it must not appear in the page's visible text. It catches a string
  that goes through gettext but is not translated where it is shown (a lazy string evaluated too early, a
  catalogue not compiled, a template that prints the msgid).
- ``latin_words_outside_data``: in Arabic and Persian, no Latin-script word may be left in the visible text
  outside of isolated data (``<bdi>``, ``dir="ltr"``/``dir="auto"`` elements, ``<code>``, form fields,
  ``translate="no"``). It catches a hard-coded English string that never reached the catalogue. Data a page
  shows (names, emails, codes, phones, figures) is isolated anyway, so that it reads right in right-to-left.
"""

import re
from functools import cache
from pathlib import Path

from babel.messages.pofile import read_po

BASE_DIR = Path(__file__).resolve().parent.parent
CATALOGUES = ("locale/{language}/LC_MESSAGES/django.po", "touchpoints/locale/{language}/LC_MESSAGES/django.po")
# Words that are the same in English and in the language (or are names): not a sign of a missing translation.
SAME_IN_BOTH = {"CSV", "API", "SMS", "NPS", "CSAT", "CES", "CLV", "ID", "OK", "CAC", "pp", "URL", "TOTP"}

# Text nodes of the page with their nearest isolating ancestor, computed in the browser.
VISIBLE_TEXT_JS = """
(root) => {
  const isolated = (el) => el.closest('bdi, code, kbd, samp, pre, input, textarea, select, option, script, style, '
    + '[dir="ltr"], [dir="auto"], [translate="no"], [hidden], [aria-hidden="true"], svg');
  const out = [];
  const walker = document.createTreeWalker(root || document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent.trim();
    if (!text) continue;
    const el = node.parentElement;
    if (!el) continue;
    const style = getComputedStyle(el);
    if (style.display === 'none' || style.visibility === 'hidden') continue;
    out.push({text, isolated: !!isolated(el)});
  }
  return out;
}
"""


@cache
def translated_msgids(language: str) -> frozenset[str]:
    """The msgids (singular forms) whose translation in ``language`` differs from the English text."""
    found: set[str] = set()
    for pattern in CATALOGUES:
        path = BASE_DIR / pattern.format(language=language)
        if not path.exists():
            continue
        with path.open("rb") as po_file:
            catalog = read_po(po_file, locale=language)
        for message in catalog:
            if not message.id or message.fuzzy:
                continue
            msgid = message.id[0] if isinstance(message.id, tuple) else message.id
            string = message.string[0] if isinstance(message.string, tuple) else message.string
            if string and string != msgid:
                found.add(msgid)
    return frozenset(found)


def _placeholder_free_parts(msgid: str) -> list[str]:
    """The literal pieces of a msgid between its placeholders (%(name)s, {name}, %s), long enough to mean something."""
    pieces = re.split(r"%\([^)]*\)[sdfr]|%[sdfr]|\{[^}]*\}", msgid)
    return [piece.strip(" .,:;()") for piece in pieces if len(re.findall(r"[A-Za-z]", piece)) >= 4]


def catalogue_english_left(texts: list[str], language: str) -> list[str]:
    """The English msgids (or their literal pieces) found in the visible texts of a page in ``language``."""
    if language == "en":
        return []
    joined = "\n".join(texts)
    left = []
    for msgid in translated_msgids(language):
        for piece in _placeholder_free_parts(msgid):
            # Whole words only, so "Save" is not found inside a customer's data such as "Saved".
            if piece not in SAME_IN_BOTH and re.search(rf"(?<![A-Za-z]){re.escape(piece)}(?![A-Za-z])", joined):
                left.append(piece)
    return sorted(set(left))


def latin_words_outside_data(nodes: list[dict]) -> list[str]:
    """Latin-script words (2+ letters) in text that is not isolated data: hard-coded English in ar/fa."""
    words = set()
    for node in nodes:
        if node["isolated"]:
            continue
        for word in re.findall(r"[A-Za-z]{2,}", node["text"]):
            if word not in SAME_IN_BOTH:
                words.add(f"{word} (in {node['text'][:60]!r})")
    return sorted(words)


def page_language_problems(page, language: str) -> list[str]:
    """Everything on the current page that is not in ``language``: empty when the page is right."""
    nodes = page.evaluate(VISIBLE_TEXT_JS)
    problems = [f"English from the catalogue: {piece!r}"
                for piece in catalogue_english_left([node["text"] for node in nodes if not node["isolated"]], language)]
    if language in ("ar", "fa"):
        problems += [f"Latin text outside isolated data: {word}" for word in latin_words_outside_data(nodes)]
    return problems
