"""Configuration: one pydantic-settings class read from `.env` and the environment.

The original gateway's variable names are kept (API_KEY, AMO_DOMAIN, AMO_CLIENT_ID, ...), so an
existing `.env` works unchanged; every new variable has a safe default. The environment wins over
`.env`; explicit keyword arguments win over both (tests build `Settings(...)` directly).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MIN_API_KEY_LENGTH = 16
MIN_ADMIN_PASSWORD_LENGTH = 12
DEFAULT_DATABASE_URL = "sqlite:///storage/amogate.db"
ENV_FILE_NAME = ".env"
# Names the .env to read when no --env-file is given (and carries --env-file to the processes
# of `amogate serve --processes N`).
ENV_FILE_VARIABLE = "AMOGATE_ENV_FILE"

# An account host such as mycompany.amocrm.ru or mycompany.kommo.com (no scheme, path or port).
_DOMAIN_RE = re.compile(r"^(?=.{4,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


# Which of a lead's values find its existing amoCRM contact (CONTACT_DEDUP).
DEDUP_CHOICES = ("phone,email", "phone", "email", "off")


class Settings(BaseSettings):
    """Everything amogate reads from its environment."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # --- the original gateway's variables -----------------------------------------------------
    api_key: SecretStr = Field(
        default=SecretStr(""), description="Admin API key sent as X-API-KEY (>= 16 chars)."
    )
    amo_domain: str = Field(default="", description="Account host, e.g. mycompany.amocrm.ru.")
    amo_client_id: str = ""
    amo_client_secret: SecretStr = SecretStr("")
    amo_redirect_uri: str = "http://localhost:9095/oauth/callback"
    token_storage_path: Path = Path("storage/tokens.json")
    log_errors: bool = True

    # --- new in amogate ------------------------------------------------------------------------
    host: str = "0.0.0.0"  # noqa: S104 - a gateway is meant to be reached; put nginx in front
    port: int = Field(default=9095, ge=1, le=65535)
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (uvicorn's option): the
    # client address the sign-in limit counts by comes from there. Only the proxy, never "*".
    forwarded_allow_ips: str = "127.0.0.1"
    database_url: str = DEFAULT_DATABASE_URL
    # SQLite's fsync policy: full (a committed lead survives a power loss; the default) or
    # normal (faster; the last commits may be lost on power loss, never on a crash).
    sqlite_synchronous: Literal["full", "normal"] = "full"
    amo_long_lived_token: SecretStr | None = None
    amo_base_url: str = ""
    cors_allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    amo_rate_limit: float = Field(default=7.0, gt=0, le=50)
    lead_sync_timeout: float = Field(default=8.0, ge=0, le=60)
    info_cache_ttl: float = Field(default=300.0, ge=0)
    phone_default_region: str = "UZ"
    # Which of a lead's values find its existing amoCRM contact: phone,email | phone | email | off.
    contact_dedup: str = "phone,email"
    log_format: Literal["json", "console"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    admin_password: SecretStr | None = None
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    error_log_path: Path = Path("storage/error.log")
    token_refresh_days: float = Field(default=7.0, gt=0, le=80)
    delivery_max_age_hours: float = Field(default=72.0, gt=0)
    delivery_retry_base_seconds: float = Field(default=5.0, gt=0)
    delivery_retry_max_seconds: float = Field(default=3600.0, gt=0)
    delivery_lease_seconds: float = Field(default=60.0, ge=5)
    metrics_public: bool = False
    # A delivered lead's personal data (the stored request) is erased after this many days.
    data_retention_days: float = Field(default=30.0, gt=0)
    purge_interval_seconds: float = Field(default=3600.0, gt=0)
    # ?refresh=true on the info endpoints fetches from amoCRM at most once per this many
    # seconds per kind; more often it is answered from the cache.
    info_refresh_min_interval: float = Field(default=10.0, ge=0)
    error_log_max_bytes: int = Field(default=10 * 1024 * 1024, ge=4096)
    ready_max_queue_age: float = Field(default=900.0, gt=0)
    # Public forms: posts per client address per form per minute (`forms create
    # --rate-per-minute` overrides it per form), and the captcha verifier's address (tests).
    form_rate_per_minute: int = Field(default=10, ge=1)
    captcha_verify_url: str = ""
    # The webhook relay (docs/webhooks.md): where amoCRM reaches this gateway (for
    # `amogate webhooks connect`), and how events are sent on to subscribers.
    public_url: str = ""
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhook_concurrency: int = Field(default=4, ge=1, le=100)
    webhook_retry_base_seconds: float = Field(default=5.0, gt=0)
    webhook_retry_max_seconds: float = Field(default=3600.0, gt=0)
    webhook_max_age_hours: float = Field(default=72.0, gt=0)
    webhook_check_interval_seconds: float = Field(default=300.0, gt=0)

    @field_validator("public_url")
    @classmethod
    def _public_url_is_http(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("PUBLIC_URL must start with http:// or https://")
        return value

    @field_validator("api_key")
    @classmethod
    def _api_key_is_strong(cls, value: SecretStr) -> SecretStr:
        length = len(value.get_secret_value().strip())
        if length == 0:
            raise ValueError("API_KEY is empty: set a random key of at least 16 characters")
        if length < MIN_API_KEY_LENGTH:
            raise ValueError(
                f"API_KEY is too short ({length} chars): use at least {MIN_API_KEY_LENGTH}"
            )
        return value

    @field_validator("admin_password")
    @classmethod
    def _admin_password_is_long(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return value  # unset or empty: the admin page is off
        length = len(value.get_secret_value())
        if length < MIN_ADMIN_PASSWORD_LENGTH:
            raise ValueError(
                f"ADMIN_PASSWORD is too short ({length} chars): use at least "
                f"{MIN_ADMIN_PASSWORD_LENGTH}, or leave it empty to turn the admin page off"
            )
        return value

    @field_validator("sqlite_synchronous", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _proxies_are_named(cls, value: str) -> str:
        value = value.strip()
        if "*" in value:
            raise ValueError(
                "FORWARDED_ALLOW_IPS may not be '*': name the proxy's address, e.g. 127.0.0.1"
            )
        return value

    @field_validator("amo_domain")
    @classmethod
    def _domain_is_a_host(cls, value: str) -> str:
        value = value.strip().lower()
        if value and not _DOMAIN_RE.match(value):
            raise ValueError(
                f"AMO_DOMAIN {value!r} is not an account host like mycompany.amocrm.ru "
                "(no https://, no path)"
            )
        return value

    @field_validator("amo_base_url")
    @classmethod
    def _base_url_is_http(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"AMO_BASE_URL {value!r} must be an http(s) URL")
        return value

    @field_validator("cors_allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip().rstrip("/") for item in value.split(",") if item.strip()]
        return value

    @field_validator("cors_allowed_origins")
    @classmethod
    def _origins_are_exact(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin == "*":
                raise ValueError("CORS_ALLOWED_ORIGINS may not be '*': list the sites instead")
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
                raise ValueError(f"CORS origin {origin!r} must look like https://site.uz")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url_known(cls, value: str) -> str:
        scheme = value.split(":", 1)[0].split("+", 1)[0]
        if scheme not in ("sqlite", "postgresql", "postgres"):
            raise ValueError("DATABASE_URL must start with sqlite:/// or postgresql://")
        return value

    @field_validator("contact_dedup")
    @classmethod
    def _dedup_known(cls, value: str) -> str:
        # The same spellings as `contacts.matching.parse_dedup` (any order, case, spaces).
        words = sorted({w.strip().lower() for w in value.split(",")}, reverse=True)
        text = ",".join(words)
        if text not in DEDUP_CHOICES:
            raise ValueError(f"CONTACT_DEDUP must be one of: {', '.join(DEDUP_CHOICES)}")
        return text

    @field_validator("phone_default_region")
    @classmethod
    def _region_upper(cls, value: str) -> str:
        value = value.strip().upper()
        if not re.fullmatch(r"[A-Z]{2}", value):
            raise ValueError("PHONE_DEFAULT_REGION must be a two-letter country code like UZ")
        return value

    # --- derived values (one place for each rule) ------------------------------------------------
    @property
    def amo_api_base(self) -> str:
        """Where amoCRM's API lives: AMO_BASE_URL if set, else https://AMO_DOMAIN."""
        if self.amo_base_url:
            return self.amo_base_url
        return f"https://{self.amo_domain}" if self.amo_domain else ""

    @property
    def amo_configured(self) -> bool:
        return bool(self.amo_api_base)

    @property
    def admin_enabled(self) -> bool:
        return bool(self.admin_password and self.admin_password.get_secret_value())

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@dataclass(frozen=True)
class EnvFile:
    """Where the settings come from: a `.env` file (`path`) plus the environment, or the
    environment alone when the folder amogate runs in has no `.env` and none was named."""

    path: Path | None
    folder: Path

    def describe(self) -> str:
        if self.path is not None:
            return f"settings from {self.path} and the environment (the environment wins)"
        return f"no {ENV_FILE_NAME} in {self.folder}: settings from the environment only"

    def hint(self) -> str:
        """What to tell someone whose configuration was refused."""
        if self.path is not None:
            return f"read {self.path}"
        return (
            f"no {ENV_FILE_NAME} in {self.folder}: run amogate in the folder that holds it, "
            "or pass --env-file PATH"
        )

    def load(self, **overrides: object) -> Settings:
        return Settings(_env_file=self.path, **overrides)  # type: ignore[arg-type]


def find_env_file(explicit: Path | None = None) -> EnvFile:
    """The `.env` to read: `explicit` (the caller checks that it exists), else `./.env` when
    there is one."""
    folder = Path.cwd()
    if explicit is not None:
        return EnvFile(explicit.expanduser().resolve(), folder)
    candidate = folder / ENV_FILE_NAME
    return EnvFile(candidate if candidate.is_file() else None, folder)
