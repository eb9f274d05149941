"""Backups (`make backup`, `make restore`): pg_dump in custom format, pg_restore into an empty database.

A database is named the way Django's DATABASES names it (the settings' own, or a URL parsed the same way).
Passwords never reach a command line, where `ps` would show them: pg_dump and pg_restore get the connection
through libpq's PG* variables, `manage.py migrate --check` through DATABASE_URL in its environment.

SQLite (the zero-setup default) is backed up with sqlite3's online backup API, which copies a consistent
snapshot while the service keeps writing, and restored the same way.
"""

import datetime as dt
import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import environ
import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
# libpq reads these from OPTIONS (as Django passes them to psycopg) when they are given.
LIBPQ_OPTIONS = {"sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT", "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY",
                 "connect_timeout": "PGCONNECT_TIMEOUT"}


class BackupError(Exception):
    """A refusal or a failure, with a message for the person at the terminal."""


@dataclass(frozen=True)
class Database:
    """One database, as a DATABASES entry names it."""

    settings: dict[str, Any]

    @classmethod
    def from_url(cls, url: str) -> "Database":
        return cls(environ.Env.db_url_config(url))

    @property
    def is_postgresql(self) -> bool:
        return self.settings["ENGINE"].endswith(("postgresql", "postgis"))

    @property
    def is_sqlite(self) -> bool:
        return self.settings["ENGINE"].endswith("sqlite3")

    @property
    def name(self) -> str:
        return str(self.settings["NAME"])

    @property
    def label(self) -> str:
        if self.is_sqlite:
            return f"SQLite file {self.name}"
        return f"database {self.name} on {self.settings.get('HOST') or 'localhost'}:{self.settings.get('PORT') or 5432}"

    def libpq_env(self, *, dbname: str | None = None) -> dict[str, str]:
        """The PG* variables that make pg_dump, pg_restore or psql reach this database (password included)."""
        s = self.settings
        env = {"PGDATABASE": dbname or self.name, "PGHOST": str(s.get("HOST") or "localhost"),
               "PGPORT": str(s.get("PORT") or 5432), "PGAPPNAME": "winback-backup"}
        if s.get("USER"):
            env["PGUSER"] = str(s["USER"])
        if s.get("PASSWORD"):
            env["PGPASSWORD"] = str(s["PASSWORD"])
        for option, variable in LIBPQ_OPTIONS.items():
            if option in (s.get("OPTIONS") or {}):
                env[variable] = str(s["OPTIONS"][option])
        return env

    def connect(self, *, dbname: str | None = None) -> psycopg.Connection:
        env = self.libpq_env(dbname=dbname)
        return psycopg.connect(dbname=env["PGDATABASE"], host=env["PGHOST"], port=env["PGPORT"], user=env.get("PGUSER"),
                               password=env.get("PGPASSWORD"), autocommit=True)


def _check_supported(db: Database) -> None:
    if not (db.is_postgresql or db.is_sqlite):
        raise BackupError(f"Backups cover PostgreSQL and SQLite; {db.settings['ENGINE']} is neither.")


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} is not installed (Debian: apt-get install postgresql-client; it must be at least"
                          " the server's major version).")
    return path


def _run(argv: list[str], *, env: dict[str, str], what: str) -> None:
    proc = subprocess.run(argv, env={**os.environ, **env}, capture_output=True, text=True)
    if proc.returncode:
        raise BackupError(f"{what} failed (exit status {proc.returncode}):\n{(proc.stderr or proc.stdout).strip()}")


def _sqlite_copy(source: Path, target: Path) -> None:
    """Copy a SQLite database page by page through its online backup API (a consistent snapshot)."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def backup_default_path(*, db: Database, backup_dir: Path, now: dt.datetime | None = None) -> Path:
    stamp = (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    stem = Path(db.name).stem if db.is_sqlite else db.name
    return backup_dir / f"{stem}-{stamp}.{'sqlite3' if db.is_sqlite else 'dump'}"


def backup_create(*, db: Database, path: Path) -> Path:
    """Write a backup of ``db`` to ``path`` (pg_dump -Fc, or SQLite's online backup); return the path.

    The dump goes to a temporary name first, so a failed or interrupted one never looks like a backup."""
    _check_supported(db)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        if db.is_postgresql:
            _run([_tool("pg_dump"), "--format=custom", "--no-password", f"--file={partial}"], env=db.libpq_env(),
                 what=f"pg_dump of {db.label}")
        else:
            if not Path(db.name).is_file():
                raise BackupError(f"There is no {db.label} to back up.")
            _sqlite_copy(Path(db.name), partial)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path


@dataclass(frozen=True)
class RestoreResult:
    created: bool  # the database did not exist and was created
    replaced: int  # tables there were before (only with force)
    tables: int  # tables there are now
    check: str  # what `manage.py migrate --check` said


def _user_tables_postgresql(db: Database) -> int | None:
    """The number of tables (and views, sequences) in the database, or None when it does not exist."""
    with db.connect(dbname="postgres") as admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db.name]).fetchone() is None:
            return None
    with db.connect() as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN"
            " ('r', 'p', 'v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
            " AND n.nspname NOT LIKE 'pg_toast%%'").fetchone()[0]


def _user_tables_sqlite(db: Database) -> int | None:
    if not Path(db.name).exists():
        return None
    conn = sqlite3.connect(f"file:{db.name}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM sqlite_master WHERE type IN ('table', 'view')"
                            " AND name NOT LIKE 'sqlite_%'").fetchone()[0]
    finally:
        conn.close()


def user_tables(db: Database) -> int | None:
    """How many tables the database has (0: empty), or None when it does not exist."""
    return _user_tables_postgresql(db) if db.is_postgresql else _user_tables_sqlite(db)


def restore(*, path: Path, db: Database, url: str | None, force: bool = False) -> RestoreResult:
    """Restore the backup at ``path`` into ``db`` (created when missing), then check its migrations.

    A database that already has tables is refused unless ``force``: restoring over it would mix two
    databases' rows. ``url`` is the database's URL for `manage.py migrate --check` (None: the environment's
    DATABASE_URL already names it)."""
    _check_supported(db)
    if not path.is_file():
        raise BackupError(f"No backup file {path}.")
    tables = user_tables(db)
    if tables and not force:
        raise BackupError(
            f"Refusing to restore into {db.label}: it is not empty ({tables} tables). Restore into a new database"
            " (RESTORE_DATABASE_URL=... names one; it is created when missing), or pass FORCE=1 to replace its"
            " contents.")
    if db.is_postgresql:
        if tables is None:
            with db.connect(dbname="postgres") as admin:
                admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(db.name)))
        # One transaction: a restore that fails half-way leaves the database as it was.
        argv = [_tool("pg_restore"), "--no-password", "--no-owner", "--no-privileges", "--exit-on-error",
                "--single-transaction", f"--dbname={db.name}", str(path)]
        if tables:
            argv[1:1] = ["--clean", "--if-exists"]
        _run(argv, env=db.libpq_env(), what=f"pg_restore into {db.label}")
    else:
        Path(db.name).parent.mkdir(parents=True, exist_ok=True)
        _sqlite_copy(path, Path(db.name))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if url is not None:
        env["DATABASE_URL"] = url
    proc = subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "--check"], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if proc.returncode:
        raise BackupError(f"Restored into {db.label}, but `manage.py migrate --check` says it is not usable as is"
                          f" (exit status {proc.returncode}):\n{(proc.stdout + proc.stderr).strip()}")
    said = (proc.stdout + proc.stderr).strip().splitlines()
    return RestoreResult(created=tables is None, replaced=tables or 0, tables=user_tables(db) or 0,
                         check=said[-1] if said else "no unapplied migrations")


def size_text(size: int) -> str:
    return f"{size / 1024 / 1024:,.1f} MiB ({size:,} bytes)"
