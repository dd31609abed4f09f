"""The cookie that binds an OAuth `state` to the browser it was made for.

Set by `/oauth/authorize` and by the admin page's Connect button, read by `/oauth/callback`:
HttpOnly and `SameSite=Lax` (amoCRM's redirect back is a cross-site top-level navigation, which
must carry it), living as long as the state.
"""

from __future__ import annotations

from starlette.responses import Response

from amogate.connection import connect

STATE_COOKIE = "amogate_oauth"


def set_state_cookie(response: Response, value: str, *, secure: bool) -> None:
    response.set_cookie(
        STATE_COOKIE,
        value,
        max_age=int(connect.STATE_TTL.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure,
    )
