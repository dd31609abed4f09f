"""amoCRM's urlencoded webhook bodies ↔ JSON events (amocrm-api.md §4.11)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amogate.amocrm.webhook_format import (
    MAX_BODY_BYTES,
    MAX_DEPTH,
    MAX_EVENTS,
    MAX_FIELDS,
    WebhookEvent,
    WebhookFormatError,
    WebhookPost,
    encode_webhook,
    parse_webhook,
)

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ROUND_TRIPS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# The captured example of amocrm-api.md §4.11, line by line, as amoCRM writes it.
CAPTURED_STATUS_LEAD = """\
leads[status][0][id]=15318175
leads[status][0][status_id]=67548619
leads[status][0][old_status_id]=67548607
leads[status][0][pipeline_id]=8572511
leads[status][0][price]=1000
leads[status][0][responsible_user_id]=12345678
leads[status][0][custom_fields][0][id]=1246489
leads[status][0][custom_fields][0][name]=Select
leads[status][0][custom_fields][0][values][0][value]=2
leads[status][0][custom_fields][0][values][0][enum]=908107
leads[status][0][created_at]=1726572752
leads[status][0][updated_at]=1726572758
account[subdomain]=test
account[id]=1312313
account[_links][self]=https://test.kommo.com"""


def form(lines: str) -> bytes:
    """`key=value` lines as amoCRM's body: keys and values percent-encoded, joined by &."""
    pairs = [line.split("=", 1) for line in lines.strip().splitlines()]
    return urlencode([(k, v) for k, v in pairs]).encode("ascii")


def test_the_captured_status_change_parses_to_one_event_with_strings_and_lists() -> None:
    post = parse_webhook(form(CAPTURED_STATUS_LEAD))

    assert post.as_json() == {
        "events": [
            {
                "entity": "lead",
                "action": "status",
                "data": {
                    "id": "15318175",
                    "status_id": "67548619",
                    "old_status_id": "67548607",
                    "pipeline_id": "8572511",
                    "price": "1000",
                    "responsible_user_id": "12345678",
                    "custom_fields": [
                        {
                            "id": "1246489",
                            "name": "Select",
                            "values": [{"value": "2", "enum": "908107"}],
                        }
                    ],
                    "created_at": "1726572752",
                    "updated_at": "1726572758",
                },
            }
        ],
        "account": {
            "subdomain": "test",
            "id": "1312313",
            "_links": {"self": "https://test.kommo.com"},
        },
    }


def test_the_captured_body_survives_encoding_and_parsing_again() -> None:
    post = parse_webhook(form(CAPTURED_STATUS_LEAD))

    assert parse_webhook(encode_webhook(post.events, post.account)) == post
    assert encode_webhook(post.events, post.account) == form(CAPTURED_STATUS_LEAD)


def test_several_entities_actions_and_items_in_one_post_keep_their_order() -> None:
    body = form(
        """
leads[add][0][id]=101
leads[add][0][name]=Заявка с сайта
leads[add][1][id]=102
leads[add][1][name]=Buyurtma: O‘zbekiston
leads[update][0][id]=99
contacts[add][0][id]=201
contacts[add][0][type]=contact
contacts[add][0][name]=Алишер Навоий
contacts[add][0][custom_fields][0][id]=750001
contacts[add][0][custom_fields][0][code]=PHONE
contacts[add][0][custom_fields][0][values][0][value]=+998 90 123-45-67
contacts[add][0][custom_fields][0][values][0][enum]=800001
contacts[add][0][custom_fields][0][values][1][value]=+998 71 200-00-00
contacts[add][0][linked_leads_id][101]=101
contacts[add][1][id]=301
contacts[add][1][type]=company
contacts[add][1][name]=ACME & Co = 100%
tasks[add][0][id]=401
tasks[add][0][text]=Перезвонить
unsorted[delete][0][uid]=4278accf80c5
unsorted[delete][0][action]=accept
unsorted[delete][0][accept_result][leads][0]=15258873
leads[note][0][note][id]=501
leads[note][0][note][element_id]=101
leads[note][0][note][element_type]=2
leads[note][0][note][note_type]=4
leads[note][0][note][text]=Izoh: 50 000 so‘m
leads[status][0][id]=101
leads[status][0][custom_fields][0][id]=700010
leads[status][0][custom_fields][0][values][0]=1729717200
account[subdomain]=sandbox
"""
    )

    post = parse_webhook(body)

    assert [(e.entity, e.action, e.data.get("id")) for e in post.events] == [
        ("lead", "add", "101"),
        ("lead", "add", "102"),
        ("lead", "update", "99"),
        ("lead", "note", None),
        ("lead", "status", "101"),
        ("contact", "add", "201"),
        ("company", "add", "301"),
        ("task", "add", "401"),
        ("unsorted", "delete", None),
    ]
    by_id = {e.data.get("id"): e.data for e in post.events}
    assert by_id["102"]["name"] == "Buyurtma: O‘zbekiston"
    contact = by_id["201"]
    assert contact["name"] == "Алишер Навоий"
    assert contact["custom_fields"][0]["values"] == [
        {"value": "+998 90 123-45-67", "enum": "800001"},
        {"value": "+998 71 200-00-00"},
    ]
    assert contact["linked_leads_id"] == ["101"]  # keyed by lead id: a list of the ids
    assert by_id["301"]["name"] == "ACME & Co = 100%"
    assert by_id["101"]["custom_fields"][0]["values"] == ["1729717200"]  # a date: bare value
    note = post.events[3].data
    assert note == {
        "note": {
            "id": "501",
            "element_id": "101",
            "element_type": "2",
            "note_type": "4",
            "text": "Izoh: 50 000 so‘m",
        }
    }
    unsorted = post.events[-1].data
    assert unsorted["action"] == "accept"
    assert unsorted["accept_result"] == {"leads": ["15258873"]}
    assert post.account == {"subdomain": "sandbox"}


def test_companies_under_their_own_key_and_unknown_entities_are_kept() -> None:
    body = form(
        """
companies[update][0][id]=7
talk[add][0][talk_id]=12
catalogs[add][0][id]=3
"""
    )

    events = parse_webhook(body).events

    assert [(e.entity, e.action) for e in events] == [
        ("company", "update"),
        ("talk", "add"),
        ("catalogs", "add"),
    ]


def test_values_stay_as_sent_including_plus_signs_empty_values_and_raw_utf8() -> None:
    body = (
        "leads%5Badd%5D%5B0%5D%5Bname%5D=Ivan+Petrov"
        "&leads%5Badd%5D%5B0%5D%5Bphone%5D=%2B998901234567"
        "&leads%5Badd%5D%5B0%5D%5Bprice%5D="
        "&leads%5Badd%5D%5B0%5D%5Bnote%5D=Привет"
    ).encode()

    (event,) = parse_webhook(body).events

    assert event.data == {
        "name": "Ivan Petrov",
        "phone": "+998901234567",
        "price": "",
        "note": "Привет",
    }


def test_empty_brackets_append_as_php_does() -> None:
    (event,) = parse_webhook(b"leads[add][0][tags][]=a&leads[add][0][tags][]=b").events

    assert event.data == {"tags": ["a", "b"]}


def test_encoding_writes_companies_under_contacts_and_php_scalars() -> None:
    body = encode_webhook(
        [
            WebhookEvent("company", "add", {"id": "5"}),
            WebhookEvent("lead", "add", {"id": 7, "flag": True, "off": False, "gone": None}),
        ],
        {"id": "1"},
    )

    assert body.decode() == (
        "contacts%5Badd%5D%5B0%5D%5Bid%5D=5&contacts%5Badd%5D%5B0%5D%5Btype%5D=company"
        "&leads%5Badd%5D%5B0%5D%5Bid%5D=7&leads%5Badd%5D%5B0%5D%5Bflag%5D=1"
        "&leads%5Badd%5D%5B0%5D%5Boff%5D=0&account%5Bid%5D=1"
    )
    assert [e.entity for e in parse_webhook(body).events] == ["company", "lead"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty body"),
        (b"   ", "empty body"),
        (b"\xff\xfe=1", "body is not UTF-8"),
        (b"leads[add][0][id]=%ff", "body is not UTF-8"),
        (b"leads", "not a form body"),
        (b"leads[add][0][id]=1&", "not a form body"),
        (b"=1", "a key must start with a name"),
        (b"]x[add][0][id]=1", "a key must start with a name"),
        (b"leads[add][0][id=1", "unclosed bracket"),
        (b"leads[add][0][id]x=1", "text after a closing bracket"),
        (b"leads[add][0][i[d]]=1", "nested bracket"),
        (b"leads[add][0][id]=1&leads[add][0][id]=2", "repeated"),
        (b"leads[add][0][id]=1&leads[add][0][id][x]=2", "both a value and a group"),
        (b"leads[add][0][id][x]=1&leads[add][0][id]=2", "both a value and a group"),
        (b"leads=1", "must hold actions"),
        (b"leads[0][0][id]=1", "must hold actions"),
        (b"leads[add]=1", "numbered items"),
        (b"leads[add][first][id]=1", "numbered items"),
        (b"leads[add][0]=1", "an item must be a group"),
        (b"account=1", "account must be a group"),
        (b"account[0]=1", "account must be a group"),
        (b"leads[add][0][id]=1&leads[add][00][id]=2", "numbered items"),
    ],
)
def test_malformed_bodies_raise_one_clear_error(body: bytes, reason: str) -> None:
    with pytest.raises(WebhookFormatError, match=reason.replace("[", r"\[")):
        parse_webhook(body)


def test_error_messages_never_quote_the_body() -> None:
    secret = "alisher@example.uz"
    for body in (f"{secret}".encode(), f"leads[{secret}=1".encode(), f"a={secret}&b".encode()):
        with pytest.raises(WebhookFormatError) as caught:
            parse_webhook(body)
        assert secret not in str(caught.value)


def test_limits_bound_what_a_body_can_cost() -> None:
    deep = "leads[add][0]" + "[x]" * (MAX_DEPTH - 3)
    deeper = deep + "[x]"
    too_many_fields = "&".join(f"leads[add][0][f{i}]=1" for i in range(MAX_FIELDS + 1))
    too_many_items = "&".join(f"leads[add][{i}][id]=1" for i in range(MAX_EVENTS + 1))
    huge = b"leads[add][0][id]=" + b"1" * MAX_BODY_BYTES

    assert parse_webhook(f"{deep}=1".encode()).events[0].entity == "lead"
    with pytest.raises(WebhookFormatError, match="deeper than"):
        parse_webhook(f"{deeper}=1".encode())
    with pytest.raises(WebhookFormatError, match="not a form body"):
        parse_webhook(too_many_fields.encode())
    with pytest.raises(WebhookFormatError, match=f"more than {MAX_EVENTS} items"):
        parse_webhook(too_many_items.encode())
    with pytest.raises(WebhookFormatError, match="larger than"):
        parse_webhook(huge)


def test_a_huge_numeric_key_is_an_ordinary_key_not_an_index() -> None:
    key = "9" * 5000  # int() of this would raise past Python's digit limit
    (event,) = parse_webhook(f"leads[add][0][{key}]=1".encode()).events

    assert event.data == {key: "1"}


# --- properties ------------------------------------------------------------------------------

names = st.text(
    st.characters(blacklist_characters="[]", codec="utf-8"), min_size=1, max_size=8
).filter(lambda s: not s.isdigit())
leaves = st.text(st.characters(codec="utf-8"), max_size=12)
values = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=3),
        st.dictionaries(names, children, min_size=1, max_size=3),
    ),
    max_leaves=12,
)
items = st.dictionaries(names, values, min_size=1, max_size=4)
entities = st.sampled_from(["lead", "contact", "customer", "task", "unsorted", "talk"])
actions = st.sampled_from(["add", "update", "status", "responsible", "delete", "note"])
events = st.lists(st.builds(WebhookEvent, entities, actions, items), max_size=6)
accounts = st.dictionaries(names.filter(lambda n: n != "account"), values, max_size=3)


def grouped(evts: list[WebhookEvent]) -> list[WebhookEvent]:
    """Events in the order a body can express: by entity key, then action, first seen first."""
    keys: dict[str, dict[str, list[WebhookEvent]]] = {}
    for e in evts:
        key = {"lead": "leads", "contact": "contacts", "customer": "customers"}.get(
            e.entity, e.entity
        )
        keys.setdefault(key, {}).setdefault(e.action, []).append(e)
    return [e for actions_ in keys.values() for group in actions_.values() for e in group]


@ROUND_TRIPS
@given(events, accounts)
def test_encoding_then_parsing_gives_the_events_back(
    evts: list[WebhookEvent], account: dict[str, Any]
) -> None:
    evts = [e for e in evts if not (e.entity == "contact" and "type" in e.data)]
    if not evts and not account:
        return

    post = parse_webhook(encode_webhook(evts, account))

    assert post == WebhookPost(grouped(evts), account)


@FUZZ
@given(st.binary(max_size=600))
def test_no_byte_string_makes_the_parser_raise_anything_but_its_error(body: bytes) -> None:
    try:
        post = parse_webhook(body)
    except WebhookFormatError:
        return
    assert isinstance(post, WebhookPost)


segment = st.one_of(
    st.sampled_from(["leads", "contacts", "account", "add", "status", "0", "1", "", "id", "00"]),
    st.text(max_size=4),
)
raw_keys = st.lists(segment, min_size=1, max_size=MAX_DEPTH + 2).map(
    lambda parts: parts[0] + "".join(f"[{p}]" for p in parts[1:])
)
mangled = st.one_of(raw_keys, raw_keys.map(lambda k: k[:-1]), raw_keys.map(lambda k: k + "]x"))


@ROUND_TRIPS
@given(st.lists(st.tuples(mangled, st.text(max_size=6)), max_size=12), st.booleans())
def test_no_bracket_soup_makes_the_parser_raise_anything_but_its_error(
    pairs: list[tuple[str, str]], quoted: bool
) -> None:
    if quoted:
        body = urlencode(pairs).encode()
    else:
        body = "&".join(f"{quote(k, safe='[]')}={quote(v)}" for k, v in pairs).encode()
    try:
        post = parse_webhook(body)
    except WebhookFormatError:
        return
    assert all(isinstance(e.data, dict) for e in post.events)
