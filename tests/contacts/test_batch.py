"""Planning a batch: one group per person (shared keys, transitively), one search per key."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from amogate.amocrm.models import ChannelValue, ContactCard
from amogate.contacts.batch import plan_batch, with_searches
from amogate.contacts.cache import Recollection
from amogate.contacts.matching import (
    DEFAULT_DEDUP,
    Channel,
    ContactDedup,
    ContactKey,
    Person,
    Remembered,
    parse_dedup,
)

REGION = "UZ"


def person(*phones: str, emails: tuple[str, ...] = ()) -> Person:
    return Person(tuple(Channel(p) for p in phones), tuple(Channel(e) for e in emails))


def phone(value: str) -> ContactKey:
    return ContactKey("phone", value)


def email(value: str) -> ContactKey:
    return ContactKey("email", value)


def test_leads_sharing_a_phone_or_an_email_transitively_are_one_person() -> None:
    plan = plan_batch(
        [
            person("+998901111111"),
            person("+998902222222"),
            person("+998901111111", emails=("olga@example.uz",)),
            person(emails=("OLGA@example.uz",)),
            person(),
            person("+998902222222", "+998903333333"),
        ],
        DEFAULT_DEDUP,
        REGION,
    )

    assert [g.members for g in plan.groups] == [(0, 2, 3), (1, 5), (4,)]
    first = plan.group_of(3)
    assert first.creator == 0
    assert first.person == person("+998901111111", emails=("olga@example.uz",))
    assert first.keys == (phone("+998901111111"), email("olga@example.uz"))
    assert plan.group_of(5).keys == (phone("+998902222222"), phone("+998903333333"))
    assert plan.group_of(4).keys == ()


def test_a_later_lead_can_join_two_groups_into_one() -> None:
    plan = plan_batch(
        [
            person("+998901111111"),
            person(emails=("a@b.uz",)),
            person("+998901111111", emails=("a@b.uz",)),
        ],
        DEFAULT_DEDUP,
        REGION,
    )

    assert [g.members for g in plan.groups] == [(0, 1, 2)]


def test_only_the_modes_values_join_leads() -> None:
    leads = [
        person("+998901111111", emails=("a@b.uz",)),
        person("+998902222222", emails=("a@b.uz",)),
    ]

    by_phone = plan_batch(leads, ContactDedup(phone=True, email=False), REGION)
    off = plan_batch(leads, parse_dedup("off"), REGION)

    assert [g.members for g in by_phone.groups] == [(0,), (1,)]
    assert by_phone.keys == (phone("+998901111111"), phone("+998902222222"))
    assert [g.members for g in off.groups] == [(0,), (1,)]
    assert off.searches() == {}


def test_one_search_per_distinct_phone_or_email_of_the_batch() -> None:
    leads = [person("+998901234567", emails=("a@b.uz",)) for _ in range(30)]
    leads += [person("+998 90 123 45 67"), person(emails=("c@d.uz",)), person("+79995551122")]

    plan = plan_batch(leads, DEFAULT_DEDUP, REGION)

    assert plan.searches() == {
        "901234567": (phone("+998901234567"),),
        "a@b.uz": (email("a@b.uz"),),
        "c@d.uz": (email("c@d.uz"),),
        "9995551122": (phone("+79995551122"),),
    }


def test_no_search_for_a_key_searched_a_moment_ago_or_a_person_with_a_remembered_contact() -> None:
    plan = plan_batch(
        [
            person("+998901111111", emails=("a@b.uz",)),
            person("+998902222222"),
            person("+998903333333"),
        ],
        DEFAULT_DEDUP,
        REGION,
    )
    known = Recollection(
        searched={phone("+998902222222"): ()},
        links={email("a@b.uz"): Remembered(77, at=1.0)},
    )

    assert plan.searches(known) == {"903333333": (phone("+998903333333"),)}


def test_a_group_is_decided_on_the_hits_and_links_of_all_its_keys() -> None:
    plan = plan_batch(
        [
            person("+998901111111"),
            person("+998901111111", emails=("a@b.uz",)),
            person("+998902222222"),
        ],
        DEFAULT_DEDUP,
        REGION,
    )
    holder = ContactCard(5, "A", 10, (), (ChannelValue("A@B.uz"),))
    known = with_searches(
        Recollection(links={phone("+998902222222"): Remembered(9, at=1.0)}),
        {phone("+998901111111"): (), email("a@b.uz"): (holder,)},
    )

    first = plan.decide(plan.group_of(0), known, REGION)
    second = plan.decide(plan.group_of(2), known, REGION)
    nobody = plan.decide(plan.group_of(0), Recollection(), REGION)

    assert first is not None
    assert (first.contact_id, first.remembered) == (5, False)
    assert second is not None
    assert (second.contact_id, second.remembered) == (9, True)
    assert nobody is None


NUMBERS = st.sampled_from([f"+99890{n}000000" for n in range(1, 8)])
EMAILS = st.sampled_from([f"p{n}@example.uz" for n in range(6)])
PEOPLE = st.lists(
    st.builds(
        lambda phones, emails: person(*phones, emails=tuple(emails)),
        st.lists(NUMBERS, max_size=2),
        st.lists(EMAILS, max_size=2),
    ),
    max_size=50,
)


@settings(deadline=None)  # behaviour, not speed: the machine is shared
@given(leads=PEOPLE)
def test_groups_are_exactly_the_leads_connected_by_shared_keys(leads: list[Person]) -> None:
    plan = plan_batch(leads, DEFAULT_DEDUP, REGION)

    members = [m for g in plan.groups for m in g.members]
    assert sorted(members) == list(range(len(leads)))
    for group in plan.groups:
        assert group.members == tuple(sorted(group.members))
        assert set(group.keys) == {k for m in group.members for k in leads[m].keys_for()}
    for a in range(len(leads)):
        for b in range(len(leads)):
            if set(leads[a].keys_for()) & set(leads[b].keys_for()):
                assert plan.group_of(a) is plan.group_of(b)
    for one in plan.groups:
        for other in plan.groups:
            if one is not other:
                assert not set(one.keys) & set(other.keys)
    assert [g.creator for g in plan.groups] == sorted(g.creator for g in plan.groups)
    assert len(plan.searches()) == len({k for p in leads for k in p.keys_for()})
