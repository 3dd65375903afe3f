"""Configuration, read from the environment once (API.md, "Running")."""

from __future__ import annotations

import math
import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Self
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from collections.abc import Mapping


class ConfigError(Exception):
    """The configuration is invalid."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    body_bytes: int = 1024 * 1024
    field_bytes: int = 256 * 1024  # payload, result, metadata: each, as JSON
    log_message_bytes: int = 8 * 1024
    # Requests per second per owner (`sub`) and process, on average and at once; 0: no limit.
    requests_per_second: float = 1000.0
    request_burst: int = 2000
    # A connection's request headers must arrive within this; a body within its own limit.
    header_seconds: float = 10.0
    body_seconds: float = 30.0
    children: int = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class Streams:
    """The SSE form of the events routes."""

    heartbeat_seconds: float = 15.0  # a comment line after this much silence
    max_per_owner: int = 100  # open streams per user; beyond: 429
    buffer_events: int = 1024  # a subscriber further behind catches up from the store
    send_timeout_seconds: float = 10.0  # a client that takes longer to accept a write is dropped
    poll_seconds: float = 0.5  # the tailer's fallback poll, for writes of other processes
    retry_ms: int = 2000  # the `retry:` hint


@dataclass(frozen=True, slots=True, kw_only=True)
class Postgres:
    """Where the PostgreSQL store is (a `postgresql://` database URL, with PGPASSWORD)."""

    host: str
    port: int
    user: str
    password: str
    dbname: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    database_url: str = "sqlite:///./data/jobtrail.db"
    # PGPASSWORD: the password of a PostgreSQL URL that carries none.
    pg_password: str = ""
    data_dir: Path = Path("data")
    host: str = "127.0.0.1"
    port: int = 8000
    jwt_secret: str | None = None
    jwt_public_key: Path | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    # FULL: a 2xx survives power loss. NORMAL: survives a crash of the process, not of
    # the machine, and commits several times faster.
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    # How long a write waits for the database's write lock (another process's transaction)
    # before its request gets a 503; whole seconds (PostgreSQL's lock_timeout, SQLite's busy
    # timeout).
    lock_timeout_seconds: int = 10
    aggregate_cache_size: int = 4096
    snapshot_interval: int = 100
    max_batch: int = 512
    read_connections: int = 4
    limits: Limits = field(default_factory=Limits)
    demo: bool = False
    # Retries: exponential backoff with jitter, from `retry_base_seconds` up to the cap.
    retry_base_seconds: float = 1.0
    retry_cap_seconds: float = 300.0
    # How often the reaper looks for lapsed leases (it also wakes at the next expiry).
    lease_reaper_interval: float = 1.0
    # Server processes on the one database (`serve --workers N`; README "Several processes").
    workers: int = 1
    # On SIGTERM: how long requests in flight may take to finish before they are cut.
    shutdown_seconds: float = 30.0
    sse: Streams = field(default_factory=Streams)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        env = os.environ if environ is None else environ
        settings = cls()
        limits = settings.limits
        database_url = env.get("JOBTRAIL_DATABASE_URL") or settings.database_url
        data_dir = Path(env.get("JOBTRAIL_DATA_DIR") or _default_data_dir(database_url))
        public_key = env.get("JOBTRAIL_JWT_PUBLIC_KEY")
        synchronous = (env.get("JOBTRAIL_SQLITE_SYNCHRONOUS") or "FULL").upper()
        if synchronous not in ("FULL", "NORMAL"):
            raise ConfigError("JOBTRAIL_SQLITE_SYNCHRONOUS must be FULL or NORMAL.")
        if urlsplit(database_url).scheme not in _SCHEMES:
            raise ConfigError(
                "JOBTRAIL_DATABASE_URL must be sqlite:///path or "
                f"postgresql://user@host:port/dbname, not {redacted(database_url)!r}."
            )
        return replace(
            settings,
            database_url=database_url,
            pg_password=env.get("PGPASSWORD", ""),
            data_dir=data_dir,
            host=env.get("JOBTRAIL_HOST") or settings.host,
            port=_int(env, "JOBTRAIL_PORT", settings.port),
            jwt_secret=env.get("JOBTRAIL_JWT_SECRET") or None,
            jwt_public_key=Path(public_key) if public_key else None,
            jwt_issuer=env.get("JOBTRAIL_JWT_ISSUER") or None,
            jwt_audience=env.get("JOBTRAIL_JWT_AUDIENCE") or None,
            sqlite_synchronous=synchronous,  # type: ignore[arg-type]
            lock_timeout_seconds=_positive(env, "JOBTRAIL_LOCK_TIMEOUT_SECONDS", 10),
            aggregate_cache_size=_int(env, "JOBTRAIL_AGGREGATE_CACHE_SIZE", 4096),
            retry_base_seconds=_float(env, "JOBTRAIL_RETRY_BASE_SECONDS", 1.0),
            retry_cap_seconds=_float(env, "JOBTRAIL_RETRY_CAP_SECONDS", 300.0),
            lease_reaper_interval=_float(env, "JOBTRAIL_LEASE_REAPER_INTERVAL", 1.0),
            demo=env.get("JOBTRAIL_DEMO", "").lower() in ("1", "true", "yes"),
            workers=_positive(env, "JOBTRAIL_WORKERS", 1),
            limits=Limits(
                body_bytes=_positive(env, "JOBTRAIL_LIMIT_BODY_BYTES", limits.body_bytes),
                field_bytes=_positive(env, "JOBTRAIL_LIMIT_FIELD_BYTES", limits.field_bytes),
                log_message_bytes=_positive(
                    env, "JOBTRAIL_LIMIT_LOG_MESSAGE_BYTES", limits.log_message_bytes
                ),
                children=_positive(env, "JOBTRAIL_LIMIT_CHILDREN", limits.children),
                requests_per_second=_float(
                    env, "JOBTRAIL_LIMIT_REQUESTS_PER_SECOND", limits.requests_per_second, zero=True
                ),
                request_burst=_positive(env, "JOBTRAIL_LIMIT_REQUEST_BURST", limits.request_burst),
                header_seconds=_float(env, "JOBTRAIL_LIMIT_HEADER_SECONDS", limits.header_seconds),
                body_seconds=_float(env, "JOBTRAIL_LIMIT_BODY_SECONDS", limits.body_seconds),
            ),
            shutdown_seconds=_float(env, "JOBTRAIL_SHUTDOWN_SECONDS", settings.shutdown_seconds),
            sse=Streams(
                heartbeat_seconds=_float(env, "JOBTRAIL_SSE_HEARTBEAT_SECONDS", 15.0),
                max_per_owner=_int(env, "JOBTRAIL_SSE_MAX_STREAMS_PER_OWNER", 100),
                buffer_events=_int(env, "JOBTRAIL_SSE_BUFFER_EVENTS", 1024),
            ),
        )

    @property
    def sqlite_path(self) -> Path:
        parts = urlsplit(self.database_url)
        if parts.scheme != "sqlite":
            raise ConfigError(f"Not an SQLite database URL: {self.database_url!r}")
        # sqlite:///relative/path and sqlite:////absolute/path, as SQLAlchemy spells them.
        return Path(self.database_url.removeprefix("sqlite:///"))

    @property
    def is_postgres(self) -> bool:
        return urlsplit(self.database_url).scheme in _POSTGRES_SCHEMES

    @property
    def postgres(self) -> Postgres:
        parts = urlsplit(self.database_url)
        if parts.scheme not in _POSTGRES_SCHEMES:
            raise ConfigError(f"Not a PostgreSQL database URL: {redacted(self.database_url)!r}")
        dbname = unquote(parts.path.removeprefix("/"))
        if not parts.hostname or not parts.username or not dbname:
            raise ConfigError(
                "A PostgreSQL URL names the user, the host and the database: "
                f"postgresql://user@host:port/dbname, not {redacted(self.database_url)!r}."
            )
        try:
            port = parts.port or 5432
        except ValueError:
            raise ConfigError(f"Not a port: {redacted(self.database_url)!r}") from None
        password = self.pg_password if parts.password is None else unquote(parts.password)
        return Postgres(
            host=parts.hostname,
            port=port,
            user=unquote(parts.username),
            password=password,
            dbname=dbname,
        )

    def signing_secret(self) -> str:
        """The HS256 secret: configured, or generated once and kept in the data directory."""
        if self.jwt_secret:
            return self.jwt_secret
        path = self.data_dir / "jwt-secret"
        try:
            return path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            pass
        self.data_dir.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(48)
        try:
            # O_EXCL: when two processes start at once, one secret wins and both use it.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text(encoding="utf-8").strip()
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(secret)
        return secret


_POSTGRES_SCHEMES = ("postgresql", "postgres")
_SCHEMES = ("sqlite", *_POSTGRES_SCHEMES)


def redacted(database_url: str) -> str:
    """The URL without its password, for logs and messages."""
    parts = urlsplit(database_url)
    if parts.password is None:
        return database_url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def _default_data_dir(database_url: str) -> Path:
    if database_url.startswith("sqlite:///"):
        return Path(database_url.removeprefix("sqlite:///")).parent
    return Path("data")


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, not {value!r}.") from None


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    number = _int(env, name, default)
    if number < 1:
        raise ConfigError(f"{name} must be a positive integer, not {number}.")
    return number


def _float(env: Mapping[str, str], name: str, default: float, *, zero: bool = False) -> float:
    """A positive number (or 0 where `zero` allows it: "none")."""
    value = env.get(name)
    if not value:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {value!r}.") from None
    if not (number > 0 or (zero and number == 0)) or math.isinf(number):
        raise ConfigError(f"{name} must be positive{' or 0' if zero else ''}, not {value!r}.")
    return number
