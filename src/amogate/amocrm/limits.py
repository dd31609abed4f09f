"""Lengths of custom-field values amoCRM's API takes.

Observed, not documented: the API refuses a value longer than 256 characters in a `text` field
(the web interface takes more; amocrm/amocrm-api-php issues #224 and #400), and the same limit is
assumed for the other one-line kinds. The limit of `textarea` is not published; 10,000 is our
assumption. The gateway cuts values to these lengths (keeping the full text in the lead's note)
and the sandbox refuses longer ones the way amoCRM does.
"""

from __future__ import annotations

TEXT_VALUE_MAX = 256
TEXTAREA_VALUE_MAX = 10_000

VALUE_MAX_BY_TYPE: dict[str, int] = {
    "text": TEXT_VALUE_MAX,
    "url": TEXT_VALUE_MAX,
    "streetaddress": TEXT_VALUE_MAX,
    "tracking_data": TEXT_VALUE_MAX,
    "multitext": TEXT_VALUE_MAX,
    "textarea": TEXTAREA_VALUE_MAX,
}


def value_max(field_type: str) -> int | None:
    """The longest text a field of this type takes, or None when amoCRM sets no known limit."""
    return VALUE_MAX_BY_TYPE.get(field_type)
