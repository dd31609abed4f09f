"""Reading JWT claims without verifying the signature.

amoCRM access tokens (and long-lived tokens) are JWTs; we only read them to know when they
expire and which account they belong to. Trust comes from amoCRM accepting the token, never
from these claims.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any


def decode_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, or ``{}`` when ``token`` is not one."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[1]:
        return {}
    payload = parts[1]
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        claims = json.loads(raw)
    except (binascii.Error, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def expires_at(token: str) -> datetime | None:
    """The ``exp`` claim as an aware UTC datetime, or None when absent or unreadable."""
    exp = decode_claims(token).get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    try:
        return datetime.fromtimestamp(exp, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
