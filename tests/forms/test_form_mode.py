"""A form's default `mode`: kept with the form, given to each of its leads; anything but
`unsorted` or `lead` is refused when the form is made."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from amogate.forms.recognize import recognize
from amogate.forms.registry import FormProblem, NewForm, create_form
from amogate.forms.submission import FormSettings, Visit, lead_request
from amogate.storage import forms as form_store
from amogate.storage import migrate
from amogate.storage.db import Database

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


async def test_a_forms_mode_is_stored_and_refused_when_unknown(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/forms.db")
    try:
        await migrate.upgrade(db)
        async with db.transaction() as conn:
            made = await create_form(conn, NewForm("Direct", mode="lead"), NOW)
            with pytest.raises(FormProblem, match="--mode must be unsorted or lead"):
                await create_form(conn, NewForm("Bad", mode="stage"), NOW)
        async with db.read() as conn:
            row = await form_store.by_name(conn, made.name)
    finally:
        await db.dispose()
    assert row is not None
    assert row.mode == "lead"


def test_the_forms_mode_goes_into_each_lead_request() -> None:
    found = recognize([("Name", "Aziz"), ("Phone", "901234567")], {})
    direct = lead_request(found, FormSettings("Direct", 5, (), "lead"), Visit())
    plain = lead_request(found, FormSettings("Plain"), Visit())
    assert direct["mode"] == "lead"
    assert "mode" not in plain
