"""Strings of Django's own admin templates that Django's catalogues leave untranslated in one of our languages.

Listed here so that `make messages` carries them in the project's catalogue, whose translations win over
Django's (LOCALE_PATHS comes first): without them a Persian or Hungarian admin page shows them in English.
tests/i18n_check.py finds such strings on the pages the browser tests open.
"""

from django.utils.translation import gettext_noop

DJANGO_ADMIN_STRINGS = (
    gettext_noop("Model name"),  # admin/app_list.html: the hidden header of the app list's tables (fa, hu)
)
