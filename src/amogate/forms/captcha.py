"""Server-side captcha verification (Cloudflare Turnstile, hCaptcha, Google reCAPTCHA).

All three take the same request (`secret`, `response`, `remoteip`, form-encoded) and answer
JSON with `success`. `CAPTCHA_VERIFY_URL` replaces the provider's address (tests run a local
verifier). The secret is sent only to the verifier and never logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import httpx
import structlog

log = structlog.get_logger("amogate.forms.captcha")

PROVIDERS = ("turnstile", "hcaptcha", "recaptcha")
VERIFY_URLS = {
    "turnstile": "https://challenges.cloudflare.com/turnstile/v0/siteverify",
    "hcaptcha": "https://api.hcaptcha.com/siteverify",
    "recaptcha": "https://www.google.com/recaptcha/api/siteverify",
}
# The field each provider's widget adds to the form.
TOKEN_FIELDS = {
    "turnstile": "cf-turnstile-response",
    "hcaptcha": "h-captcha-response",
    "recaptcha": "g-recaptcha-response",
}
TIMEOUT_S = 3.0  # a form is answered within 5 s
MAX_TOKEN = 4096


class Verdict(Enum):
    PASSED = "passed"
    REFUSED = "refused"  # the verifier said no, or there was no token
    UNKNOWN = "unknown"  # the verifier could not be asked


@dataclass(frozen=True)
class Captcha:
    provider: str
    secret: str
    verify_url: str = ""

    async def verify(self, token: str, remote_ip: str | None) -> Verdict:
        if not token or len(token) > MAX_TOKEN:
            return Verdict.REFUSED
        data = {"secret": self.secret, "response": token}
        if remote_ip:
            data["remoteip"] = remote_ip
        url = self.verify_url or VERIFY_URLS[self.provider]
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:
                answer = await client.post(url, data=data)
            passed = answer.status_code == 200 and answer.json().get("success") is True
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            log.warning(
                "form.captcha.unavailable", provider=self.provider, error=type(exc).__name__
            )
            return Verdict.UNKNOWN
        return Verdict.PASSED if passed else Verdict.REFUSED
