"""The folders the settings name under VAR_DIR, and their creation (when the apps are ready, never at import)."""

from pathlib import Path
from typing import Any


def filesystem_broker_options(folder: Path) -> dict[str, Any]:
    """Celery's filesystem transport (no broker server) in ``folder``."""
    return {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
        "control_folder": str(folder / "control"),
        "polling_interval": 0.2,  # seconds a worker waits before looking for new messages again
        "store_processed": False,
    }


def var_folders_ensure(settings: Any) -> None:
    """VAR_DIR (the SQLite file lives there), the static root and the filesystem broker's folders."""
    folders = [Path(settings.VAR_DIR), Path(settings.STATIC_ROOT)]
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    folders += [Path(options[key]) for key in ("data_folder_in", "processed_folder", "control_folder") if key in options]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
