"""Settings: the original variable names, safe defaults, clear refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from amogate.settings import Settings


def test_original_env_names_are_read_from_a_dotenv_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("API_KEY", "AMO_DOMAIN", "AMO_CLIENT_ID", "LOG_ERRORS", "PORT"):
        monkeypatch.delenv(name, raising=False)
    env = tmp_path / ".env"
    env.write_text(
        "API_KEY=super_strong_random_api_key_32\n"
        "AMO_DOMAIN=mycompany.amocrm.ru\n"
        "AMO_CLIENT_ID=abc-123\n"
        "AMO_CLIENT_SECRET=xyz\n"
        "AMO_REDIRECT_URI=https://gw.example.uz/oauth/callback\n"
        "TOKEN_STORAGE_PATH=./storage/tokens.json\n"
        "LOG_ERRORS=false\n"
    )
    settings = Settings(_env_file=env)
    assert settings.amo_domain == "mycompany.amocrm.ru"
    assert settings.amo_client_id == "abc-123"
    assert settings.amo_client_secret.get_secret_value() == "xyz"
    assert settings.log_errors is False
    assert settings.port == 9095
    assert settings.amo_api_base == "https://mycompany.amocrm.ru"
    assert settings.cors_allowed_origins == []
    assert settings.lead_sync_timeout == 8
    assert settings.phone_default_region == "UZ"


def test_environment_wins_over_the_dotenv_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = tmp_path / ".env"
    env.write_text("API_KEY=from-the-dotenv-file-123\nPORT=9000\n")
    monkeypatch.setenv("PORT", "9100")
    monkeypatch.setenv("API_KEY", "from-the-environment-123")
    settings = Settings(_env_file=env)
    assert settings.port == 9100
    assert settings.api_key.get_secret_value() == "from-the-environment-123"


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"api_key": ""}, "API_KEY is empty"),
        ({"api_key": "short"}, "API_KEY is too short"),
        ({"amo_domain": "https://x.amocrm.ru/"}, "AMO_DOMAIN"),
        ({"amo_domain": "x amocrm"}, "AMO_DOMAIN"),
        ({"cors_allowed_origins": "*"}, "may not be '*'"),
        ({"cors_allowed_origins": "site.uz"}, "must look like"),
        ({"database_url": "mysql://x"}, "DATABASE_URL"),
        ({"amo_base_url": "ftp://x"}, "AMO_BASE_URL"),
        (
            {"admin_password": "elevenchars"},
            "ADMIN_PASSWORD is too short .11 chars.: use at least 12",
        ),
        ({"forwarded_allow_ips": "*"}, "FORWARDED_ALLOW_IPS may not be"),
        ({"sqlite_synchronous": "off"}, "sqlite_synchronous"),
    ],
)
def test_bad_values_are_refused_with_a_clear_message(
    overrides: dict[str, str], needle: str
) -> None:
    values = {"api_key": "a-long-enough-api-key"} | overrides
    with pytest.raises(ValidationError, match=needle):
        Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_base_url_overrides_the_domain() -> None:
    settings = Settings(
        _env_file=None,
        api_key="a-long-enough-api-key",
        amo_domain="mycompany.kommo.com",
        amo_base_url="http://127.0.0.1:9096/",
    )
    assert settings.amo_api_base == "http://127.0.0.1:9096"


def test_security_defaults_are_the_safe_ones() -> None:
    settings = Settings(_env_file=None, api_key="a-long-enough-api-key")
    assert settings.metrics_public is False
    assert settings.sqlite_synchronous == "full"
    assert settings.data_retention_days == 30
    assert settings.forwarded_allow_ips == "127.0.0.1"
    assert settings.info_refresh_min_interval == 10
    assert settings.admin_enabled is False


def test_an_empty_admin_password_turns_the_page_off_and_twelve_characters_are_enough() -> None:
    off = Settings(_env_file=None, api_key="a-long-enough-api-key", admin_password="")
    on = Settings(_env_file=None, api_key="a-long-enough-api-key", admin_password="x" * 12)
    normal = Settings(_env_file=None, api_key="a-long-enough-api-key", sqlite_synchronous="NORMAL")
    assert (off.admin_enabled, on.admin_enabled) == (False, True)
    assert normal.sqlite_synchronous == "normal"
