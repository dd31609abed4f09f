"""Standard Webhooks signatures: the specification's published test vector, and a fresh key."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

from amogate.relay import signing

# From the Standard Webhooks specification's test suite (the reference libraries use it).
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signature_matches_the_published_test_vector() -> None:
    at = datetime.fromtimestamp(VECTOR_TIMESTAMP, tz=UTC)
    headers = signing.signed_headers(VECTOR_SECRET, VECTOR_ID, VECTOR_BODY, at)
    assert headers == {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TIMESTAMP),
        "webhook-signature": VECTOR_SIGNATURE,
    }


def test_a_new_secret_is_32_random_bytes_after_whsec_and_verifies() -> None:
    secret = signing.new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret[len("whsec_") :])) == 32
    assert secret != signing.new_secret()
    body = '{"id":"evt_1","data":{"name":"Дилноза"}}'.encode()
    headers = signing.signed_headers(secret, "evt_1", body, datetime.now(UTC))
    assert Webhook(secret).verify(body, headers) == {"id": "evt_1", "data": {"name": "Дилноза"}}
