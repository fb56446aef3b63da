"""Use cases: the only layer that decides. No aiohttp objects, no SQL.

:class:`Services` is the container the composition root (semafore.app) builds once per process
and hands to the web layer; each feature adds its service here.
"""

from __future__ import annotations

from dataclasses import dataclass

from semafore.config import Settings
from semafore.services.clock import Clock, ManualClock, SystemClock
from semafore.services.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    LimitReached,
    NotFound,
    RateLimited,
    ServiceError,
    TooLarge,
    Unauthenticated,
    Unavailable,
)
from semafore.services.health import HealthService
from semafore.storage import BlobStore, Database


@dataclass(slots=True)
class Services:
    settings: Settings
    clock: Clock
    database: Database
    blobs: BlobStore
    health: HealthService


__all__ = [
    "Clock",
    "Conflict",
    "Forbidden",
    "HealthService",
    "InvalidInput",
    "LimitReached",
    "ManualClock",
    "NotFound",
    "RateLimited",
    "ServiceError",
    "Services",
    "SystemClock",
    "TooLarge",
    "Unauthenticated",
    "Unavailable",
]
