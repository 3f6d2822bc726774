"""Settings of the API and the command line, from ``JOBLEDGER_*`` environment variables.

Every setting has a safe default. The JWT secret comes from ``JOBLEDGER_JWT_SECRET`` (at least
32 bytes) or, when that is unset, from ``<data dir>/jwt-secret``, generated once with mode 0600
(several processes starting at once agree on one secret: it is created by an atomic link).
"""

from __future__ import annotations

import os
import re
import secrets
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from stores import DEFAULT_DATABASE_URL, Store

MIN_SECRET_BYTES = 32
SECRET_FILE_NAME = "jwt-secret"
MAX_PAGE_SIZE = 100
MIN_TOKEN_TTL_SECONDS = 60
MAX_TOKEN_TTL_SECONDS = 30 * 24 * 3600
#: An origin as browsers send it in ``Origin``: scheme, host and port, no path.
_ORIGIN = re.compile(r"https?://[^/\s?#]+")


class SettingsError(ValueError):
    """Raised when a JOBLEDGER_* setting is malformed; the message says which and why."""


@dataclass(frozen=True)
class Settings:
    """What the API needs to run; build with ``Settings.from_env()`` or directly in tests."""

    jwt_secret: bytes
    database_url: str = DEFAULT_DATABASE_URL
    data_dir: Path = Path("var")
    #: Lifetime of the tokens ``/auth/token`` issues, in seconds.
    token_ttl_seconds: int = 3600
    host: str = "127.0.0.1"
    port: int = 8000
    #: Largest ``limit`` a list accepts (at most 100).
    max_page_size: int = MAX_PAGE_SIZE
    #: Whether ``GET /jobs/{id}/progress`` answers without a token.
    public_progress: bool = True
    #: Longest wait, in seconds, for the read model to show a command's change.
    read_your_writes_timeout: float = 5.0
    #: Origins whose browser pages may call the API (CORS); none by default, ``*`` for any.
    cors_origins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.jwt_secret) < MIN_SECRET_BYTES:
            raise SettingsError(
                f"JOBLEDGER_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes long."
            )
        Store.from_url(self.database_url)
        ttl_range = (MIN_TOKEN_TTL_SECONDS, MAX_TOKEN_TTL_SECONDS)
        _check_range("JOBLEDGER_TOKEN_TTL", self.token_ttl_seconds, *ttl_range)
        _check_range("JOBLEDGER_PORT", self.port, 1, 65535)
        _check_range("JOBLEDGER_MAX_PAGE_SIZE", self.max_page_size, 1, MAX_PAGE_SIZE)

    @property
    def store(self) -> Store:
        return Store.from_url(self.database_url)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Reads the settings from the environment (raises SettingsError or StoreURLError)."""
        env = os.environ if environ is None else environ
        data_dir = Path(env.get("JOBLEDGER_DATA_DIR", "var"))
        secret = env.get("JOBLEDGER_JWT_SECRET")
        return cls(
            jwt_secret=secret.encode() if secret else load_or_create_secret(data_dir),
            database_url=database_url(env),
            data_dir=data_dir,
            token_ttl_seconds=_int(env, "JOBLEDGER_TOKEN_TTL", 3600),
            host=env.get("JOBLEDGER_HOST", "127.0.0.1"),
            port=_int(env, "JOBLEDGER_PORT", 8000),
            max_page_size=_int(env, "JOBLEDGER_MAX_PAGE_SIZE", MAX_PAGE_SIZE),
            public_progress=_bool(env, "JOBLEDGER_PUBLIC_PROGRESS", True),
            cors_origins=_origins(env, "JOBLEDGER_CORS_ORIGINS"),
        )


def database_url(environ: Mapping[str, str] | None = None) -> str:
    """The store URL the environment names: ``JOBLEDGER_DATABASE_URL``, else the default."""
    env = os.environ if environ is None else environ
    return env.get("JOBLEDGER_DATABASE_URL", DEFAULT_DATABASE_URL)


def configured_store(environ: Mapping[str, str] | None = None) -> Store:
    """The store the environment names, without reading any other setting (no JWT secret is
    created): what the command line opens. Raises StoreURLError for a malformed URL."""
    return Store.from_url(database_url(environ))


def load_or_create_secret(data_dir: Path) -> bytes:
    """Returns the secret kept in ``data_dir``, creating it (mode 0600) on first use."""
    path = data_dir / SECRET_FILE_NAME
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=data_dir, prefix=".jwt-secret-")
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, secrets.token_urlsafe(48).encode() + b"\n")
            os.fsync(fd)
            os.close(fd)
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(temporary)
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SettingsError(
            f"{path} is readable by others (mode {stat.filemode(mode)}); run chmod 600 {path}."
        )
    secret = path.read_bytes().strip()
    if len(secret) < MIN_SECRET_BYTES:
        raise SettingsError(f"{path} must hold a secret of at least {MIN_SECRET_BYTES} bytes.")
    return secret


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {value!r}.") from None


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name, "").strip().lower()
    if value == "":
        return default
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, got {value!r}.")


def _origins(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    origins = tuple(part.strip() for part in env.get(name, "").split(",") if part.strip())
    for origin in origins:
        if origin != "*" and not _ORIGIN.fullmatch(origin):
            raise SettingsError(
                f"{name} must list origins like https://app.example.com or "
                f"http://localhost:5173 (scheme, host and port; no path), or *; got {origin!r}."
            )
    return origins


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {value!r}.")
