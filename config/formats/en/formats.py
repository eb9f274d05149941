# A month name, not 12/01/2026: read as 1 December in Europe and as 12 January in the United States.
SHORT_DATE_FORMAT = "j M Y"
