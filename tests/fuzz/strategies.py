"""Generated lead request bodies (hypothesis strategies) shared by the property tests.

JSON of every kind, and bodies shaped like the lead request (each known key right-typed or
arbitrary, plus unknown keys), in Uzbek and Russian as well as arbitrary text.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

UZBEK = "AaBbDdEeFfGgHhIiJjKkLlMmNnOoPpQqRrSsTtUuVvXxYyZzOʻoʻGʻgʻʼ"
RUSSIAN = "АаБбВвГгДдЕеЁёЖжЗзИиЙйКкЛлМмНнОоПпРрСсТтУуФфХхЦцЧчШшЩщЪъЫыЬьЭэЮюЯяЎўҚқҒғҲҳ"
LETTERS = UZBEK + RUSSIAN
WORDS = st.text(st.sampled_from(LETTERS), min_size=1, max_size=20)
NAMES = st.lists(WORDS, min_size=1, max_size=4).map(" ".join)

texts = st.one_of(
    st.text(max_size=40),
    st.just(""),
    st.just("   "),
    NAMES,
    st.text(min_size=250, max_size=300),
)
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=10**18, max_value=10**40),
    st.integers(max_value=-(10**18)),
    st.floats(allow_nan=False),
    st.floats(),  # NaN and infinities cannot come from json.loads but are not refused either
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


def shaped(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with the request's own keys (each value right-typed or arbitrary), plus noise,
    so generation reaches the nested validators instead of stopping at the top level."""
    known = st.fixed_dictionaries(
        {}, optional={key: st.one_of(value, json_values) for key, value in fields.items()}
    )
    noise = st.dictionaries(st.text(max_size=8), json_values, max_size=2)
    return st.tuples(noise, known).map(lambda parts: {**parts[0], **parts[1]})


custom_field = shaped(
    {
        "field_id": st.integers(),
        "field_code": texts,
        "field_name": texts,
        "value": scalars,
        "values": st.lists(scalars, max_size=3),
        "enum_id": st.integers(),
        "enum_ids": st.lists(st.integers(), max_size=3),
        "enum": texts,
        "enums": st.lists(texts, max_size=3),
    }
)
lead_object = shaped(
    {
        "name": texts,
        "price": numbers,
        "status_id": st.integers(),
        "responsible_user_id": st.integers(),
        "custom_fields": st.lists(custom_field, max_size=3),
        "tags": st.lists(
            st.one_of(texts, shaped({"id": st.integers(), "name": texts})), max_size=3
        ),
    }
)
contact_object = shaped(
    {
        "name": texts,
        "first_name": texts,
        "last_name": texts,
        "phone": texts,
        "email": texts,
        "phones": st.lists(st.one_of(texts, shaped({"value": texts, "type": texts})), max_size=3),
        "emails": st.lists(st.one_of(texts, shaped({"value": texts, "type": texts})), max_size=3),
        "custom_fields": st.lists(custom_field, max_size=3),
    }
)
request_object = shaped(
    {
        "source": texts,
        "form_name": texts,
        "form_page": texts,
        "referer": texts,
        "ip": st.one_of(texts, st.ip_addresses().map(str)),
        "pipeline_id": st.integers(),
        "visitor_uid": texts,
        "lead": lead_object,
        "contact": contact_object,
        "utm": st.dictionaries(texts, scalars, max_size=4),
        "comment": texts,
    }
)

NON_BLANK = st.one_of(
    NAMES,
    st.text(min_size=1).filter(str.strip),
    st.from_regex(r"\+?[0-9][0-9 ()\-]{0,30}", fullmatch=True),
)
REACH = st.sampled_from(["name", "phone", "email"])


@st.composite
def reachable_requests(draw: st.DrawFn) -> dict[str, Any]:
    """SPEC §11: a `lead` object with a non-blank `name`, a `contact` object with at least one
    non-blank name/phone/email value; every other key and value arbitrary JSON."""
    body: dict[str, Any] = draw(
        st.one_of(request_object, st.dictionaries(st.text(max_size=8), json_values))
    )
    lead = draw(st.one_of(lead_object, st.dictionaries(st.text(max_size=8), json_values)))
    contact = draw(st.one_of(contact_object, st.dictionaries(st.text(max_size=8), json_values)))
    lead["name"] = draw(NON_BLANK)
    contact[draw(REACH)] = draw(st.one_of(NON_BLANK, st.integers(1, 10**15)))
    body["lead"], body["contact"] = lead, contact
    return body
