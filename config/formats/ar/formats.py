# The day, the month's name and the year ("1 ديسمبر 2026"): Django's "d‏/m‏/Y" needs the direction marks
# it carries to read right, and the order of a numeric date is a guess across the Arabic-speaking countries.
SHORT_DATE_FORMAT = "j F Y"
