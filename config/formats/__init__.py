"""The project's date and number formats per language (FORMAT_MODULE_PATH), over Django's own: only what
differs is here; everything else falls through to django/conf/locale/<lang>/formats.py."""
