"""Settings: one TOML file read into frozen dataclasses.

Every section is a frozen dataclass below; every field is documented in docs/configuration.md
(a test checks both directions). Loading is strict: an unknown section or key, a wrong type or
a value out of range is a :class:`ConfigError` naming the key, e.g. ``server.port``.

Relative paths: ``storage.data_dir`` is resolved against the directory of the config file;
the other paths are resolved against ``storage.data_dir``.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from semafore.errors import SemaforeError

DEFAULT_CONFIG_PATH = Path("/etc/semafore/semafore.toml")
CONFIG_ENV_VAR = "SEMAFORE_CONFIG"


class ConfigError(SemaforeError):
    """The configuration file is missing, unreadable or invalid."""

    code = "config_invalid"


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8443
    tls_certificate: Path = Path("tls/server.crt")
    tls_private_key: Path = Path("tls/server.key")
    tls_ca_certificate: Path = Path("tls/ca.crt")
    public_url: str = ""
    max_request_bytes: int = 1_048_576
    body_idle_timeout_seconds: float = 30.0
    shutdown_timeout_seconds: float = 10.0

    def _check(self) -> None:
        _in_range("server.port", self.port, 1, 65535)
        _in_range("server.max_request_bytes", self.max_request_bytes, 1024, 1 << 34)
        _in_range("server.body_idle_timeout_seconds", self.body_idle_timeout_seconds, 1, 3600)
        _in_range("server.shutdown_timeout_seconds", self.shutdown_timeout_seconds, 0, 3600)
        if self.public_url and not self.public_url.startswith("https://"):
            raise ConfigError("server.public_url: must start with https://")


@dataclass(frozen=True, slots=True)
class StorageSettings:
    data_dir: Path = Path("/var/lib/semafore")
    busy_timeout_ms: int = 5000
    reader_connections: int = 4
    max_batch_units: int = 1000

    def _check(self) -> None:
        _in_range("storage.busy_timeout_ms", self.busy_timeout_ms, 0, 600_000)
        _in_range("storage.reader_connections", self.reader_connections, 1, 64)
        _in_range("storage.max_batch_units", self.max_batch_units, 1, 100_000)

    @property
    def database_path(self) -> Path:
        return self.data_dir / "semafore.db"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"


@dataclass(frozen=True, slots=True)
class LoggingSettings:
    level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = True


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    token_file: Path | None = None


@dataclass(frozen=True, slots=True)
class RelaySettings:
    envelope_max_bytes: int = 98_304
    send_max_envelopes: int = 1000
    send_max_bytes: int = 4_194_304
    queue_max_messages: int = 10_000
    queue_max_bytes: int = 104_857_600
    message_ttl_days: int = 30
    idempotency_hours: int = 24
    expiry_interval_seconds: float = 300.0
    fetch_max_envelopes: int = 500
    frame_max_envelopes: int = 100
    frame_max_bytes: int = 262_144
    socket_outbox_envelopes: int = 1000
    socket_max_unacked: int = 2000
    heartbeat_seconds: float = 30.0
    auth_timeout_seconds: float = 10.0
    bundle_fetches_per_minute: int = 6
    opk_max_per_upload: int = 100
    opk_max_stored: int = 500
    opk_refill_below: int = 20
    spk_retention_days: int = 30

    def _check(self) -> None:
        _in_range("relay.envelope_max_bytes", self.envelope_max_bytes, 256, 16_777_216)
        _in_range("relay.send_max_envelopes", self.send_max_envelopes, 1, 10_000)
        _in_range("relay.send_max_bytes", self.send_max_bytes, 1024, 268_435_456)
        _in_range("relay.queue_max_messages", self.queue_max_messages, 1, 10_000_000)
        _in_range("relay.queue_max_bytes", self.queue_max_bytes, 1024, 1 << 40)
        _in_range("relay.message_ttl_days", self.message_ttl_days, 1, 3650)
        _in_range("relay.idempotency_hours", self.idempotency_hours, 1, 24 * 365)
        _in_range("relay.expiry_interval_seconds", self.expiry_interval_seconds, 0.01, 86_400)
        _in_range("relay.fetch_max_envelopes", self.fetch_max_envelopes, 1, 10_000)
        _in_range("relay.frame_max_envelopes", self.frame_max_envelopes, 1, 10_000)
        _in_range("relay.frame_max_bytes", self.frame_max_bytes, 1024, 67_108_864)
        _in_range("relay.socket_outbox_envelopes", self.socket_outbox_envelopes, 1, 1_000_000)
        _in_range("relay.socket_max_unacked", self.socket_max_unacked, 1, 1_000_000)
        _in_range("relay.heartbeat_seconds", self.heartbeat_seconds, 1, 3600)
        _in_range("relay.auth_timeout_seconds", self.auth_timeout_seconds, 0.1, 600)
        _in_range("relay.bundle_fetches_per_minute", self.bundle_fetches_per_minute, 1, 1_000_000)
        _in_range("relay.opk_max_per_upload", self.opk_max_per_upload, 1, 1000)
        _in_range("relay.opk_max_stored", self.opk_max_stored, 1, 100_000)
        _in_range("relay.opk_refill_below", self.opk_refill_below, 0, 100_000)
        _in_range("relay.spk_retention_days", self.spk_retention_days, 1, 3650)
        if self.envelope_max_bytes > self.send_max_bytes:
            raise ConfigError("relay.envelope_max_bytes: must not exceed relay.send_max_bytes")


@dataclass(frozen=True, slots=True)
class PushSettings:
    enabled: bool = True
    allow_http: bool = False
    allowed_hosts: tuple[str, ...] = ()
    ca_file: Path | None = None
    coalesce_seconds: float = 0.5
    min_interval_seconds: float = 10.0
    timeout_seconds: float = 10.0
    max_attempts: int = 6
    backoff_initial_seconds: float = 2.0
    backoff_max_seconds: float = 300.0

    def _check(self) -> None:
        _in_range("push.coalesce_seconds", self.coalesce_seconds, 0, 3600)
        _in_range("push.min_interval_seconds", self.min_interval_seconds, 0, 86_400)
        _in_range("push.timeout_seconds", self.timeout_seconds, 0.1, 300)
        _in_range("push.max_attempts", self.max_attempts, 1, 100)
        _in_range("push.backoff_initial_seconds", self.backoff_initial_seconds, 0.01, 3600)
        _in_range("push.backoff_max_seconds", self.backoff_max_seconds, 0.01, 86_400)
        for host in self.allowed_hosts:
            if not host or "/" in host or ":" in host:
                raise ConfigError("push.allowed_hosts: entries are bare host names")


@dataclass(frozen=True, slots=True)
class OtpSettings:
    provider: Literal["console", "file", "http", "smtp"] = "console"
    code_ttl_seconds: int = 600
    max_failed_tries: int = 5
    sends_per_number_15min: int = 3
    sends_per_number_day: int = 10
    sends_per_address_15min: int = 20
    sends_per_address_day: int = 100
    message: str = "Your SemaFore code is {{ code }}. It expires in {{ minutes }} minutes."
    file_spool_dir: Path = Path("otp-spool")
    http_url: str = ""
    http_method: Literal["GET", "POST", "PUT"] = "POST"
    http_headers: dict[str, str] = field(default_factory=dict)
    http_body: str = ""
    http_ca_file: Path | None = None
    http_timeout_seconds: float = 10.0
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_ca_file: Path | None = None
    smtp_username: str = ""
    smtp_password_file: Path | None = None
    smtp_from: str = ""
    smtp_to: str = ""
    smtp_timeout_seconds: float = 10.0

    def _check(self) -> None:
        _in_range("otp.code_ttl_seconds", self.code_ttl_seconds, 60, 3600)
        _in_range("otp.max_failed_tries", self.max_failed_tries, 1, 20)
        _in_range("otp.sends_per_number_15min", self.sends_per_number_15min, 1, 1000)
        _in_range("otp.sends_per_number_day", self.sends_per_number_day, 1, 10_000)
        _in_range("otp.sends_per_address_15min", self.sends_per_address_15min, 1, 1_000_000)
        _in_range("otp.sends_per_address_day", self.sends_per_address_day, 1, 1_000_000)
        _in_range("otp.http_timeout_seconds", self.http_timeout_seconds, 0.1, 300)
        _in_range("otp.smtp_port", self.smtp_port, 1, 65535)
        _in_range("otp.smtp_timeout_seconds", self.smtp_timeout_seconds, 0.1, 300)
        if "{{" not in self.message or "code" not in self.message:
            raise ConfigError("otp.message: must contain {{ code }}")
        if self.provider == "http" and not self.http_url.startswith("https://"):
            raise ConfigError("otp.http_url: an https:// URL is required for the http provider")
        if self.provider == "smtp" and not (self.smtp_host and self.smtp_from and self.smtp_to):
            raise ConfigError(
                "otp.smtp_host, otp.smtp_from and otp.smtp_to: required for the smtp provider"
            )


@dataclass(frozen=True, slots=True)
class AuthSettings:
    issuer: str = "semafore"
    access_token_ttl_seconds: int = 900
    refresh_token_ttl_days: int = 30
    jwt_key_overlap_seconds: int = 3600
    devices_per_member: int = 6
    enrolment_ticket_ttl_seconds: int = 900
    pending_enrolment_ttl_days: int = 14

    def _check(self) -> None:
        if not self.issuer:
            raise ConfigError("auth.issuer: must not be empty")
        _in_range("auth.access_token_ttl_seconds", self.access_token_ttl_seconds, 30, 900)
        _in_range("auth.refresh_token_ttl_days", self.refresh_token_ttl_days, 1, 365)
        _in_range(
            "auth.jwt_key_overlap_seconds",
            self.jwt_key_overlap_seconds,
            self.access_token_ttl_seconds,
            30 * 86_400,
        )
        _in_range("auth.devices_per_member", self.devices_per_member, 1, 100)
        _in_range(
            "auth.enrolment_ticket_ttl_seconds", self.enrolment_ticket_ttl_seconds, 60, 86_400
        )
        _in_range("auth.pending_enrolment_ttl_days", self.pending_enrolment_ttl_days, 1, 365)


@dataclass(frozen=True, slots=True)
class OrgsSettings:
    self_service_signup: bool = False
    free_plan_member_limit: int = 5

    def _check(self) -> None:
        _in_range("orgs.free_plan_member_limit", self.free_plan_member_limit, 1, 10_000_000)


@dataclass(frozen=True, slots=True)
class AdminSettings:
    session_idle_seconds: int = 900
    session_absolute_seconds: int = 43_200
    recent_sign_in_seconds: int = 900
    sign_in_ticket_ttl_seconds: int = 600
    second_factor_max_tries: int = 5
    failed_sign_ins_per_account_15min: int = 10
    failed_sign_ins_per_address_15min: int = 50
    api_token_default_days: int = 90
    api_token_max_days: int = 365
    totp_issuer: str = "SemaFore"

    def _check(self) -> None:
        _in_range("admin.session_idle_seconds", self.session_idle_seconds, 60, 86_400)
        _in_range(
            "admin.session_absolute_seconds",
            self.session_absolute_seconds,
            self.session_idle_seconds,
            7 * 86_400,
        )
        _in_range("admin.recent_sign_in_seconds", self.recent_sign_in_seconds, 60, 86_400)
        _in_range("admin.sign_in_ticket_ttl_seconds", self.sign_in_ticket_ttl_seconds, 60, 3600)
        _in_range("admin.second_factor_max_tries", self.second_factor_max_tries, 1, 100)
        _in_range(
            "admin.failed_sign_ins_per_account_15min",
            self.failed_sign_ins_per_account_15min, 1, 10_000,
        )
        _in_range(
            "admin.failed_sign_ins_per_address_15min",
            self.failed_sign_ins_per_address_15min, 1, 1_000_000,
        )
        _in_range("admin.api_token_max_days", self.api_token_max_days, 1, 3650)
        _in_range(
            "admin.api_token_default_days", self.api_token_default_days, 1,
            self.api_token_max_days,
        )
        if not self.totp_issuer or ":" in self.totp_issuer:
            raise ConfigError("admin.totp_issuer: must be non-empty and contain no colon")


@dataclass(frozen=True, slots=True)
class AuditSettings:
    checkpoint_interval_seconds: float = 3600.0

    def _check(self) -> None:
        _in_range(
            "audit.checkpoint_interval_seconds", self.checkpoint_interval_seconds, 1, 7 * 86_400
        )


@dataclass(frozen=True, slots=True)
class FilesSettings:
    max_upload_bytes: int = 104_857_600
    org_quota_bytes: int = 10_737_418_240
    retention_days: int = 30
    abandoned_upload_seconds: int = 86_400
    upload_idle_timeout_seconds: float = 60.0
    max_open_uploads_per_device: int = 16
    sweep_interval_seconds: float = 300.0

    def _check(self) -> None:
        _in_range("files.max_upload_bytes", self.max_upload_bytes, 1, 1 << 42)
        _in_range("files.org_quota_bytes", self.org_quota_bytes, 1, 1 << 50)
        _in_range("files.retention_days", self.retention_days, 1, 3650)
        _in_range("files.abandoned_upload_seconds", self.abandoned_upload_seconds, 60, 30 * 86_400)
        _in_range("files.upload_idle_timeout_seconds", self.upload_idle_timeout_seconds, 0.1, 3600)
        _in_range("files.max_open_uploads_per_device", self.max_open_uploads_per_device, 1, 1000)
        _in_range("files.sweep_interval_seconds", self.sweep_interval_seconds, 0.01, 86_400)
        if self.max_upload_bytes > self.org_quota_bytes:
            raise ConfigError("files.max_upload_bytes: must not exceed files.org_quota_bytes")


@dataclass(frozen=True, slots=True)
class Settings:
    """The whole configuration: build it with :func:`load_settings` / :func:`settings_from_dict`."""

    server: ServerSettings = field(default_factory=ServerSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    otp: OtpSettings = field(default_factory=OtpSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    orgs: OrgsSettings = field(default_factory=OrgsSettings)
    admin: AdminSettings = field(default_factory=AdminSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    relay: RelaySettings = field(default_factory=RelaySettings)
    push: PushSettings = field(default_factory=PushSettings)
    files: FilesSettings = field(default_factory=FilesSettings)
    source: Path | None = None

    def resolve(self, path: Path) -> Path:
        """A path from the config, made absolute against the data directory."""
        return path if path.is_absolute() else self.storage.data_dir / path


SECTIONS: dict[str, type] = {
    "server": ServerSettings,
    "storage": StorageSettings,
    "logging": LoggingSettings,
    "otp": OtpSettings,
    "auth": AuthSettings,
    "orgs": OrgsSettings,
    "admin": AdminSettings,
    "audit": AuditSettings,
    "metrics": MetricsSettings,
    "relay": RelaySettings,
    "push": PushSettings,
    "files": FilesSettings,
}


def config_path_from_env(explicit: str | os.PathLike[str] | None) -> Path:
    """The config path: the explicit one, else $SEMAFORE_CONFIG, else the production default."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(CONFIG_ENV_VAR)
    return Path(env) if env else DEFAULT_CONFIG_PATH


def load_settings(path: str | os.PathLike[str]) -> Settings:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration file ({exc.strerror})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    return settings_from_dict(data, base_dir=path.resolve().parent, source=path)


def settings_from_dict(
    data: dict[str, Any], *, base_dir: Path | None = None, source: Path | None = None
) -> Settings:
    sections: dict[str, Any] = {}
    for name, value in data.items():
        cls = SECTIONS.get(name)
        if cls is None:
            raise ConfigError(f"{name}: unknown section (known: {', '.join(SECTIONS)})")
        if not isinstance(value, dict):
            raise ConfigError(f"{name}: must be a table ([{name}])")
        sections[name] = _build_section(name, cls, value)
    settings = Settings(**sections, source=source)
    storage = settings.storage
    if not storage.data_dir.is_absolute():
        data_dir = (base_dir or Path.cwd()) / storage.data_dir
        settings = dataclasses.replace(
            settings, storage=dataclasses.replace(storage, data_dir=data_dir.resolve())
        )
    return settings


def _build_section(section: str, cls: type, values: dict[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{section}.{key}: unknown setting")
        kwargs[key] = _coerce(f"{section}.{key}", hints[key], value)
    obj = cls(**kwargs)
    check = getattr(obj, "_check", None)
    if check is not None:
        check()
    return obj


def _coerce(key: str, hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise ConfigError(f"{key}: must be one of {', '.join(map(repr, allowed))}")
        return value
    if origin in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _coerce(key, args[0], value)
    if origin is tuple:
        (item,) = typing.get_args(hint)[:1]
        if not isinstance(value, list):
            raise ConfigError(f"{key}: must be a list")
        return tuple(_coerce(f"{key}[{i}]", item, v) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise ConfigError(f"{key}: must be a table of strings")
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: must be true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: must be an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: must be a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: must be a string")
        return value
    if hint is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{key}: must be a non-empty path string")
        return Path(value)
    raise ConfigError(f"{key}: unsupported setting type")  # pragma: no cover - programming error


def _in_range(key: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ConfigError(f"{key}: must be between {low} and {high}, got {value}")


def documented_keys() -> list[str]:
    """Every ``section.key`` the settings accept (docs/configuration.md must list each)."""
    return [f"{name}.{f.name}" for name, cls in SECTIONS.items() for f in dataclasses.fields(cls)]
