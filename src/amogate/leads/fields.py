"""Where the account's field lists come from: the info cache (`app.state.info`)."""

from __future__ import annotations

from typing import Any, Protocol, cast

from amogate.errors import ServiceUnavailable
from amogate.leads.mapping import AccountFields


class FieldLists(Protocol):
    async def lead_fields(self) -> list[dict[str, Any]]: ...

    async def contact_fields(self) -> list[dict[str, Any]]: ...


async def account_fields(source: FieldLists) -> AccountFields:
    """Both lists; raises the source's error (a `GatewayError` from the cache) when amoCRM
    cannot give them and no copy is kept."""
    return AccountFields(lead=await source.lead_fields(), contact=await source.contact_fields())


class AppFields:
    """The field lists of whatever info cache the app holds right now (`app.state.info`)."""

    def __init__(self, state: Any) -> None:
        self._state = state

    def _cache(self) -> FieldLists:
        cache = getattr(self._state, "info", None)
        if cache is None:
            raise ServiceUnavailable("amoCRM is not configured")
        assert hasattr(cache, "lead_fields")
        return cast(FieldLists, cache)

    async def lead_fields(self) -> list[dict[str, Any]]:
        return await self._cache().lead_fields()

    async def contact_fields(self) -> list[dict[str, Any]]:
        return await self._cache().contact_fields()
