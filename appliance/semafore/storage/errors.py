"""Errors raised by the storage layer."""

from __future__ import annotations

from semafore.errors import SemaforeError


class StorageError(SemaforeError):
    """The database or the blob store could not do what was asked.

    Codes:

    - ``storage_unavailable``: the disk is full or failing, the database is closed or its writer
      stopped; nothing was written (retry later);
    - ``storage_error``: an unexpected database error (a bug);
    - ``storage_not_found``: there is no database file where one must already exist;
    - ``sqlite_too_old``: the SQLite library lacks features the schema needs;
    - ``schema_too_new``: the database was written by a newer SemaFore (nothing was changed);
    - ``schema_too_old``: the database needs migrations and migrating was not allowed;
    - ``migration_invalid``: the shipped migration files are misnamed or misnumbered;
    - ``migration_failed``: a migration failed and was rolled back;
    - ``blob_not_found`` / ``blob_id_invalid``: blob store lookups;
    - ``backup_exists``: the backup target exists and overwriting was not asked for;
    - ``backup_failed``: the backup could not be written.
    """

    code = "storage_error"
