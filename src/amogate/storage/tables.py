"""The schema, as SQLAlchemy Core tables. Alembic migrations under `migrations/` create it.

Times are stored as timezone-aware UTC datetimes. JSON columns hold request payloads and
upstream answers. Every table is usable from several processes at once (see db.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on SQLite (which keeps no zone) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use datetime.now(UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


UTC_DATETIME = UTCDateTime()

# One row per connected amoCRM account ("default" for the single-account gateway). Tokens live
# here; the row is locked while a refresh is in flight so only one process refreshes at a time.
amo_accounts = Table(
    "amo_accounts",
    metadata,
    Column("account_key", String(64), primary_key=True),
    Column("base_domain", String(255), nullable=True),  # account host from the OAuth referer
    Column("amo_account_id", BigInteger, nullable=True),
    Column("token_kind", String(16), nullable=False, default="oauth"),  # oauth | long_lived
    Column("access_token", Text, nullable=True),
    Column("refresh_token", Text, nullable=True),
    Column("access_expires_at", UTC_DATETIME, nullable=True),
    Column("refreshed_at", UTC_DATETIME, nullable=True),
    # connected | needs_reauthorization | not_authorized
    Column("state", String(32), nullable=False, default="not_authorized"),
    Column("state_reason", Text, nullable=True),
    Column("created_at", UTC_DATETIME, nullable=False),
    Column("updated_at", UTC_DATETIME, nullable=False),
    # The last storage/tokens.json pair imported: when, and a hash of its refresh token (never
    # the token), so a stale file copied back over a newer one is not imported again.
    Column("tokens_file_imported_at", UTC_DATETIME, nullable=True),
    Column("tokens_file_fingerprint", String(64), nullable=True),
    # Set by `amogate accounts add` (NULL for `default`, whose settings come from .env): the
    # account's own host, API base override, integration credentials, budget and contact rule.
    Column("added_at", UTC_DATETIME, nullable=True),
    Column("amo_domain", String(255), nullable=True),
    Column("base_url", String(255), nullable=True),
    Column("client_id", String(255), nullable=True),
    Column("client_secret", Text, nullable=True),
    Column("long_lived_token", Text, nullable=True),
    Column("rate_limit", Float, nullable=True),
    Column("contact_dedup", String(32), nullable=True),
)

# The outbound request budget per account, shared by every process: a token bucket row that is
# updated atomically, plus pauses after 429 and a cool-down after 403.
amo_budget = Table(
    "amo_budget",
    metadata,
    Column("account_key", String(64), primary_key=True),
    Column("tokens", Float, nullable=False),
    Column("updated_at", Float, nullable=False),  # unix seconds with fractions
    Column("paused_until", Float, nullable=False, default=0.0),  # after 429
    Column("blocked_until", Float, nullable=False, default=0.0),  # after 403
    Column("consecutive_429", Integer, nullable=False, default=0),
    Column("total_429", Integer, nullable=False, default=0),
    Column("total_403", Integer, nullable=False, default=0),
)

# Single-use OAuth `state` values handed out by /oauth/authorize (and `amogate auth url`).
oauth_states = Table(
    "oauth_states",
    metadata,
    Column("state", String(128), primary_key=True),
    Column("created_at", UTC_DATETIME, nullable=False),
    Column("expires_at", UTC_DATETIME, nullable=False),
    # sha256 hex of the browser cookie the state was handed out with; NULL for a state made by
    # `amogate auth url` (shell access), which the callback accepts without a cookie.
    Column("browser_digest", String(64), nullable=True),
    # The admin confirmed that this connection may replace a different connected account.
    Column("replace_account", Boolean, nullable=False, default=False, server_default=false()),
    # The account this connection is for (`/oauth/authorize?account=NAME`).
    Column("account_key", String(64), nullable=False, default="default", server_default="default"),
)

# A lead accepted by the gateway. The row IS the queue entry: it is written (committed) before
# amoCRM is called and never deleted by delivery.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", String(32), primary_key=True),  # also amoCRM's source_uid
    Column("account_key", String(64), nullable=False, default="default"),
    # queued | sending | retrying | delivered | failed
    Column("status", String(16), nullable=False),
    # what is left to do: form | note | done
    Column("step", String(16), nullable=False, default="form"),
    Column("payload", JSON, nullable=False),  # the validated, normalised request
    Column("received", JSON, nullable=True),  # the request body as the client sent it
    Column("lead_name", String(255), nullable=False, default=""),
    Column("contact_name", String(255), nullable=False, default=""),
    Column("api_key_id", String(32), nullable=True),
    Column("request_id", String(128), nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", UTC_DATETIME, nullable=False),
    Column("updated_at", UTC_DATETIME, nullable=False),
    Column("next_attempt_at", UTC_DATETIME, nullable=False),
    Column("give_up_at", UTC_DATETIME, nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", UTC_DATETIME, nullable=True),
    # set while an attempt's outcome is unknown (sent, then crash or timeout): reconcile first
    Column("outcome_unknown", Boolean, nullable=False, default=False),
    Column("last_error", Text, nullable=True),
    Column("error_details", JSON, nullable=True),
    # What was not taken as sent ({"field", "problem"} items, no values): from the intake and
    # from amoCRM refusing a value. Shown by the deliveries API; the values are in the note.
    Column("warnings", JSON, nullable=True),
    Column("amo_uid", String(128), nullable=True),
    Column("amo_lead_id", BigInteger, nullable=True),
    Column("amo_contact_id", BigInteger, nullable=True),
    # Whether the lead was linked to a contact that already existed (None: not known yet, or
    # delivered before matching existed).
    Column("contact_matched", Boolean, nullable=True),
    Column("amo_note_id", BigInteger, nullable=True),
    Column("delivered_at", UTC_DATETIME, nullable=True),
    # When the personal data (payload, names, upstream details) was erased after the retention
    # period; the row's ids, status and attempt outcomes stay.
    Column("erased_at", UTC_DATETIME, nullable=True),
    Index("ix_deliveries_due", "status", "next_attempt_at"),
    Index("ix_deliveries_created_at", "created_at"),
    Index("ix_deliveries_erasable", "erased_at", "delivered_at"),
    Index("ix_deliveries_account_due", "account_key", "status", "next_attempt_at"),
)

# Every attempt at a delivery step, for the operator and the API.
delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "delivery_id",
        String(32),
        ForeignKey("deliveries.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("step", String(16), nullable=False),  # form | note | reconcile
    Column("started_at", UTC_DATETIME, nullable=False),
    Column("duration_ms", Integer, nullable=False),
    # ok | transient | rate_limited | permanent | auth | blocked | payment | unknown
    Column("outcome", String(16), nullable=False),
    Column("http_status", Integer, nullable=True),
    Column("detail", Text, nullable=True),  # truncated upstream answer, never a token
)

# Idempotency-Key records, per API key, kept at least 24 h.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("api_key_id", String(32), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("body_hash", String(64), nullable=False),
    Column("delivery_id", String(32), nullable=True),
    Column("status_code", Integer, nullable=True),
    Column("response", JSON, nullable=True),
    Column("created_at", UTC_DATETIME, nullable=False),
    Column("expires_at", UTC_DATETIME, nullable=False, index=True),
)

# API keys issued with `amogate keys create` (the admin key comes from API_KEY instead).
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("key_hash", String(64), nullable=False, unique=True),  # sha256 hex of the key
    Column("scopes", JSON, nullable=False),
    Column("origins", JSON, nullable=False),
    Column("rate_per_minute", Integer, nullable=True),
    Column("created_at", UTC_DATETIME, nullable=False),
    Column("last_used_at", UTC_DATETIME, nullable=True),
    Column("revoked_at", UTC_DATETIME, nullable=True),
    # The account every /api/v1 call made with this key acts on.
    Column("account_key", String(64), nullable=False, default="default", server_default="default"),
)

# Fixed-window counters (per API key per minute, admin login attempts, ...), shared by instances.
rate_counters = Table(
    "rate_counters",
    metadata,
    Column("bucket", String(160), primary_key=True),
    Column("window_start", BigInteger, primary_key=True),
    Column("count", Integer, nullable=False),
)

# The admin page's sign-in state, one row (id 1), shared by every instance: the random key that
# signs session cookies, the generation a session must carry (bumped by log-out and by a new
# ADMIN_PASSWORD, which ends every session) and the slow hash of ADMIN_PASSWORD.
admin_state = Table(
    "admin_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("session_secret", String(128), nullable=False),
    Column("session_generation", Integer, nullable=False),
    Column("password_hash", String(255), nullable=True),
    Column("updated_at", UTC_DATETIME, nullable=False),
)

# Contacts this gateway created or linked, per account and normalised phone/email
# (``phone:+998901234567``, ``email:a@b.uz``): amoCRM hides the contact of an unaccepted
# unsorted item from lists and searches, so only this table knows it. A row without
# ``contact_id`` is a claim: ``claimed_by`` is creating the contact right now (until
# ``claimed_until``), and other workers wait for it instead of creating a second one.
contact_links = Table(
    "contact_links",
    metadata,
    Column("account_key", String(64), primary_key=True),
    Column("contact_key", String(320), primary_key=True),
    Column("contact_id", BigInteger, nullable=True),
    Column("claimed_by", String(64), nullable=True),
    Column("claimed_until", Float, nullable=True),  # unix seconds
    Column("updated_at", Float, nullable=False),  # unix seconds
    Index("ix_contact_links_contact", "account_key", "contact_id"),
)

# Public forms (`amogate forms ...`): endpoints that sites post to without a key. The form id in
# the endpoint is stored only as its SHA-256 digest (`id_hash`); `id` is the operator's handle.
forms = Table(
    "forms",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("account_key", String(64), nullable=False, default="default"),
    Column("id_hash", String(64), nullable=False, unique=True),
    Column("id_hint", String(16), nullable=False),  # the endpoint's first characters
    Column("origins", JSON, nullable=False),
    Column("success_url", Text, nullable=True),
    Column("pipeline_id", BigInteger, nullable=True),
    Column("mode", String(16), nullable=True),  # "lead": straight into a stage; else unsorted
    Column("tags", JSON, nullable=False),
    Column("field_map", JSON, nullable=False),  # submitted field -> target
    Column("honeypot", String(64), nullable=False),
    Column("captcha", String(16), nullable=True),  # turnstile | hcaptcha | recaptcha
    Column("captcha_secret", Text, nullable=True),
    Column("rate_per_minute", Integer, nullable=True),
    Column("created_at", UTC_DATETIME, nullable=False),
)

# One row per stored submission of a form: its delivery, Tilda's `tranid` (a repeat of the same
# tranid finds this row instead of making a second lead) and whether it was spam.
form_submissions = Table(
    "form_submissions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("form_id", String(16), ForeignKey("forms.id", ondelete="CASCADE"), nullable=False),
    Column("delivery_id", String(32), nullable=False),
    Column("tranid", String(128), nullable=True),
    Column("outcome", String(16), nullable=False),  # accepted | spam
    Column("created_at", UTC_DATETIME, nullable=False),
    UniqueConstraint("form_id", "tranid", name="uq_form_submissions_tranid"),
    Index("ix_form_submissions_form_created", "form_id", "created_at"),
)

# --- the webhook relay: amoCRM's events (and amogate's own) to subscribers -------------------

# Per account: the secret in amogate's inbound URL (/webhooks/amocrm/<account>/<secret>) and
# what amogate last registered with amoCRM and last read back from amoCRM's webhook list.
relay_accounts = Table(
    "relay_accounts",
    metadata,
    Column("account_key", String(64), primary_key=True),
    Column("inbound_secret", String(64), nullable=False),
    Column("registered_events", JSON, nullable=True),
    Column("registered_at", UTC_DATETIME, nullable=True),
    Column("amo_webhook_id", BigInteger, nullable=True),
    # amoCRM's webhook list showed ours disabled at the last check (and we could not fix it).
    Column("amo_disabled", Boolean, nullable=False, default=False, server_default=false()),
    Column("reenabled_count", Integer, nullable=False, default=0, server_default="0"),
    Column("checked_at", UTC_DATETIME, nullable=True),
    Column("check_error", Text, nullable=True),
    Column("created_at", UTC_DATETIME, nullable=False),
)

# A subscriber: where events of one account go, which events, and its signing key (the whole
# `whsec_<base64>` value: it signs, so it is kept as it is, like the admin session key).
relay_subscribers = Table(
    "relay_subscribers",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("account_key", String(64), nullable=False, default="default", index=True),
    Column("url", Text, nullable=False),
    Column("events", JSON, nullable=False),
    Column("secret", String(128), nullable=False),
    Column("created_at", UTC_DATETIME, nullable=False),
)

# One inbound POST from amoCRM: its body's hash (an identical repeat is stored once per account)
# and the raw body, erased after a week (`body` NULL, `erased_at` set).
relay_posts = Table(
    "relay_posts",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("account_key", String(64), nullable=False),
    Column("body_hash", String(64), nullable=False),
    Column("body", Text, nullable=True),
    Column("event_count", Integer, nullable=False),
    Column("received_at", UTC_DATETIME, nullable=False),
    Column("erased_at", UTC_DATETIME, nullable=True),
    UniqueConstraint("account_key", "body_hash", name="uq_relay_posts_account_body"),
    Index("ix_relay_posts_erasable", "erased_at", "received_at"),
)

# One event, as subscribers receive it: `code` is amoCRM's `{action}_{entity}` (status_lead)
# or amogate's own (gateway.delivery_failed). `id` is the `webhook-id` of every send of it.
relay_events = Table(
    "relay_events",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("account_key", String(64), nullable=False),
    Column("code", String(64), nullable=False),
    Column("entity", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("occurred_at", UTC_DATETIME, nullable=False),
    Column("received_at", UTC_DATETIME, nullable=False),
    Column("data", JSON, nullable=False),
    Column("post_id", String(32), nullable=True),
    Index("ix_relay_events_received_at", "received_at"),
)

# One event to one subscriber: the second kind of delivery, queued and leased like a lead's.
# queued | sending | retrying | delivered | failed
relay_deliveries = Table(
    "relay_deliveries",
    metadata,
    Column("id", String(32), primary_key=True),
    Column(
        "event_id",
        String(32),
        ForeignKey("relay_events.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column(
        "subscriber_id",
        String(32),
        ForeignKey("relay_subscribers.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("account_key", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", UTC_DATETIME, nullable=False),
    Column("updated_at", UTC_DATETIME, nullable=False),
    Column("next_at", UTC_DATETIME, nullable=False),
    Column("give_up_at", UTC_DATETIME, nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", UTC_DATETIME, nullable=True),
    Column("last_status", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("delivered_at", UTC_DATETIME, nullable=True),
    UniqueConstraint("event_id", "subscriber_id", name="uq_relay_deliveries_event_subscriber"),
    Index("ix_relay_deliveries_due", "status", "next_at"),
)
