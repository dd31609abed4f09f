"""What one amoCRM account needs to be talked to, wherever its settings come from.

The `.env` account is `default` (AMO_DOMAIN, AMO_CLIENT_*, AMO_LONG_LIVED_TOKEN, AMO_BASE_URL,
AMO_RATE_LIMIT). Every other account was added with `amogate accounts add` and keeps its
settings on its `amo_accounts` row; what it leaves out (the integration's credentials, the
budget) falls back to the `.env` values, since one public integration can be installed in
many accounts.

`settings_for` gives the rest of the gateway an account's view of the settings: the same
`Settings` with that account's `AMO_*` values, so the connection, OAuth and token code read
one account's values without knowing there are several.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pydantic import SecretStr

from amogate.settings import Settings

DEFAULT = "default"
NAME_RULE = "[a-z0-9-]{1,40}"
_NAME = re.compile(NAME_RULE)


class InvalidAccountName(ValueError):
    pass


def check_name(name: str) -> str:
    """The name as given when it matches `[a-z0-9-]{1,40}`; otherwise `InvalidAccountName`."""
    if not _NAME.fullmatch(name):
        raise InvalidAccountName(
            f"invalid account name {name[:60]!r}: use 1-40 characters of a-z, 0-9 and -"
        )
    return name


@dataclass(frozen=True)
class AccountConfig:
    name: str
    domain: str
    base_url: str
    client_id: str
    client_secret: str = field(repr=False)
    long_lived_token: str | None = field(default=None, repr=False)
    rate_limit: float = 7.0
    contact_dedup: str | None = None

    @property
    def configured(self) -> bool:
        return bool(self.domain or self.base_url)


def from_settings(settings: Settings) -> AccountConfig:
    """The `default` account, from `.env` and the environment."""
    token = settings.amo_long_lived_token
    return AccountConfig(
        name=DEFAULT,
        domain=settings.amo_domain,
        base_url=settings.amo_base_url,
        client_id=settings.amo_client_id,
        client_secret=settings.amo_client_secret.get_secret_value(),
        long_lived_token=token.get_secret_value() if token is not None else None,
        rate_limit=settings.amo_rate_limit,
    )


def added(
    settings: Settings,
    *,
    name: str,
    domain: str | None,
    base_url: str | None,
    client_id: str | None,
    client_secret: str | None,
    long_lived_token: str | None,
    rate_limit: float | None,
    contact_dedup: str | None,
) -> AccountConfig:
    """An added account; what it leaves out comes from `.env`."""
    return AccountConfig(
        name=name,
        domain=domain or "",
        base_url=base_url or "",
        client_id=client_id or settings.amo_client_id,
        client_secret=client_secret or settings.amo_client_secret.get_secret_value(),
        long_lived_token=long_lived_token or None,
        rate_limit=rate_limit or settings.amo_rate_limit,
        contact_dedup=contact_dedup,
    )


def settings_for(settings: Settings, account: AccountConfig) -> Settings:
    """`settings` as seen by one account (its AMO_* values in place of the .env ones)."""
    if account.name == DEFAULT:
        return settings
    token = SecretStr(account.long_lived_token) if account.long_lived_token else None
    return settings.model_copy(
        update={
            "amo_domain": account.domain,
            "amo_base_url": account.base_url,
            "amo_client_id": account.client_id,
            "amo_client_secret": SecretStr(account.client_secret),
            "amo_long_lived_token": token,
            "amo_rate_limit": account.rate_limit,
        }
    )
