"""Creating a form: the rules the command line and the admin page share.

A form's settings are checked here (origins, success URL, `--map`, captcha, honeypot, account);
a problem is a `FormProblem` whose message names the option. The new form's id is returned once
and only its digest is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncConnection

from amogate.forms import ids
from amogate.forms.captcha import PROVIDERS
from amogate.forms.recognize import TARGETS, valid_target
from amogate.storage import accounts
from amogate.storage import forms as form_store

DEFAULT_ACCOUNT = "default"
DEFAULT_HONEYPOT = "_gotcha"
MAX_NAME = 128


class FormProblem(ValueError):
    """A setting that cannot be used; the message names the option."""


@dataclass(frozen=True)
class NewForm:
    name: str
    account: str = DEFAULT_ACCOUNT
    origins: Sequence[str] = ()
    success_url: str | None = None
    pipeline_id: int | None = None
    mode: str | None = None  # "lead" or "unsorted" (the default)
    tags: Sequence[str] = ()
    maps: Sequence[str] = ()  # FIELD=TARGET items
    honeypot: str = DEFAULT_HONEYPOT
    captcha: str | None = None
    captcha_secret: str | None = None
    rate_per_minute: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Created:
    form_id: str  # the secret part of the endpoint; shown once
    handle: str
    name: str
    account: str
    origins: tuple[str, ...]

    @property
    def endpoint(self) -> str:
        return ids.endpoint(self.form_id)


def origin(value: str) -> str:
    cleaned = value.strip().rstrip("/")
    parts = urlsplit(cleaned)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
        raise FormProblem(f"--origin {value!r} must look like https://site.uz")
    return cleaned


def success_url(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FormProblem(f"--success-url {value!r} must be an http(s) address")
    return value.strip()


def parse_map(items: Sequence[str]) -> dict[str, str]:
    """`FIELD=TARGET` items as a dict."""
    mapping: dict[str, str] = {}
    for item in items:
        name, sep, target = item.partition("=")
        name, target = name.strip(), target.strip()
        if not sep or not name or not valid_target(target):
            raise FormProblem(
                f"--map {item!r} must be FIELD=TARGET, TARGET one of {', '.join(TARGETS)} "
                "or field:<field code or name>"
            )
        mapping[name] = target
    return mapping


def _row(spec: NewForm, form_id: str, now: datetime) -> dict[str, Any]:
    name = spec.name.strip()
    if not name or len(name) > MAX_NAME:
        raise FormProblem(f"the form name must be 1 to {MAX_NAME} characters")
    if spec.captcha is not None and spec.captcha not in PROVIDERS:
        raise FormProblem(f"--captcha must be one of {', '.join(PROVIDERS)}")
    if (spec.captcha is None) != (not spec.captcha_secret):
        raise FormProblem("--captcha and --captcha-secret go together")
    honeypot = spec.honeypot.strip()
    if not honeypot or len(honeypot) > 64:
        raise FormProblem("--honeypot must be 1 to 64 characters")
    if spec.mode not in (None, "unsorted", "lead"):
        raise FormProblem("--mode must be unsorted or lead")
    if spec.rate_per_minute is not None and spec.rate_per_minute < 1:
        raise FormProblem("--rate-per-minute must be at least 1")
    return {
        "id": ids.new_handle(),
        "name": name,
        "account_key": spec.account.strip() or DEFAULT_ACCOUNT,
        "id_hash": ids.digest(form_id),
        "id_hint": ids.hint(form_id),
        "origins": sorted({origin(o) for o in spec.origins if o.strip()}),
        "success_url": success_url(spec.success_url),
        "pipeline_id": spec.pipeline_id,
        "mode": spec.mode,
        "tags": [t.strip() for t in spec.tags if t.strip()],
        "field_map": parse_map(spec.maps),
        "honeypot": honeypot,
        "captcha": spec.captcha,
        "captcha_secret": spec.captcha_secret or None,
        "rate_per_minute": spec.rate_per_minute,
        "created_at": now,
    }


async def account_known(conn: AsyncConnection, account: str) -> bool:
    """`default` always exists; another account must have been added (`amogate accounts add`)."""
    if account == DEFAULT_ACCOUNT:
        return True
    row = await accounts.get(conn, account)
    return row is not None and row.added_at is not None


async def create_form(conn: AsyncConnection, spec: NewForm, now: datetime) -> Created:
    """Check `spec` and store the form in the caller's transaction."""
    form_id = ids.new_form_id()
    row = _row(spec, form_id, now)
    if not await account_known(conn, row["account_key"]):
        raise FormProblem(f"no account named {row['account_key']!r}")
    if not await form_store.create(conn, row):
        raise FormProblem(f"a form named {row['name']!r} already exists")
    return Created(form_id, row["id"], row["name"], row["account_key"], tuple(row["origins"]))
