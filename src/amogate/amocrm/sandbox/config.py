"""Settings of one sandbox account: OAuth client, token lifetimes, budget and public URL."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_PUBLIC_URL = "http://127.0.0.1:9096"
DEFAULT_ACCOUNT_ID = 31_207_511


@dataclass(frozen=True)
class SandboxConfig:
    """Everything that makes one sandbox differ from another.

    `rate_limit` is requests per rolling second per token (0 = unlimited), like amoCRM's 7 rps.
    `block_after_s` > 0 switches on amoCRM's "blocked" mode: that many consecutive seconds with
    429s make every API/OAuth request answer 403 HTML for `block_duration_s`. It is off by
    default so tests stay deterministic.
    `account_id` is the account's id (`GET /api/v4/account`, tokens): two sandboxes with
    different ids stand in for two amoCRM accounts.
    `unsorted_source_uid_filter` enables the sandbox-only `filter[source_uid]` on
    `GET /api/v4/leads/unsorted`; real amoCRM ignores unknown filters, so it is off by default.
    `duplicate_control` stands for the admin setting that makes `leads/complex` merge a new
    contact into an existing one (off, as in a fresh account; see routes/complex.py).
    The `webhook_*` values drive the webhooks the sandbox sends (see webhook_policy.py):
    amoCRM's 2 s timeout, its retry schedule stretched by `webhook_retry_factor` (0.001 turns
    its 5 minutes into 0.3 s for tests), and the disable rule: more than
    `webhook_disable_failures` failures within `webhook_disable_window_s`.
    """

    subdomain: str = "sandbox"
    client_id: str = "sandbox-client-id"
    client_secret: str = "sandbox-client-secret"  # noqa: S105 - a public test value
    redirect_uri: str = "http://localhost:9095/oauth/callback"
    long_lived_token: str | None = None
    access_token_ttl: int = 86400
    refresh_token_ttl: int = 90 * 86400
    rate_limit: int = 7
    public_url: str = DEFAULT_PUBLIC_URL
    block_after_s: int = 0
    block_duration_s: int = 60
    unsorted_source_uid_filter: bool = False
    duplicate_control: bool = False
    webhook_timeout_s: float = 2.0
    webhook_retry_factor: float = 1.0
    webhook_disable_failures: int = 100
    webhook_disable_window_s: float = 7200.0
    account_id: int = DEFAULT_ACCOUNT_ID

    @property
    def base_url(self) -> str:
        """`public_url` without a trailing slash: the prefix of every `_links` href."""
        return self.public_url.rstrip("/")

    @property
    def referer(self) -> str:
        """host:port of `public_url`, what amoCRM sends as `referer` (the account host)."""
        return urlsplit(self.public_url).netloc
