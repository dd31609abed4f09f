"""Form ids: the secret part of a form's endpoint `/api/v1/forms/<form_id>`.

An id carries 192 random bits, so it cannot be guessed. Only its SHA-256 digest is stored, and a
form is found by the digest of what the caller sent: the database compares digests, which an
outsider cannot steer, so how long a lookup takes says nothing about how close a guess was.
"""

from __future__ import annotations

import hashlib
import secrets

PREFIX = "frm_"
RANDOM_BYTES = 24  # 192 bits, 32 URL-safe characters
HINT_LENGTH = 12  # shown in lists so an operator can tell endpoints apart
MAX_PRESENTED = 128  # longer path segments are not ids; hashed all the same, never echoed
ENDPOINT_PREFIX = "/api/v1/forms/"


def new_form_id() -> str:
    return PREFIX + secrets.token_urlsafe(RANDOM_BYTES)


def digest(form_id: str) -> str:
    return hashlib.sha256(form_id[:MAX_PRESENTED].encode("utf-8", "replace")).hexdigest()


def hint(form_id: str) -> str:
    return form_id[:HINT_LENGTH]


def endpoint(form_id: str) -> str:
    return ENDPOINT_PREFIX + form_id


def new_handle() -> str:
    """The operator's name-like handle of a form (not secret, not usable to post)."""
    return secrets.token_hex(8)
