"""What DJANGO_PROFILE=production refuses to start with (README "Production: what start-up refuses").

Refused while the settings load, not reported by a system check: a check is a warning nobody reads on a
server that then runs with a forgeable session key. Every problem is listed at once, each naming its variable
and the fix, so one failed start shows everything there is to change.
"""

from urllib.parse import urlsplit

from django.core.checks.security.base import (
    SECRET_KEY_INSECURE_PREFIX,
    SECRET_KEY_MIN_LENGTH,
    SECRET_KEY_MIN_UNIQUE_CHARACTERS,
)
from django.core.exceptions import ImproperlyConfigured

# The development profile's default: published in this repository, so it signs nothing in production.
DEVELOPMENT_SECRET_KEY = "insecure-development-key-do-not-use-in-production"
NEW_KEY = 'python3 -c "import secrets; print(secrets.token_urlsafe(50))"'


def production_refusals(*, secret_key: str, debug: bool, allowed_hosts: list[str], site_url: str) -> list[str]:
    """One line per insecure setting, naming the environment variable and how to fix it; empty when none."""
    problems = []
    if not secret_key:
        problems.append(f"SECRET_KEY is not set: set it to 50+ random characters, e.g. the output of {NEW_KEY}.")
    elif secret_key == DEVELOPMENT_SECRET_KEY:
        problems.append("SECRET_KEY is the development key published in this repository: set it to 50+ random "
                        f"characters of your own, e.g. the output of {NEW_KEY}.")
    elif (len(secret_key) < SECRET_KEY_MIN_LENGTH or len(set(secret_key)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS
          or secret_key.startswith(SECRET_KEY_INSECURE_PREFIX)):
        # Django's own heuristics (security.W009), made a refusal.
        problems.append(f"SECRET_KEY is too weak (fewer than {SECRET_KEY_MIN_LENGTH} characters, fewer than "
                        f"{SECRET_KEY_MIN_UNIQUE_CHARACTERS} different ones, or Django's '{SECRET_KEY_INSECURE_PREFIX}' "
                        f"prefix): set it to 50+ random characters, e.g. the output of {NEW_KEY}.")
    if debug:
        problems.append("DEBUG is true: debug pages show settings and source code to anyone; remove DEBUG or set "
                        "DEBUG=false.")
    if not allowed_hosts:
        problems.append("ALLOWED_HOSTS is not set: set it to the host names the site answers to, comma-separated, "
                        "e.g. ALLOWED_HOSTS=winback.example.com.")
    elif "*" in allowed_hosts:
        problems.append("ALLOWED_HOSTS contains '*', which trusts any Host header (password-reset and email links "
                        "can be pointed elsewhere): list the real host names, e.g. ALLOWED_HOSTS=winback.example.com.")
    url = urlsplit(site_url)
    if url.scheme != "https" or not url.hostname:
        problems.append(f"SITE_URL is {site_url!r}: the unsubscribe and survey links in emails need the public "
                        "https address, e.g. SITE_URL=https://winback.example.com.")
    return problems


def production_refuse(*, problems: list[str]) -> None:
    if problems:
        raise ImproperlyConfigured(
            f"DJANGO_PROFILE=production refuses to start with {len(problems)} insecure setting(s):\n"
            + "\n".join(f"  - {problem}" for problem in problems))
