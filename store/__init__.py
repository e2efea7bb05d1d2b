"""SQLite store: the only code that writes SQL."""

from nasapp.store.db import Store, StoreError, default_db_path
from nasapp.store.records import Job, Trial

__all__ = ["Job", "Store", "StoreError", "Trial", "default_db_path"]
