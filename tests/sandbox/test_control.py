"""The control API: request log, stats, authorize and reset."""

from __future__ import annotations

import httpx

from amogate.amocrm.sandbox.state import SandboxState
from tests.sandbox.helpers import JSON, bearer, form_item, refresh


async def test_request_log_holds_method_path_query_status_and_body(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await sandbox.get("/api/v4/leads/custom_fields", params={"page": 2}, headers=auth)
    await sandbox.post("/api/v4/leads/unsorted/forms", json=[form_item("x")], headers=auth)

    log = (await sandbox.get("/_sandbox/requests")).json()

    token_call, fields, forms = log
    assert token_call["path"] == "/oauth2/access_token"
    assert token_call["body"]["grant_type"] == "authorization_code"
    assert (fields["method"], fields["path"], fields["query"], fields["status"]) == (
        "GET",
        "/api/v4/leads/custom_fields",
        "page=2",
        200,
    )
    assert forms["body"][0]["source_uid"] == "x"
    assert forms["status"] == 200
    assert [e["seq"] for e in log] == sorted(e["seq"] for e in log)


async def test_request_log_since_and_path_prefix(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    seen = (await sandbox.get("/_sandbox/requests")).json()[-1]["seq"]
    await sandbox.get("/api/v4/account", headers=auth)
    await sandbox.get("/api/v4/leads/pipelines", headers=auth)

    newer = (await sandbox.get("/_sandbox/requests", params={"since": seen})).json()
    pipelines = (
        await sandbox.get("/_sandbox/requests", params={"path_prefix": "/api/v4/leads"})
    ).json()

    assert [e["path"] for e in newer] == ["/api/v4/account", "/api/v4/leads/pipelines"]
    assert [e["path"] for e in pipelines] == ["/api/v4/leads/pipelines"]


async def test_form_bodies_are_logged_as_dicts(sandbox: httpx.AsyncClient) -> None:
    await sandbox.post("/oauth2/access_token", data={"grant_type": "refresh_token", "a": "1"})

    (entry,) = (await sandbox.get("/_sandbox/requests")).json()

    assert entry["body"] == {"grant_type": "refresh_token", "a": "1"}


async def test_stats_count_per_endpoint_with_ids_folded(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await sandbox.get("/api/v4/leads/1", headers=auth)
    await sandbox.get("/api/v4/leads/2", headers=auth)

    stats = (await sandbox.get("/_sandbox/stats")).json()

    assert stats["by_endpoint"]["GET /api/v4/leads/{id}"] == 2
    assert stats["by_endpoint"]["POST /oauth2/access_token"] == 1
    assert stats["by_status"]["204"] == 2


async def test_authorize_returns_a_code_and_the_callback_fields(
    sandbox: httpx.AsyncClient,
) -> None:
    body = (
        await sandbox.post(
            "/_sandbox/authorize", json={"client_id": "sandbox-client-id", "state": "abc"}
        )
    ).json()

    assert body["code"].startswith("def50200")
    assert body["state"] == "abc"
    assert body["referer"] == "sandbox.test"
    unknown = await sandbox.post("/_sandbox/authorize", json={"client_id": "other"})
    assert unknown.status_code == 400


async def test_reset_reseeds_but_keeps_tokens(
    sandbox: httpx.AsyncClient, auth: dict[str, str], tokens: JSON, state: SandboxState
) -> None:
    await sandbox.post("/api/v4/leads", json=[{"name": "x"}], headers=auth)
    await sandbox.post("/_sandbox/faults", json={"mode": "500", "duration_s": 60})

    assert (await sandbox.post("/_sandbox/reset")).status_code == 204

    assert state.leads == {}
    assert (await sandbox.get("/_sandbox/requests")).json() == []
    assert (await sandbox.get("/_sandbox/faults")).json() == []
    assert (await sandbox.get("/api/v4/leads", headers=auth)).status_code == 204
    created = await sandbox.post("/api/v4/leads", json=[{"name": "y"}], headers=auth)
    assert created.json()["_embedded"]["leads"][0]["id"] == 10_000_001  # ids start over


async def test_reset_with_tokens_drops_them(
    sandbox: httpx.AsyncClient, tokens: JSON, config: object
) -> None:
    await sandbox.post("/_sandbox/reset", json={"tokens": True})

    response = await sandbox.get("/api/v4/account", headers=bearer(tokens["access_token"]))

    assert response.status_code == 401


async def test_stats_survive_nothing_after_reset(
    sandbox: httpx.AsyncClient, tokens: JSON, state: SandboxState
) -> None:
    await refresh(sandbox, state.config, "def50200bad")
    await sandbox.post("/_sandbox/reset")

    stats = (await sandbox.get("/_sandbox/stats")).json()

    assert stats["requests_total"] == 0
    assert stats["oauth"]["refreshes_rejected"] == 0
