# Hungarian writes a space after each full stop of a numeric date: "2026. 12. 01." (the Academy's rules,
# AkH. 12th ed.); Django's own is "2026.12.01.". The inputs accept both. Decimal comma, a space per thousand.
SHORT_DATE_FORMAT = "Y. m. d."
SHORT_DATETIME_FORMAT = "Y. m. d. H:i"
DATE_INPUT_FORMATS = [
    "%Y. %m. %d.",  # '2026. 12. 01.'
    "%Y.%m.%d.",  # '2026.12.01.'
    "%Y-%m-%d",  # '2026-12-01'
]
DATETIME_INPUT_FORMATS = [
    "%Y. %m. %d. %H:%M:%S",  # '2026. 12. 01. 14:30:59'
    "%Y. %m. %d. %H:%M",  # '2026. 12. 01. 14:30'
    "%Y.%m.%d. %H:%M:%S",  # '2026.12.01. 14:30:59'
    "%Y.%m.%d. %H:%M",  # '2026.12.01. 14:30'
    "%Y-%m-%d %H:%M:%S",  # '2026-12-01 14:30:59'
    "%Y-%m-%d %H:%M",  # '2026-12-01 14:30'
]
DECIMAL_SEPARATOR = ","
THOUSAND_SEPARATOR = "\xa0"  # a no-break space
