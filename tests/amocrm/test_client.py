from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from amogate.amocrm.client import AmoClient
from amogate.amocrm.errors import (
    AmoBlockedError,
    AmoNotFoundError,
    AmoPermanentError,
    AmoRateLimitedError,
    AmoTimeoutError,
    AmoTransientError,
    AmoUnavailableError,
)
from amogate.amocrm.models import ComplexResult, NoteResult, UnsortedResult, UpdateResult
from amogate.amocrm.ratelimit import TokenBucketLimiter
from tests.amocrm.helpers import BASE_URL, FakeTime, Recorder, html, make_client, problem


def hal(key: str, items: list[dict[str, Any]], next_href: str | None = None) -> httpx.Response:
    links: dict[str, Any] = {"self": {"href": f"{BASE_URL}/self"}}
    if next_href:
        links["next"] = {"href": next_href}
    return httpx.Response(200, json={"_links": links, "_embedded": {key: items}})


def fields_page(page: int, ids: list[int], *, last: bool = False) -> httpx.Response:
    href = None if last else f"{BASE_URL}/api/v4/leads/custom_fields?page={page + 1}&limit=250"
    return hal("custom_fields", [{"id": i} for i in ids], href)


async def test_list_custom_fields_follows_next_links_through_all_pages() -> None:
    server = Recorder(
        fields_page(1, [1, 2]), fields_page(2, [3, 4]), fields_page(3, [5], last=True)
    )
    async with make_client(server) as client:
        fields = await client.list_custom_fields("leads")

    assert [f["id"] for f in fields] == [1, 2, 3, 4, 5]
    assert [str(r.url) for r in server.requests] == [
        f"{BASE_URL}/api/v4/leads/custom_fields?limit=250",
        f"{BASE_URL}/api/v4/leads/custom_fields?page=2&limit=250",
        f"{BASE_URL}/api/v4/leads/custom_fields?page=3&limit=250",
    ]


async def test_a_204_list_is_empty() -> None:
    async with make_client(Recorder(httpx.Response(204))) as client:
        assert await client.list_custom_fields("contacts") == []
        assert await client.search_contacts("+998901234567") == []
        assert await client.list_leads(query="nobody") == []
        assert await client.list_unsorted() == []


async def test_a_204_page_after_the_first_ends_the_listing() -> None:
    server = Recorder(fields_page(1, [1]), httpx.Response(204))
    async with make_client(server) as client:
        assert [f["id"] for f in await client.list_custom_fields("leads")] == [1]


async def test_next_links_to_another_host_are_followed_on_our_own_host() -> None:
    evil = "https://evil.example/api/v4/leads/custom_fields?page=2"
    server = Recorder(hal("custom_fields", [{"id": 1}], evil), fields_page(2, [2], last=True))
    async with make_client(server) as client:
        await client.list_custom_fields("leads")

    assert server.requests[1].url.host == "mycompany.amocrm.ru"
    assert server.requests[1].url.params["page"] == "2"


async def test_pagination_that_never_ends_is_an_error() -> None:
    loop = hal("custom_fields", [{"id": 1}], f"{BASE_URL}/api/v4/leads/custom_fields?page=2")
    async with make_client(Recorder(loop)) as client:
        with pytest.raises(AmoPermanentError, match="does not end"):
            await client.list_custom_fields("leads")


async def test_every_request_names_us_and_asks_for_json() -> None:
    server = Recorder(httpx.Response(200, json={"id": 1}))
    async with make_client(server) as client:
        await client.get_account(with_=["users_groups", "datetime_settings"])

    request = server.requests[0]
    assert request.headers["User-Agent"].startswith("amogate/")
    assert request.headers["Accept"] == "application/json"
    assert request.url.params["with"] == "users_groups,datetime_settings"


async def test_single_entity_reads_answering_204_are_not_found() -> None:
    async with make_client(Recorder(httpx.Response(204))) as client:
        with pytest.raises(AmoNotFoundError):
            await client.get_lead(1)


async def test_unknown_pipeline_is_not_found() -> None:
    async with make_client(Recorder(problem(404, "Not Found"))) as client:
        with pytest.raises(AmoNotFoundError):
            await client.get_pipeline(99)


async def test_list_pipelines_returns_the_embedded_pipelines() -> None:
    pipelines = [{"id": 6950551, "_embedded": {"statuses": [{"id": 142}]}}]
    async with make_client(Recorder(hal("pipelines", pipelines))) as client:
        assert await client.list_pipelines() == pipelines


async def test_create_unsorted_forms_returns_uid_and_ids_per_item() -> None:
    answer = httpx.Response(
        200,
        json={
            "_total_items": 1,
            "_embedded": {
                "unsorted": [
                    {
                        "uid": "4278accf",
                        "request_id": "0",
                        "account_id": 1,
                        "_embedded": {
                            "leads": [{"id": 3478621}],
                            "contacts": [{"id": 2355213}],
                            "companies": [],
                        },
                    }
                ]
            },
        },
    )
    server = Recorder(answer)
    async with make_client(server) as client:
        results = await client.create_unsorted_forms(
            [{"source_name": "Site", "source_uid": "abc", "metadata": {"form_id": "f"}}]
        )

    assert results == [UnsortedResult("0", "4278accf", 3478621, 2355213)]
    sent = json.loads(server.requests[0].content)
    assert server.requests[0].url.path == "/api/v4/leads/unsorted/forms"
    assert sent[0]["request_id"] == "0"
    assert sent[0]["source_uid"] == "abc"


async def test_writes_keep_given_request_ids_and_number_the_rest() -> None:
    server = Recorder(
        hal("leads", [{"id": 1, "request_id": "form-42"}, {"id": 2, "request_id": "1"}])
    )
    async with make_client(server) as client:
        created = await client.create_leads([{"name": "a", "request_id": "form-42"}, {"name": "b"}])

    sent = json.loads(server.requests[0].content)
    assert [item["request_id"] for item in sent] == ["form-42", "1"]
    assert created == [{"id": 1, "request_id": "form-42"}, {"id": 2, "request_id": "1"}]


@pytest.mark.parametrize("count", [0, 251])
async def test_empty_or_oversized_batches_are_refused_before_sending(count: int) -> None:
    server = Recorder(httpx.Response(200, json={}))
    async with make_client(server) as client:
        with pytest.raises(ValueError, match=r"nothing to send|at most 250"):
            await client.create_contacts([{"name": str(i)} for i in range(count)])

    assert server.requests == []


def unsorted_item(uid: str, source_uid: str, created_at: int) -> dict[str, Any]:
    return {"uid": uid, "source_uid": source_uid, "created_at": created_at, "category": "forms"}


async def test_find_unsorted_by_source_uid_pages_newest_first() -> None:
    server = Recorder(
        hal(
            "unsorted",
            [unsorted_item("u1", "other", 300)],
            f"{BASE_URL}/api/v4/leads/unsorted?page=2",
        ),
        hal("unsorted", [unsorted_item("u2", "wanted", 200)]),
    )
    async with make_client(server) as client:
        found = await client.find_unsorted_by_source_uid("wanted", pipeline_id=7)

    assert found is not None
    assert found["uid"] == "u2"
    first = server.requests[0].url.params
    assert first.get_list("filter[category][]") == ["forms"]
    assert first["order[created_at]"] == "desc"
    assert first["filter[pipeline_id]"] == "7"


async def test_find_unsorted_stops_at_items_older_than_since() -> None:
    server = Recorder(
        hal("unsorted", [unsorted_item("u1", "x", 150)], f"{BASE_URL}/api/v4/leads/unsorted?page=2")
    )
    async with make_client(server) as client:
        assert await client.find_unsorted_by_source_uid("wanted", since=200) is None

    assert len(server.requests) == 1


async def test_find_unsorted_looks_at_no_more_than_max_pages() -> None:
    page = hal("unsorted", [unsorted_item("u", "x", 1)], f"{BASE_URL}/api/v4/leads/unsorted?page=2")
    server = Recorder(page)
    async with make_client(server) as client:
        assert await client.find_unsorted_by_source_uid("wanted", max_pages=3) is None

    assert len(server.requests) == 3


async def test_list_unsorted_encodes_filters_in_brackets() -> None:
    server = Recorder(hal("unsorted", [unsorted_item("u", "s", 1)]))
    async with make_client(server) as client:
        items = await client.list_unsorted(
            category=["forms", "sip"], uid="u", order={"created_at": "desc"}, limit=999
        )

    params = server.requests[0].url.params
    assert items[0]["uid"] == "u"
    assert params.get_list("filter[category][]") == ["forms", "sip"]
    assert params["filter[uid]"] == "u"
    assert params["limit"] == "250"


async def test_add_notes_returns_ids_per_request_id() -> None:
    answer = hal("notes", [{"id": 42, "entity_id": 3912171, "request_id": "0"}])
    server = Recorder(answer)
    async with make_client(server) as client:
        notes = await client.add_notes(
            "leads", [{"entity_id": 3912171, "note_type": "common", "params": {"text": "hi"}}]
        )

    assert notes == [NoteResult("0", 42, 3912171)]
    assert server.requests[0].url.path == "/api/v4/leads/notes"


async def test_list_notes_reads_the_entitys_notes() -> None:
    server = Recorder(hal("notes", [{"id": 1}, {"id": 2}]))
    calls: list[tuple[str, int | None, float]] = []
    async with make_client(server, calls=calls) as client:
        notes = await client.list_notes("contacts", 77)

    assert [n["id"] for n in notes] == [1, 2]
    assert server.requests[0].url.path == "/api/v4/contacts/77/notes"
    assert calls[0][:2] == ("/api/v4/contacts/{id}/notes", 200)


async def test_search_contacts_sends_the_query() -> None:
    server = Recorder(hal("contacts", [{"id": 9}]))
    async with make_client(server) as client:
        assert await client.search_contacts("901234567", with_=["leads"]) == [{"id": 9}]

    params = server.requests[0].url.params
    assert params["query"] == "901234567"
    assert params["with"] == "leads"


async def test_on_call_sees_the_endpoint_template_and_status() -> None:
    calls: list[tuple[str, int | None, float]] = []
    server = Recorder(httpx.Response(200, json={"id": 5}), httpx.ConnectError("refused"))
    async with make_client(server, calls=calls) as client:
        await client.get_lead(5)
        with pytest.raises(AmoUnavailableError):
            await client.create_contacts([{"name": "x"}])

    assert [c[:2] for c in calls] == [("/api/v4/leads/{id}", 200), ("/api/v4/contacts", None)]
    assert all(c[2] >= 0 for c in calls)


async def test_a_read_gets_one_short_retry_on_a_transient_error() -> None:
    sleeps: list[float] = []
    server = Recorder(html(502, "502 Bad Gateway"), httpx.Response(200, json={"id": 1}))
    async with make_client(server, sleeps=sleeps) as client:
        assert await client.get_account() == {"id": 1}

    assert len(server.requests) == 2
    assert sleeps == [0.5]


async def test_a_read_retry_honours_a_short_retry_after() -> None:
    sleeps: list[float] = []
    limited = html(429, "Too Many", headers={"Retry-After": "2"})
    server = Recorder(limited, httpx.Response(200, json={"id": 1}))
    async with make_client(server, sleeps=sleeps) as client:
        await client.get_account()

    assert sleeps == [2.0]


async def test_a_read_is_not_retried_when_amocrm_asks_for_a_long_wait() -> None:
    server = Recorder(problem(429, "Too many", retry_after=300))
    async with make_client(server) as client:
        with pytest.raises(AmoRateLimitedError) as caught:
            await client.get_account()

    assert caught.value.retry_after == 300
    assert len(server.requests) == 1


async def test_a_read_failing_twice_raises_the_second_error() -> None:
    server = Recorder(html(503, "503"), httpx.ReadTimeout("slow"))
    async with make_client(server) as client:
        with pytest.raises(AmoTimeoutError):
            await client.get_pipeline(1)

    assert len(server.requests) == 2


@pytest.mark.parametrize(
    "failure", [html(500, "500"), html(504, "504 Gateway Time-out"), httpx.ReadTimeout("slow")]
)
async def test_writes_are_never_retried_by_the_client(failure: httpx.Response | Exception) -> None:
    server = Recorder(failure, httpx.Response(200, json={}))
    async with make_client(server) as client:
        with pytest.raises(AmoTransientError):
            await client.create_unsorted_forms([{"source_uid": "a"}])

    assert len(server.requests) == 1


async def test_permanent_errors_on_reads_are_not_retried() -> None:
    server = Recorder(problem(400, "bad"))
    async with make_client(server) as client:
        with pytest.raises(AmoPermanentError):
            await client.list_leads()

    assert len(server.requests) == 1


async def test_a_429_pauses_the_limiter_before_the_error_reaches_the_caller() -> None:
    time = FakeTime()
    limiter = TokenBucketLimiter(7, clock=time.clock, sleep=time.sleep)
    server = Recorder(problem(429, "Too many", retry_after=30))
    async with make_client(server, limiter=limiter) as client:
        with pytest.raises(AmoRateLimitedError):
            await client.create_leads([{"name": "x"}])
        reported = time.now
        with pytest.raises(AmoRateLimitedError):
            await client.create_leads([{"name": "y"}])

    assert time.now - reported == pytest.approx(30)


async def test_a_403_stops_further_calls_without_reaching_amocrm() -> None:
    time = FakeTime()
    limiter = TokenBucketLimiter(7, clock=time.clock, sleep=time.sleep)
    server = Recorder(html(403, "403 Forbidden"))
    async with make_client(server, limiter=limiter) as client:
        with pytest.raises(AmoBlockedError):
            await client.get_account()
        with pytest.raises(AmoBlockedError, match="paused"):
            await client.get_account()

    assert len(server.requests) == 1


async def test_the_client_closes_its_connection_pool() -> None:
    client = make_client(Recorder(httpx.Response(200, json={})))
    await client.aclose()

    with pytest.raises(RuntimeError):
        await client.get_account()


def test_base_url_must_be_absolute() -> None:
    with pytest.raises(ValueError, match="scheme"):
        AmoClient("mycompany.amocrm.ru", auth=httpx.BasicAuth("a", "b"))


# --- contacts, complex leads, users -------------------------------------------------------------


async def test_complex_answers_a_bare_array_with_request_id_lists_and_merged() -> None:
    answer = httpx.Response(
        200,
        json=[
            {"id": 10, "contact_id": 20, "company_id": None, "request_id": ["d1"], "merged": False},
            {
                "id": 11,
                "contact_id": 21,
                "company_id": 30,
                "request_id": ["1", "2"],
                "merged": True,
            },
        ],
    )
    server = Recorder(answer)
    async with make_client(server) as client:
        results = await client.create_leads_complex(
            [{"name": "a", "request_id": "d1"}, {"name": "b"}]
        )

    assert results == [
        ComplexResult(("d1",), 10, 20, None, merged=False),
        ComplexResult(("1", "2"), 11, 21, 30, merged=True),
    ]
    request = server.requests[0]
    assert (request.method, request.url.path) == ("POST", "/api/v4/leads/complex")
    assert [item["request_id"] for item in json.loads(request.content)] == ["d1", "1"]


@pytest.mark.parametrize("count", [0, 51])
async def test_complex_refuses_an_empty_batch_or_more_than_50_leads_before_sending(
    count: int,
) -> None:
    server = Recorder(httpx.Response(200, json=[]))
    async with make_client(server) as client:
        with pytest.raises(ValueError, match=r"nothing to send|at most 50"):
            await client.create_leads_complex([{"name": str(i)} for i in range(count)])

    assert server.requests == []


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, json={"_embedded": {"leads": [{"id": 1}]}}),
        httpx.Response(200, text="<html><title>Bad Gateway</title></html>"),
    ],
)
async def test_a_complex_answer_that_is_not_an_array_is_an_unknown_outcome(
    answer: httpx.Response,
) -> None:
    async with make_client(Recorder(answer)) as client:
        with pytest.raises(AmoUnavailableError) as caught:
            await client.create_leads_complex([{"name": "a"}])

    assert caught.value.maybe_applied is True


async def test_complex_and_contact_updates_are_never_retried_by_the_client() -> None:
    server = Recorder(problem(429, "Too many", retry_after=1))
    async with make_client(server) as client:
        with pytest.raises(AmoRateLimitedError):
            await client.create_leads_complex([{"name": "a"}])
        with pytest.raises(AmoRateLimitedError):
            await client.update_contacts([{"id": 1, "name": "x"}])

    assert [r.method for r in server.requests] == ["POST", "PATCH"]


async def test_update_contacts_patches_the_batch_and_returns_ids_with_updated_at() -> None:
    answer = hal("contacts", [{"id": 7, "updated_at": 1_750_000_100, "request_id": "0"}])
    server = Recorder(answer)
    items = [{"id": 7, "custom_fields_values": [{"field_code": "PHONE", "values": []}]}]
    async with make_client(server) as client:
        results = await client.update_contacts(items)

    assert results == [UpdateResult("0", 7, 1_750_000_100)]
    request = server.requests[0]
    assert (request.method, request.url.path) == ("PATCH", "/api/v4/contacts")
    assert json.loads(request.content) == [{**items[0], "request_id": "0"}]


@pytest.mark.parametrize("item", [{"name": "no id"}, {"id": "7"}, {"id": True}])
async def test_update_contacts_needs_an_integer_id_on_every_item(item: dict[str, Any]) -> None:
    server = Recorder(hal("contacts", []))
    async with make_client(server) as client:
        with pytest.raises(ValueError, match="integer id"):
            await client.update_contacts([{"id": 1}, item])

    assert server.requests == []


async def test_get_contacts_asks_for_each_id_once_250_per_request() -> None:
    server = Recorder(hal("contacts", [{"id": 1}]))
    ids = [*range(1, 301), 5, 5]
    async with make_client(server) as client:
        found = await client.get_contacts(ids, with_=["leads"])

    assert found == [{"id": 1}, {"id": 1}]
    asked = [r.url.params.get_list("filter[id][]") for r in server.requests]
    assert [len(a) for a in asked] == [250, 50]
    assert asked[0][:3] == ["1", "2", "3"]
    assert server.requests[0].url.params["with"] == "leads"
    assert server.requests[0].url.params["limit"] == "250"


async def test_get_contacts_of_no_ids_asks_nothing() -> None:
    server = Recorder(hal("contacts", []))
    async with make_client(server) as client:
        assert await client.get_contacts([]) == []

    assert server.requests == []


async def test_an_empty_search_query_is_refused_before_it_lists_every_contact() -> None:
    server = Recorder(hal("contacts", [{"id": 1}]))
    async with make_client(server) as client:
        with pytest.raises(ValueError, match="empty query"):
            await client.search_contacts("  ")

    assert server.requests == []


async def test_a_search_rides_out_one_short_429() -> None:
    sleeps: list[float] = []
    server = Recorder(problem(429, "Too many", retry_after=1), hal("contacts", [{"id": 3}]))
    async with make_client(server, sleeps=sleeps) as client:
        assert await client.search_contacts("901234567") == [{"id": 3}]

    assert sleeps == [1.0]
    assert len(server.requests) == 2


async def test_list_users_reads_every_page() -> None:
    server = Recorder(
        hal("users", [{"id": 1}], f"{BASE_URL}/api/v4/users?page=2&limit=250"),
        hal("users", [{"id": 2}]),
    )
    async with make_client(server) as client:
        users = await client.list_users()

    assert [u["id"] for u in users] == [1, 2]
    assert server.requests[0].url.params["limit"] == "250"
    assert server.requests[1].url.params["page"] == "2"


async def test_list_leads_encodes_ranges_lists_and_order() -> None:
    server = Recorder(hal("leads", [{"id": 1}]))
    async with make_client(server) as client:
        await client.list_leads(
            "dlv",
            with_=["contacts"],
            order={"created_at": "desc"},
            created_at={"from": 1_750_000_000},
            id=[1, 2],
            pipeline_id=7,
        )

    params = server.requests[0].url.params
    assert params["filter[created_at][from]"] == "1750000000"
    assert params.get_list("filter[id][]") == ["1", "2"]
    assert params["filter[pipeline_id]"] == "7"
    assert params["order[created_at]"] == "desc"
    assert params["query"] == "dlv"
    assert params["with"] == "contacts"


async def test_create_custom_fields_returns_the_created_fields() -> None:
    server = Recorder(hal("custom_fields", [{"id": 5, "code": "X", "request_id": "0"}]))
    async with make_client(server) as client:
        created = await client.create_custom_fields("leads", [{"name": "X", "type": "text"}])

    assert created == [{"id": 5, "code": "X", "request_id": "0"}]
    assert server.requests[0].url.path == "/api/v4/leads/custom_fields"
