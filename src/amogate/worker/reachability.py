"""Is amoCRM answering? Judged from the worker's latest recorded attempts, so every process
sharing the database (and /health/ready, the admin page) sees the same answer without calling
amoCRM itself.

amoCRM is taken as not answering while the newest attempts are transient failures without an
answer or with a 5xx (connection refused or reset, timeouts, 500-504). Any other outcome — a
lead created, a 400, a 401, a 403 block, a 429 — means amoCRM answered. Before the first
attempt nothing is known.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from amogate.storage.deliveries import Attempt


@dataclass(frozen=True)
class Reachability:
    known: bool  # False: no attempt recorded yet
    answering: bool
    since: datetime | None = None  # the first failure of the current run of failures
    last_status: int | None = None  # the newest failure's HTTP status (None: no answer)

    @property
    def down(self) -> bool:
        return self.known and not self.answering

    def describe(self) -> str:
        """One line for people: "ok", or since when amoCRM is not answering and how."""
        if not self.down or self.since is None:
            return "ok"
        how = "no answer" if self.last_status is None else f"HTTP {self.last_status}"
        when = self.since.isoformat(timespec="seconds")
        return (
            f"amoCRM is not answering since {when} (last attempt: {how}); "
            "leads are kept and retried"
        )


def no_answer(attempt: Attempt) -> bool:
    status = attempt.http_status
    return attempt.outcome == "transient" and (status is None or status >= 500)


def assess(newest_first: Sequence[Attempt]) -> Reachability:
    if not newest_first:
        return Reachability(known=False, answering=True)
    failures = []
    for attempt in newest_first:
        if not no_answer(attempt):
            break
        failures.append(attempt)
    if not failures:
        return Reachability(known=True, answering=True)
    return Reachability(
        known=True,
        answering=False,
        since=failures[-1].started_at,
        last_status=failures[0].http_status,
    )
