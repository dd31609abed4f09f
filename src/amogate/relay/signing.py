"""Standard Webhooks signatures (standardwebhooks.com), with the `standardwebhooks` package.

Each subscriber has a key, shown once as `whsec_<base64 of 32 random bytes>`. A request carries
`webhook-id` (the event id, the same on every retry: receivers drop repeats by it),
`webhook-timestamp` (unix seconds of this attempt) and `webhook-signature`:
`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` keyed with the bytes after `whsec_`.
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

PREFIX = "whsec_"
KEY_BYTES = 32


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def signed_headers(secret: str, msg_id: str, body: bytes, at: datetime) -> dict[str, str]:
    """The three Standard Webhooks headers for `body` sent at `at`."""
    timestamp = datetime.fromtimestamp(int(at.timestamp()), tz=UTC)
    signature = Webhook(secret).sign(msg_id, timestamp, body.decode("utf-8"))
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
    }
