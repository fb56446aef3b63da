"""Errors raised by the storage layer."""

from __future__ import annotations

from semafore.errors import SemaforeError


class StorageError(SemaforeError):
    """The database or the blob store could not do what was asked.

    ``storage_unavailable``: the disk is full or failing, or the database is closed (retry later);
    ``storage_error``: an unexpected database error (a bug); ``schema_too_new``: the database was
    written by a newer SemaFore; ``blob_not_found`` / ``blob_id_invalid``: blob store lookups.
    """

    code = "storage_error"
