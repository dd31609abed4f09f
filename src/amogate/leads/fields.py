"""Where an account's field lists come from: its info cache."""

from __future__ import annotations

from typing import Any, Protocol

from amogate.leads.mapping import AccountFields


class FieldLists(Protocol):
    async def lead_fields(self) -> list[dict[str, Any]]: ...

    async def contact_fields(self) -> list[dict[str, Any]]: ...


async def account_fields(source: FieldLists) -> AccountFields:
    """Both lists; raises the source's error (a `GatewayError` from the cache) when amoCRM
    cannot give them and no copy is kept."""
    return AccountFields(lead=await source.lead_fields(), contact=await source.contact_fields())
