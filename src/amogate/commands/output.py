"""How the CLI prints: tables with a header row, times with their time zone, yes/no facts.

Every list command (`keys list`, `deliveries list`) prints one table; `auth status` prints one
`name: value` fact per line."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import typer


def utc_time(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "-"


def yes_no(value: bool) -> str:
    return "yes" if value else "no"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Columns padded to their widest cell, two spaces apart, the header first."""
    cells = [list(header), *[list(row) for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        typer.echo(line.rstrip())


def facts(pairs: Sequence[tuple[str, str]]) -> None:
    for name, value in pairs:
        typer.echo(f"{name}: {value}")
