"""SQLite store: the only code that writes SQL."""

from nasapp.store.db import Store, default_db_path

__all__ = ["Store", "default_db_path"]
