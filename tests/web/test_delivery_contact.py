"""The admin page's delivery detail names the lead's amoCRM contact and whether it was an
existing one (found by phone or email) or created for the lead."""

from __future__ import annotations

import re

from amogate.settings import Settings
from tests.web.test_pages import LEADS, admin_gateway, lead


async def test_a_returning_customers_delivery_shows_the_existing_contact(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    async with admin_gateway(settings) as h:
        first = await h.gateway.post(LEADS, json=lead("First visit"), headers=api_headers)
        again = await h.gateway.post(LEADS, json=lead("Second visit"), headers=api_headers)
        assert first.status_code == again.status_code == 200, again.text
        ids = [r.json()["data"] for r in (first, again)]
        pages = [(await h.gateway.get(f"/admin/deliveries/{d['delivery_id']}")).text for d in ids]
    contact_id = ids[0]["contact_id"]
    assert ids[1]["contact_id"] == contact_id
    assert re.search(rf'id="amo-contact">#{contact_id} · new contact<', pages[0])
    assert re.search(
        rf'id="amo-contact">#{contact_id} · existing contact \(matched by phone or email\)<',
        pages[1],
    )
