"""Storage: every SQL statement and every byte written under the data directory.

Public surface: :class:`Database` (single writer with group commit, read-only readers,
migrations), :class:`BlobStore` (atomic, jailed blob files), :func:`backup_database` and
:func:`integrity_check` (online backup and checks of database files), :class:`StorageError`.
"""

from semafore.storage.backup import BackupReport, backup_database, integrity_check
from semafore.storage.blobs import BlobStore, StoredBlob, is_blob_id, new_blob_id
from semafore.storage.database import Database, UnitOfWork
from semafore.storage.errors import StorageError
from semafore.storage.migrations import latest_version, schema_version

__all__ = [
    "BackupReport",
    "BlobStore",
    "Database",
    "StorageError",
    "StoredBlob",
    "UnitOfWork",
    "backup_database",
    "integrity_check",
    "is_blob_id",
    "latest_version",
    "new_blob_id",
    "schema_version",
]
