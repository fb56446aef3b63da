"""Use cases: the only layer that decides. No aiohttp objects, no SQL.

:class:`Services` is the container the composition root (semafore.app) builds once per process
and hands to the web layer; each feature adds its service here.
"""

from __future__ import annotations

from dataclasses import dataclass

from semafore.config import Settings
from semafore.services.admin import AdminServices, build_admin_services
from semafore.services.admin_auth import AdminAuthService
from semafore.services.admin_principal import AdminPrincipal
from semafore.services.admin_tokens import ApiTokenService
from semafore.services.audit import AuditService
from semafore.services.clock import Clock, ManualClock, SystemClock
from semafore.services.devices import Device, DeviceService, RevokedSession
from semafore.services.enrolment import EnrolmentService
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
from semafore.services.identity import IdentityServices, build_identity_services
from semafore.services.members import Member, MemberService
from semafore.services.orgs import Org, OrgService
from semafore.services.otp import OtpService
from semafore.services.sessions import DevicePrincipal, SessionService
from semafore.storage import BlobStore, Database


@dataclass(slots=True)
class Services:
    settings: Settings
    clock: Clock
    database: Database
    blobs: BlobStore
    health: HealthService
    # Identity (built together by build_identity_services).
    orgs: OrgService
    members: MemberService
    otp: OtpService
    enrolment: EnrolmentService
    devices: DeviceService
    sessions: SessionService
    # Admin side (built together by build_admin_services).
    audit: AuditService
    admin_auth: AdminAuthService
    api_tokens: ApiTokenService


__all__ = [
    "AdminAuthService",
    "AdminPrincipal",
    "AdminServices",
    "ApiTokenService",
    "AuditService",
    "Clock",
    "Conflict",
    "Device",
    "DevicePrincipal",
    "DeviceService",
    "EnrolmentService",
    "Forbidden",
    "HealthService",
    "IdentityServices",
    "InvalidInput",
    "LimitReached",
    "ManualClock",
    "Member",
    "MemberService",
    "NotFound",
    "Org",
    "OrgService",
    "OtpService",
    "RateLimited",
    "RevokedSession",
    "ServiceError",
    "Services",
    "SessionService",
    "SystemClock",
    "TooLarge",
    "Unauthenticated",
    "Unavailable",
    "build_admin_services",
    "build_identity_services",
]
