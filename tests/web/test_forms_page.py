"""The admin page's forms: create (the endpoint shown once, ready to copy), list, last
submissions, remove — all with the session's CSRF token."""

from __future__ import annotations

import re

import httpx

from tests.web.helpers import form_token


async def create(client: httpx.AsyncClient, **values: str) -> httpx.Response:
    token = await form_token(client, "/admin/forms")
    return await client.post("/admin/forms", data={"csrf": token, **values})


async def test_a_created_forms_endpoint_is_shown_once_and_takes_posts(
    signed_in: httpx.AsyncClient,
) -> None:
    created = await create(
        signed_in, name="Landing", origins="https://site.uz\nhttps://www.site.uz", tags="web"
    )
    assert created.status_code == 201, created.text
    assert 'id="new-form-endpoint"' in created.text
    url = re.findall(r'value="(http://gateway\.test/api/v1/forms/frm_[^"]+)"', created.text)
    assert len(url) == 1
    path = url[0].removeprefix("http://gateway.test")

    listed = await signed_in.get("/admin/forms")
    assert "Landing" in listed.text
    assert path not in listed.text  # only the first characters afterwards
    assert path[: len("/api/v1/forms/") + 12] in listed.text

    # No amoCRM configured here: the lead is stored and waits in the queue.
    posted = await signed_in.post(path, data={"name": "Odam", "phone": "+998901234567"})
    assert posted.status_code == 200, posted.text
    form_id = re.search(r'href="/admin/forms/([0-9a-f]{16})"', listed.text)
    assert form_id is not None
    page = await signed_in.get(f"/admin/forms/{form_id.group(1)}")
    assert page.status_code == 200
    assert "Landing: Odam" in page.text


async def test_a_bad_setting_is_explained_and_nothing_is_created(
    signed_in: httpx.AsyncClient,
) -> None:
    answer = await create(signed_in, name="Bad", origins="not a site")
    assert answer.status_code == 422
    assert "must look like https://site.uz" in answer.text
    assert 'data-form="Bad"' not in answer.text


async def test_creating_without_the_csrf_token_is_refused(signed_in: httpx.AsyncClient) -> None:
    answer = await signed_in.post("/admin/forms", data={"name": "Sneaky"})
    assert answer.status_code == 403
    listed = await signed_in.get("/admin/forms")
    assert "Sneaky" not in listed.text


async def test_a_removed_form_is_gone_and_its_endpoint_is_404(
    signed_in: httpx.AsyncClient,
) -> None:
    created = await create(signed_in, name="Doomed")
    path = re.findall(r'value="http://gateway\.test(/api/v1/forms/frm_[^"]+)"', created.text)[0]
    listed = await signed_in.get("/admin/forms")
    form_id = re.search(r'action="/admin/forms/([0-9a-f]{16})/remove"', listed.text)
    assert form_id is not None
    token = await form_token(signed_in, "/admin/forms")
    removed = await signed_in.post(f"/admin/forms/{form_id.group(1)}/remove", data={"csrf": token})
    assert removed.status_code == 303
    assert 'data-form="Doomed"' not in (await signed_in.get("/admin/forms")).text
    assert (await signed_in.post(path, data={"phone": "+998901234567"})).status_code == 404


async def test_the_forms_page_needs_a_session(admin_client: httpx.AsyncClient) -> None:
    answer = await admin_client.get("/admin/forms")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/admin/login")
