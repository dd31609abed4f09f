"""Every admin form needs the session's CSRF token; without it nothing changes."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from amogate.app_state import state_of
from amogate.storage import api_keys
from amogate.storage.db import Database
from tests.web.helpers import csrf_of, form_token, sign_in

FORMS = [
    ("/admin/keys", {"name": "site", "scopes": "leads:write"}),
    ("/admin/deliveries/retry-failed", {}),
    ("/admin/deliveries/abc/retry", {}),
    ("/admin/keys/abc/revoke", {}),
    ("/admin/logout", {}),
]


async def _key_names(client: httpx.AsyncClient) -> list[str]:
    database = state_of(client._transport.app).running().database  # type: ignore[attr-defined]
    assert isinstance(database, Database)
    async with database.read() as conn:
        return [row.name for row in await api_keys.list_all(conn)]


@pytest.mark.parametrize(("path", "data"), FORMS)
async def test_a_form_without_the_token_is_refused(
    signed_in: httpx.AsyncClient, path: str, data: dict[str, str]
) -> None:
    response = await signed_in.post(path, data=data)
    assert response.status_code == 403
    assert "This form has expired" in response.text


@pytest.mark.parametrize(("path", "data"), FORMS)
async def test_a_form_with_a_forged_token_is_refused(
    signed_in: httpx.AsyncClient, path: str, data: dict[str, str]
) -> None:
    mine = await form_token(signed_in, "/admin")
    # Change the last character (to one it surely is not) so the token is always wrong.
    forged = mine[:-1] + ("y" if mine.endswith("x") else "x")
    response = await signed_in.post(path, data={**data, "csrf": forged})
    assert response.status_code == 403


@pytest.mark.parametrize(("path", "data"), FORMS)
async def test_a_form_with_another_sessions_token_is_refused(
    signed_in: httpx.AsyncClient, admin_app: FastAPI, path: str, data: dict[str, str]
) -> None:
    """A second operator (another browser) signed in at the same time: their valid token is
    no good in this session."""
    transport = httpx.ASGITransport(app=admin_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as other:
        assert (await sign_in(other)).status_code == 303
        theirs = await form_token(other, "/admin")
        assert theirs != await form_token(signed_in, "/admin")
        response = await signed_in.post(path, data={**data, "csrf": theirs})
        assert response.status_code == 403
        # The token is genuine: in its own session it is accepted.
        accepted = await other.post(
            "/admin/keys", data={"name": "x", "scopes": "leads:write", "csrf": theirs}
        )
        assert accepted.status_code == 201


async def test_a_refused_form_changes_nothing(signed_in: httpx.AsyncClient) -> None:
    await signed_in.post("/admin/keys", data={"name": "site", "scopes": "leads:write"})
    assert await _key_names(signed_in) == []
    token = await form_token(signed_in, "/admin/keys")
    response = await signed_in.post(
        "/admin/keys", data={"name": "site", "scopes": "leads:write", "csrf": token}
    )
    assert response.status_code == 201
    assert await _key_names(signed_in) == ["site"]


async def test_the_token_of_the_sign_in_form_is_not_valid_after_signing_in(
    admin_client: httpx.AsyncClient,
) -> None:
    login_token = csrf_of((await admin_client.get("/admin/login")).text)
    await sign_in(admin_client)
    response = await admin_client.post(
        "/admin/keys", data={"name": "site", "scopes": "leads:write", "csrf": login_token}
    )
    assert response.status_code == 403


async def test_signing_in_without_the_forms_token_is_refused(
    admin_client: httpx.AsyncClient,
) -> None:
    from tests.web.helpers import ADMIN_PASSWORD

    await admin_client.get("/admin/login")
    response = await admin_client.post("/admin/login", data={"password": ADMIN_PASSWORD})
    assert response.status_code == 403
    assert (await admin_client.get("/admin")).status_code == 303
