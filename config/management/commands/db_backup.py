import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from config.backup import BackupError, Database, backup_create, backup_default_path, size_text


class Command(BaseCommand):
    help = ("Back up the DATABASE_URL database: pg_dump in custom format (restore it with db_restore), or SQLite's"
            " online backup. Default file: VAR_DIR/backups/<db>-<UTC time>.dump (BACKUP_FILE or --file to choose).")

    def add_arguments(self, parser):
        parser.add_argument("--file", default=os.environ.get("BACKUP_FILE") or None,
                            help="where to write the backup (default: $BACKUP_FILE, else VAR_DIR/backups/...)")

    def handle(self, *, file: str | None, **options):
        db = Database(dict(connection.settings_dict))
        path = Path(file) if file else backup_default_path(db=db, backup_dir=Path(settings.VAR_DIR) / "backups")
        try:
            backup_create(db=db, path=path)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Backed up {db.label} to {path}: {size_text(path.stat().st_size)}.")
