"""Settings from JOBLEDGER_* variables: safe defaults, clear errors, the JWT secret file."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from api.settings import SECRET_FILE_NAME, Settings, SettingsError, load_or_create_secret
from stores import StoreURLError


def test_defaults_are_safe(tmp_path: Path) -> None:
    settings = Settings.from_env({"JOBLEDGER_DATA_DIR": str(tmp_path)})

    assert settings.database_url == "sqlite:///var/jobledger.db"
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.token_ttl_seconds == 3600 and settings.max_page_size == 100
    assert settings.public_progress is True
    assert len(settings.jwt_secret) >= 32


def test_the_secret_is_generated_once_with_mode_0600(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"

    with ThreadPoolExecutor(8) as pool:
        secrets = set(pool.map(lambda _: load_or_create_secret(data_dir), range(8)))

    assert len(secrets) == 1
    path = data_dir / SECRET_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in data_dir.iterdir()) == [SECRET_FILE_NAME]
    assert Settings.from_env({"JOBLEDGER_DATA_DIR": str(data_dir)}).jwt_secret == secrets.pop()


def test_a_secret_file_others_can_read_is_refused(tmp_path: Path) -> None:
    load_or_create_secret(tmp_path)
    (tmp_path / SECRET_FILE_NAME).chmod(0o644)

    with pytest.raises(SettingsError, match="chmod 600"):
        load_or_create_secret(tmp_path)


def test_a_secret_from_the_environment_wins(tmp_path: Path) -> None:
    secret = "s" * 40
    env = {"JOBLEDGER_JWT_SECRET": secret, "JOBLEDGER_DATA_DIR": str(tmp_path / "unused")}

    assert Settings.from_env(env).jwt_secret == secret.encode()
    assert not (tmp_path / "unused").exists()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("JOBLEDGER_JWT_SECRET", "too short", "at least 32 bytes"),
        ("JOBLEDGER_PORT", "eighty", "JOBLEDGER_PORT must be an integer"),
        ("JOBLEDGER_PORT", "70000", "JOBLEDGER_PORT must be between 1 and 65535"),
        ("JOBLEDGER_TOKEN_TTL", "5", "JOBLEDGER_TOKEN_TTL must be between"),
        ("JOBLEDGER_MAX_PAGE_SIZE", "500", "JOBLEDGER_MAX_PAGE_SIZE must be between 1 and 100"),
        ("JOBLEDGER_PUBLIC_PROGRESS", "maybe", "JOBLEDGER_PUBLIC_PROGRESS must be true or false"),
    ],
)
def test_malformed_settings_say_what_is_wrong(
    tmp_path: Path, name: str, value: str, message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({"JOBLEDGER_DATA_DIR": str(tmp_path), name: value})


def test_a_malformed_database_url_is_refused(tmp_path: Path) -> None:
    env = {"JOBLEDGER_DATA_DIR": str(tmp_path), "JOBLEDGER_DATABASE_URL": "mysql://db/x"}

    with pytest.raises(StoreURLError, match="Supported forms"):
        Settings.from_env(env)


def test_progress_can_require_a_token(tmp_path: Path) -> None:
    env = {"JOBLEDGER_DATA_DIR": str(tmp_path), "JOBLEDGER_PUBLIC_PROGRESS": "false"}

    assert Settings.from_env(env).public_progress is False
