"""Fixtures for storage tests: real SQLite files under tmp_path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from semafore.storage import Database

from .notes import create_notes


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "semafore.db"


@pytest.fixture
async def db(db_path: Path) -> AsyncIterator[Database]:
    """An open database with a ``notes`` table for tests to write to."""
    database = Database(db_path)
    await database.open()
    await database.write("create notes", create_notes)
    yield database
    await database.close()
