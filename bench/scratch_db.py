"""Every bench works in a scratch database of its own on the server DATABASE_URL names."""

import os
import sys
from urllib.parse import urlparse, urlunparse


def database_urls(*, name: str = "", suffix: str = "") -> tuple[str, str, str, str]:
    """(DATABASE_URL, the scratch database's name, its URL, the server's maintenance URL).

    The scratch database is ``name``, or ``<DATABASE_URL's database>_<suffix>``. Exits with a clear message
    when DATABASE_URL is not a PostgreSQL server (the benches measure PostgreSQL only)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("Set DATABASE_URL to a PostgreSQL server, e.g. postgres://postgres@127.0.0.1:5432/test")
    parsed = urlparse(url)
    db = name or f"{parsed.path.lstrip('/') or 'postgres'}_{suffix}"
    return url, db, urlunparse(parsed._replace(path=f"/{db}")), urlunparse(parsed._replace(path="/postgres"))
