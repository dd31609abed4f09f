"""Bodies nested to crash a parser get the original's 400 "Invalid JSON", never a 500."""

from __future__ import annotations

import json

import httpx
import pytest

from amogate.api.leads import MAX_JSON_DEPTH


def _nested(depth: int) -> bytes:
    """A lead whose comment field holds a list nested `depth` levels deep in all."""
    inner = "[" * (depth - 1) + "]" * (depth - 1)
    return ('{"lead": {"name": "x"}, "contact": {"name": "y"}, "utm": ' + inner + "}").encode()


async def _post(client: httpx.AsyncClient, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return await client.post(
        "/api/v1/leads/unsorted",
        content=body,
        headers={**headers, "Content-Type": "application/json"},
    )


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000, b'{"a":' * 100_000, _nested(MAX_JSON_DEPTH + 1)],
    ids=["100k-open-brackets", "100k-open-objects", "one-level-too-deep"],
)
async def test_too_deep_bodies_are_invalid_json(
    client: httpx.AsyncClient, api_headers: dict[str, str], body: bytes
) -> None:
    response = await _post(client, body, api_headers)
    assert response.status_code == 400
    assert response.json()["error"] == "Invalid JSON"
    assert "nested deeper" in response.json()["details"]["json_error"]


async def test_brackets_inside_strings_do_not_count(
    client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    body = json.dumps({"lead": {"name": "[" * 200 + '\\"{' * 10}, "comment": "{" * 1000}).encode()
    response = await _post(client, body, api_headers)
    # Parsed: the answer is about the lead's content, not about its JSON.
    assert response.status_code == 422, response.text
    assert response.json()["details"] == {"contact": "Contact object is required"}


async def test_the_deepest_allowed_body_is_read(
    client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    response = await _post(client, _nested(MAX_JSON_DEPTH), api_headers)
    # Parsed: whatever is said about the lead, it is not about its JSON.
    assert response.json().get("error") != "Invalid JSON", response.text
    assert response.status_code != 400
