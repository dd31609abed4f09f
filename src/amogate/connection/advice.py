"""amoCRM's answers turned into what the operator should do, in one place.

Used by the OAuth callback page, `amogate auth ...` and `amogate check`. Each text names the
setting to look at or the question to ask ("is <url> reachable?"), never an exception class.
The admin page translates these texts (web/i18n.py keeps a translation of each).
"""

from __future__ import annotations

from amogate.amocrm.errors import (
    AmoAuthError,
    AmoBlockedError,
    AmoError,
    AmoPaymentError,
    AmoRateLimitedError,
    AmoRefreshRevokedError,
    AmoTimeoutError,
    AmoTransientError,
)

# The token endpoint answered 401 without a hint: amoCRM did not recognise the integration
# (a wrong id or secret; amoCRM answers the same when the redirect URI differs).
INVALID_CLIENT = (
    "amoCRM did not accept the integration's keys (HTTP 401): check AMO_CLIENT_ID / "
    "AMO_CLIENT_SECRET, and that AMO_REDIRECT_URI equals the integration's Redirect URI"
)
# The callback came back without a state we issued: it was started elsewhere (another
# gateway, an old tab) or the integration's Redirect URI leads somewhere else.
STATE_MISSING = (
    "amoCRM came back without the OAuth state: start again from the admin page or "
    "/oauth/authorize, and check AMO_REDIRECT_URI equals the integration's Redirect URI"
)
STATE_UNKNOWN = (
    "Invalid or expired OAuth state: start again from the admin page or /oauth/authorize; if "
    "it happens again, check AMO_REDIRECT_URI equals the integration's Redirect URI"
)
EXCHANGE_UNAVAILABLE = "amoCRM did not complete the code exchange; try again in a minute"
ACCESS_DENIED = "Access was denied in amoCRM"
AMOCRM_REFUSED = "amoCRM refused"


def code_refused(hint: str) -> str:
    return f"amoCRM refused the authorization code ({hint}): connect again"


def token_endpoint_error(exc: AmoError, hint: str | None) -> str:
    """Why a code exchange (or refresh) failed, and what to do."""
    if isinstance(exc, AmoAuthError) and not isinstance(exc, AmoRefreshRevokedError):
        if exc.status == 401:
            return INVALID_CLIENT
        return code_refused(hint or exc.detail)
    if isinstance(exc, AmoAuthError):
        return code_refused(hint or exc.detail)
    return EXCHANGE_UNAVAILABLE


def api_error(exc: BaseException, base_url: str) -> str:
    """Why a call to amoCRM's API at `base_url` failed, and what to ask next."""
    if isinstance(exc, AmoRateLimitedError):
        return "amoCRM rate limit reached (HTTP 429): try again in a minute"
    if isinstance(exc, AmoTimeoutError | TimeoutError):
        return f"no answer from {base_url} in time: is {base_url} reachable from this host?"
    if isinstance(exc, AmoTransientError):
        if exc.status is None:
            return f"cannot connect to {base_url}: is {base_url} reachable from this host?"
        return f"{base_url} answered HTTP {exc.status}: amoCRM has trouble; try again later"
    if isinstance(exc, AmoAuthError):
        return (
            "amoCRM refused the token (HTTP 401): connect amoCRM again "
            "(the admin page or `amogate auth url`)"
        )
    if isinstance(exc, AmoBlockedError):
        return "amoCRM refused access (HTTP 403): the account or this IP is blocked for a while"
    if isinstance(exc, AmoPaymentError):
        return "the amoCRM account's paid period has ended (HTTP 402)"
    if isinstance(exc, AmoError) and exc.status is not None:
        return (
            f"{base_url} answered HTTP {exc.status}: check AMO_DOMAIN (or AMO_BASE_URL) "
            "names your account"
        )
    return f"the call to {base_url} failed: is {base_url} reachable from this host?"
