"""The webhooks the sandbox sends as amoCRM does (amocrm-api.md §4.11), to a real local receiver."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import httpx

from amogate.amocrm.sandbox.clock import ManualClock
from amogate.amocrm.sandbox.seed import ACCOUNT_ID, MAIN_PIPELINE_ID
from amogate.amocrm.sandbox.state import SandboxState
from amogate.amocrm.webhook_format import parse_webhook
from tests.sandbox.helpers import (
    JSON,
    deliveries_until,
    form_item,
    new_contact,
    new_lead,
    phone_field,
    subscribe,
)
from tests.sandbox.receiver import Receiver

FIRST_STAGE = 71_000_012
SECOND_STAGE = 71_000_013
MANAGER = 9_100_002
FAST_RETRIES = {"webhook_retry_factor": 0.0001}  # amoCRM's 5 minutes become 0.03 s


def finished(count: int) -> Callable[[list[JSON]], bool]:
    """`deliveries_until` condition: `count` deliveries made their last attempt."""
    return lambda attempts: sum(1 for a in attempts if a["next_attempt_in_s"] is None) >= count


def summary(attempt: JSON) -> list[tuple[str, str, str]]:
    return [(e["code"], e["action"], e["id"]) for e in attempt["events"]]


async def test_a_status_change_reaches_the_subscriber_in_amocrm_format(
    sandbox: httpx.AsyncClient, auth: dict[str, str], receiver: Receiver
) -> None:
    webhook = await subscribe(sandbox, auth, receiver.url, "status_lead")
    lead_id = await new_lead(sandbox, auth, name="Buyurtma", price=1000)

    moved = await sandbox.patch(
        f"/api/v4/leads/{lead_id}", json={"status_id": SECOND_STAGE}, headers=auth
    )

    assert moved.status_code == 200
    (post,) = await receiver.arrived(1)
    assert post.path == "/amo/hook"
    assert post.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert b"leads%5Bstatus%5D%5B0%5D%5Bold_status_id%5D=71000012" in post.body
    parsed = parse_webhook(post.body)
    (event,) = parsed.events
    assert (event.entity, event.action) == ("lead", "status")
    assert {k: event.data[k] for k in ("id", "status_id", "old_status_id", "pipeline_id")} == {
        "id": str(lead_id),
        "status_id": str(SECOND_STAGE),
        "old_status_id": str(FIRST_STAGE),
        "pipeline_id": str(MAIN_PIPELINE_ID),
    }
    assert (event.data["name"], event.data["price"]) == ("Buyurtma", "1000")
    assert parsed.account == {
        "subdomain": "sandbox",
        "id": str(ACCOUNT_ID),
        "_links": {"self": "http://sandbox.test"},
    }
    (attempt,) = await deliveries_until(sandbox, finished(1))
    assert attempt["webhook_id"] == webhook["id"]
    assert (attempt["status"], attempt["outcome"], attempt["attempt"]) == (200, "ok", 1)
    assert attempt["latency_ms"] >= 0
    assert attempt["body"] == post.body.decode()
    assert summary(attempt) == [("status_lead", "status", str(lead_id))]


async def test_each_change_is_announced_to_the_codes_subscribed_one_post_per_request(
    sandbox: httpx.AsyncClient, auth: dict[str, str], receiver: Receiver, state: SandboxState
) -> None:
    codes = ["add_lead", "update_lead", "status_lead", "responsible_lead", "note_lead"]
    codes += ["add_contact", "update_contact", "note_contact"]
    await subscribe(sandbox, auth, receiver.url, *codes)
    posts = 0

    async def next_post() -> list[tuple[str, str, str | None]]:
        nonlocal posts
        posts += 1
        post = (await receiver.arrived(posts))[posts - 1]
        return [(e.entity, e.action, e.data.get("id")) for e in parse_webhook(post.body).events]

    contact = await new_contact(
        sandbox, auth, name="Alisher", custom_fields_values=[phone_field("+998 90 123-45-67")]
    )
    assert await next_post() == [("contact", "add", str(contact))]
    added = parse_webhook(receiver.received[0].body).events[0].data
    phone = next(f for f in state.custom_fields["contacts"] if f["code"] == "PHONE")
    assert added["custom_fields"] == [
        {
            "id": str(phone["id"]),
            "name": phone["name"],
            "code": "PHONE",
            "values": [{"value": "+998 90 123-45-67", "enum": str(phone["enums"][2]["id"])}],
        }
    ]
    assert added["type"] == "contact"

    two = await sandbox.post("/api/v4/leads", json=[{"name": "a"}, {"name": "b"}], headers=auth)
    a, b = (item["id"] for item in two.json()["_embedded"]["leads"])
    assert await next_post() == [("lead", "add", str(a)), ("lead", "add", str(b))]

    complex_answer = await sandbox.post(
        "/api/v4/leads/complex",
        json=[{"name": "c", "_embedded": {"contacts": [{"name": "Yangi"}]}}],
        headers=auth,
    )
    c = complex_answer.json()[0]
    assert await next_post() == [
        ("lead", "add", str(c["id"])),
        ("contact", "add", str(c["contact_id"])),
    ]

    unsorted = await sandbox.post("/api/v4/leads/unsorted/forms", json=[form_item()], headers=auth)
    item = unsorted.json()["_embedded"]["unsorted"][0]
    hidden_lead = item["_embedded"]["leads"][0]["id"]
    hidden_contact = item["_embedded"]["contacts"][0]["id"]
    assert await next_post() == [("lead", "add", str(hidden_lead))]  # the contact is hidden

    await sandbox.post(f"/api/v4/leads/unsorted/{item['uid']}/accept", headers=auth)
    assert await next_post() == [
        ("lead", "update", str(hidden_lead)),
        ("lead", "status", str(hidden_lead)),
        ("contact", "add", str(hidden_contact)),
    ]

    await sandbox.patch(
        f"/api/v4/leads/{a}",
        json={"status_id": SECOND_STAGE, "responsible_user_id": MANAGER},
        headers=auth,
    )
    changed = await next_post()
    assert changed == [
        ("lead", "update", str(a)),
        ("lead", "status", str(a)),
        ("lead", "responsible", str(a)),
    ]
    responsible = parse_webhook(receiver.received[-1].body).events[2].data
    assert (responsible["responsible_user_id"], responsible["old_responsible_user_id"]) == (
        str(MANAGER),
        "9100001",
    )

    await sandbox.post(
        f"/api/v4/leads/{a}/notes",
        json=[{"note_type": "common", "params": {"text": "Qo'ng'iroq qilindi"}}],
        headers=auth,
    )
    assert await next_post() == [("lead", "note", None)]
    note = parse_webhook(receiver.received[-1].body).events[0].data["note"]
    assert (note["element_id"], note["element_type"], note["note_type"], note["text"]) == (
        str(a),
        "2",
        "4",
        "Qo'ng'iroq qilindi",
    )

    await sandbox.patch(f"/api/v4/contacts/{contact}", json={"name": "Alisher N."}, headers=auth)
    assert await next_post() == [("contact", "update", str(contact))]

    # A PATCH that changes nothing announces nothing: the next POST is the contact note's.
    await sandbox.patch(f"/api/v4/contacts/{contact}", json={"name": "Alisher N."}, headers=auth)
    await sandbox.post(
        f"/api/v4/contacts/{contact}/notes",
        json=[{"note_type": "common", "params": {"text": "x"}}],
        headers=auth,
    )
    assert await next_post() == [("contact", "note", None)]
    attempts = await deliveries_until(sandbox, finished(posts))
    assert {(a["status"], a["outcome"]) for a in attempts} == {(200, "ok")}


async def test_only_subscribed_codes_are_sent_and_each_webhook_gets_its_own(
    sandbox: httpx.AsyncClient, auth: dict[str, str], receiver: Receiver
) -> None:
    with Receiver() as other:
        await subscribe(sandbox, auth, receiver.url, "add_contact")
        await subscribe(sandbox, auth, other.url, "add_lead")

        lead_id = await new_lead(sandbox, auth)
        contact_id = await new_contact(sandbox, auth, name="Z")

        (to_other,) = await other.arrived(1)
        (to_receiver,) = await receiver.arrived(1)
        assert [e.data["id"] for e in parse_webhook(to_other.body).events] == [str(lead_id)]
        assert [e.data["id"] for e in parse_webhook(to_receiver.body).events] == [str(contact_id)]
        attempts = await deliveries_until(sandbox, finished(2))
        only_other = (
            await sandbox.get("/_sandbox/webhooks/deliveries", params={"destination": other.url})
        ).json()
        assert len(attempts) == 2
        assert [a["destination"] for a in only_other] == [other.url]
        later = (
            await sandbox.get(
                "/_sandbox/webhooks/deliveries", params={"since": str(attempts[0]["seq"])}
            )
        ).json()
        assert later == attempts[1:]


async def test_the_api_answer_never_waits_for_the_webhook(
    sandbox: httpx.AsyncClient, auth: dict[str, str], receiver: Receiver
) -> None:
    await sandbox.patch("/_sandbox/settings", json={"webhook_timeout_s": 30})
    await subscribe(sandbox, auth, receiver.url, "add_lead")
    receiver.hold.clear()  # the destination takes the request and does not answer

    # Were the POST made inline, this would hang until the destination answered.
    created = await asyncio.wait_for(
        sandbox.post("/api/v4/leads", json=[{"name": "x"}], headers=auth), timeout=10
    )

    assert created.status_code == 200
    await receiver.arrived(1)  # the webhook is in flight, its answer held back
    assert (await sandbox.get("/_sandbox/webhooks/deliveries")).json() == []
    receiver.hold.set()
    (attempt,) = await deliveries_until(sandbox, finished(1))
    assert attempt["outcome"] == "ok"


async def test_a_reply_slower_than_two_seconds_is_a_failure(
    sandbox: httpx.AsyncClient, auth: dict[str, str], receiver: Receiver
) -> None:
    await subscribe(sandbox, auth, receiver.url, "add_lead")
    receiver.delay_s = 2.5

    await new_lead(sandbox, auth)

    (attempt,) = await deliveries_until(sandbox, lambda a: len(a) == 1, timeout_s=15)
    assert (attempt["status"], attempt["outcome"]) == (None, "timeout")
    assert attempt["latency_ms"] >= 1950  # amoCRM's 2 s, never less
    assert attempt["next_attempt_in_s"] == 300  # a timeout is code 0: retried at +5 min
    assert len(receiver.received) == 1


async def test_failures_are_retried_on_amocrms_schedule(
    sandbox: httpx.AsyncClient, auth: dict[str, str], receiver: Receiver
) -> None:
    await sandbox.patch("/_sandbox/settings", json=FAST_RETRIES)
    await subscribe(sandbox, auth, receiver.url, "add_lead")
    receiver.status = 503

    await new_lead(sandbox, auth)
    server_errors = await deliveries_until(sandbox, finished(1))
    receiver.status = 404
    await new_lead(sandbox, auth)
    client_errors = await deliveries_until(sandbox, finished(2))

    assert [(a["attempt"], a["status"], a["next_attempt_in_s"]) for a in server_errors] == [
        (1, 503, 300),
        (2, 503, 600),
        (3, 503, 900),
        (4, 503, 1800),
        (5, 503, None),
    ]
    assert len({a["body"] for a in server_errors}) == 1  # the same POST each time
    later = client_errors[len(server_errors) :]
    assert [(a["attempt"], a["status"], a["next_attempt_in_s"]) for a in later] == [
        (1, 404, 300),
        (2, 404, 600),
        (3, 404, None),
    ]
    assert {a["outcome"] for a in client_errors} == {"rejected"}
    assert (await sandbox.get("/_sandbox/stats")).json()["webhooks"]["failed"] == 2


async def test_a_retry_that_succeeds_ends_the_delivery(
    sandbox: httpx.AsyncClient, auth: dict[str, str], receiver: Receiver
) -> None:
    await sandbox.patch("/_sandbox/settings", json=FAST_RETRIES)
    await subscribe(sandbox, auth, receiver.url, "add_lead")
    receiver.script.extend([500, 502])

    await new_lead(sandbox, auth)

    attempts = await deliveries_until(sandbox, finished(1))
    assert [(a["status"], a["outcome"]) for a in attempts] == [
        (500, "rejected"),
        (502, "rejected"),
        (200, "ok"),
    ]
    assert (await sandbox.get("/_sandbox/stats")).json()["webhooks"]["delivered"] == 1


async def test_an_unreachable_destination_is_a_failure_without_a_status(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    await sandbox.patch("/_sandbox/settings", json=FAST_RETRIES)
    await subscribe(sandbox, auth, f"http://127.0.0.1:{closed_port}/hook", "add_lead")

    await new_lead(sandbox, auth)

    attempts = await deliveries_until(sandbox, finished(1))
    assert [(a["status"], a["outcome"]) for a in attempts] == [(None, "unreachable")] * 3
    assert attempts[0]["error"] == "ConnectError"


async def test_too_many_failures_disable_the_webhook_until_it_is_saved_again(
    sandbox: httpx.AsyncClient, auth: dict[str, str], receiver: Receiver
) -> None:
    await sandbox.patch("/_sandbox/settings", json={**FAST_RETRIES, "webhook_disable_failures": 3})
    await subscribe(sandbox, auth, receiver.url, "add_lead")
    receiver.status = 500

    await new_lead(sandbox, auth)
    attempts = await deliveries_until(sandbox, lambda a: any(x["webhook_disabled"] for x in a))

    # The 4th failure is more than 3 and is itself a failure: disabled, no 5th attempt.
    assert [(a["attempt"], a["webhook_disabled"]) for a in attempts] == [
        (1, False),
        (2, False),
        (3, False),
        (4, True),
    ]
    assert attempts[-1]["next_attempt_in_s"] is None
    listed = (await sandbox.get("/api/v4/webhooks", headers=auth)).json()
    assert listed["_embedded"]["webhooks"][0]["disabled"] is True

    await new_lead(sandbox, auth)  # nothing is sent to a disabled webhook
    stats = (await sandbox.get("/_sandbox/stats")).json()["webhooks"]
    assert (stats["dropped_events"], stats["webhooks_disabled"]) == (1, 1)
    assert len(receiver.received) == 4

    resaved = await subscribe(sandbox, auth, receiver.url, "add_lead")
    assert resaved["disabled"] is False
    receiver.status = 200
    lead_id = await new_lead(sandbox, auth)
    last = (await deliveries_until(sandbox, lambda a: a[-1]["outcome"] == "ok"))[-1]
    assert last["events"][0]["id"] == str(lead_id)


async def test_failures_older_than_the_window_do_not_count(
    sandbox: httpx.AsyncClient, auth: dict[str, str], receiver: Receiver, clock: ManualClock
) -> None:
    await sandbox.patch("/_sandbox/settings", json={**FAST_RETRIES, "webhook_disable_failures": 3})
    await subscribe(sandbox, auth, receiver.url, "add_lead")
    receiver.status = 404  # 3 attempts per delivery

    await new_lead(sandbox, auth)
    await deliveries_until(sandbox, finished(1))
    clock.advance(7201)  # those 3 failures leave amoCRM's 2-hour window
    await new_lead(sandbox, auth)
    second = await deliveries_until(sandbox, finished(2))
    assert not any(a["webhook_disabled"] for a in second)

    await new_lead(sandbox, auth)  # its first failure is the 4th within 2 hours
    third = await deliveries_until(sandbox, lambda a: a[-1]["webhook_disabled"])
    assert third[-1]["attempt"] == 1


async def test_deleting_a_webhook_stops_its_retries(
    sandbox: httpx.AsyncClient, auth: dict[str, str], receiver: Receiver
) -> None:
    await sandbox.patch("/_sandbox/settings", json={"webhook_retry_factor": 0.005})
    await subscribe(sandbox, auth, receiver.url, "add_lead")
    receiver.status = 500
    await new_lead(sandbox, auth)
    await deliveries_until(sandbox, lambda a: len(a) == 1)

    await sandbox.request(
        "DELETE", "/api/v4/webhooks", json={"destination": receiver.url}, headers=auth
    )

    deadline = asyncio.get_running_loop().time() + 10
    while (await sandbox.get("/_sandbox/stats")).json()["webhooks"]["pending"]:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.01)
    stats = (await sandbox.get("/_sandbox/stats")).json()["webhooks"]
    assert (stats["attempts"], stats["dropped_events"]) == (1, 1)
    assert len(receiver.received) == 1


async def test_reset_stops_deliveries_and_forgets_them(
    sandbox: httpx.AsyncClient, auth: dict[str, str], receiver: Receiver, state: SandboxState
) -> None:
    await subscribe(sandbox, auth, receiver.url, "add_lead")
    receiver.status = 500
    await new_lead(sandbox, auth)
    await deliveries_until(sandbox, lambda a: len(a) == 1)

    await sandbox.post("/_sandbox/reset")

    assert (await sandbox.get("/_sandbox/webhooks/deliveries")).json() == []
    assert (await sandbox.get("/_sandbox/stats")).json()["webhooks"]["posts"] == 0
    assert state.webhooks == {}


async def test_a_destination_cannot_hold_the_sender_with_an_endless_answer_body(
    sandbox: httpx.AsyncClient, auth: dict[str, str], receiver: Receiver
) -> None:
    await subscribe(sandbox, auth, receiver.url, "add_lead")
    receiver.endless_body = True  # 1 TB promised, 10 KB/s delivered

    await new_lead(sandbox, auth)

    (attempt,) = await deliveries_until(sandbox, finished(1))
    assert (attempt["status"], attempt["outcome"]) == (200, "ok")  # the status is all that counts


async def test_a_redirect_is_not_followed_and_counts_as_a_failure(
    sandbox: httpx.AsyncClient, auth: dict[str, str], receiver: Receiver
) -> None:
    await sandbox.patch("/_sandbox/settings", json=FAST_RETRIES)
    with Receiver() as elsewhere:
        await subscribe(sandbox, auth, receiver.url, "add_lead")
        receiver.status = 302
        receiver.redirect_to = elsewhere.url

        await new_lead(sandbox, auth)

        attempts = await deliveries_until(sandbox, finished(1))
        assert [(a["status"], a["outcome"]) for a in attempts] == [(302, "rejected")] * 3
        assert elsewhere.received == []
