"""The intake's answer as its idempotency row keeps it, and as rows of earlier releases hold it."""

from __future__ import annotations

import pytest

from amogate.leads.service import IntakeAnswer

QUEUED = {"delivery_id": "d1", "status": "queued"}
DELIVERED = {"delivery_id": "d1", "status": "delivered", "lead_id": 7}


@pytest.mark.parametrize(
    "answer",
    [
        IntakeAnswer("delivered", DELIVERED),
        IntakeAnswer("queued", QUEUED),
        IntakeAnswer("refused", {"lead.price": "Bad price."}),
    ],
)
def test_a_stored_answer_comes_back_the_same_and_marked_replayed(answer: IntakeAnswer) -> None:
    status, stored = answer.stored()
    assert status == {"delivered": 200, "queued": 202, "refused": 422}[answer.outcome]
    assert IntakeAnswer.from_stored(stored) == IntakeAnswer(answer.outcome, answer.data, True)


@pytest.mark.parametrize(
    ("envelope", "expected"),
    [
        (
            {"success": True, "message": "Unsorted lead created successfully", "data": DELIVERED},
            IntakeAnswer("delivered", DELIVERED, True),
        ),
        (
            {"success": True, "message": "Lead accepted and queued for delivery", "data": QUEUED},
            IntakeAnswer("queued", QUEUED, True),
        ),
        (
            {"success": False, "error": "Validation failed", "details": {"request": "no"}},
            IntakeAnswer("refused", {"request": "no"}, True),
        ),
    ],
)
def test_an_answer_stored_by_an_earlier_release_is_replayed_as_it_was(
    envelope: dict[str, object], expected: IntakeAnswer
) -> None:
    assert IntakeAnswer.from_stored(envelope) == expected
