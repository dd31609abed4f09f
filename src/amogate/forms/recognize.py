"""Which submitted field is the visitor's name, phone, email or message — without configuration.

Field names are compared case-insensitively with spaces, dashes, dots and underscores ignored,
and an English "your" in front dropped (Contact Form 7's `your-name`), against names used in
English, Uzbek and Russian (Cyrillic and Latin transliteration). `--map FIELD=TARGET` on the
form decides first. UTM tags come from `utm_*` fields and from Tilda's `COOKIES` string; click
ids (`gclid`, `yclid`, `fbclid`) go to the lead's tracking fields. Every other field is kept for
the lead's note: nothing a visitor typed is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote_plus

NAME = "name"
FIRST_NAME = "first_name"
LAST_NAME = "last_name"
PHONE = "phone"
EMAIL = "email"
COMMENT = "comment"
LEAD_NAME = "lead.name"
LEAD_PRICE = "lead.price"
FIELD_PREFIX = "field:"
TARGETS = (NAME, PHONE, EMAIL, COMMENT, LEAD_NAME, LEAD_PRICE)


def _names(words: str) -> frozenset[str]:
    return frozenset(words.split())


_KNOWN: dict[str, frozenset[str]] = {
    NAME: _names(
        "name fullname fio ism ismi ismingiz ismfamiliya imya imia imja clientname contactname "
        "customername имя фио вашеимя"
    ),
    FIRST_NAME: _names("firstname fname givenname"),
    LAST_NAME: _names("lastname lname surname familyname familiya familia фамилия"),
    PHONE: _names(
        "phone phonenumber phoneno tel telephone telefon telefonnomer telefonraqam "
        "telefonraqami telefonraqamingiz raqam raqamingiz nomer nomertelefona mobile "
        "mobilephone mob cell whatsapp телефон тел номер номертелефона мобильный"
    ),
    EMAIL: _names(
        "email mail emailaddress pochta elpochta epochta elektronpochta почта "
        "электроннаяпочта емейл имейл"
    ),
    COMMENT: _names(
        "comment comments message msg text textarea question note notes description details "
        "izoh izohlar xabar savol kommentariy kommentarii komment soobshchenie soobschenie "
        "soobshenie vopros комментарий сообщение вопрос примечание"
    ),
}
# Fields that steer the gateway or belong to a service, not to the visitor: never in the note.
SERVICE_FIELDS = frozenset(
    {
        "tranid",
        "cookies",
        "cf-turnstile-response",
        "h-captcha-response",
        "g-recaptcha-response",
        "_wpcf7",
        "_wpcf7_version",
        "_wpcf7_locale",
        "_wpcf7_unit_tag",
        "_wpcf7_container_post",
        "_wpcf7_posted_data_hash",
    }
)
CLICK_IDS = {"gclid": "GCLID", "yclid": "YCLID", "fbclid": "FBCLID"}
MAX_TRACKING = 255
_SEPARATORS = re.compile(r"[\s\-_.:()\[\]]+")
_TAG_IN_TEXT = re.compile(r"\b(utm_[a-z_]{1,40}|gclid|yclid|fbclid)=([^|&;\s]*)", re.IGNORECASE)


def normalise(name: str) -> str:
    key = _SEPARATORS.sub("", name.casefold())
    if key.startswith("your") and len(key) > 4:
        key = key[4:]
    return key


def known_target(name: str) -> str | None:
    """What a field name means without configuration (None: an ordinary field)."""
    key = normalise(name)
    for target, names in _KNOWN.items():
        if key in names:
            return target
    return None


@dataclass
class Recognized:
    """A submission sorted out: what fills the contact and the lead, and what goes to the note."""

    names: list[str] = field(default_factory=list)
    first_name: str = ""
    last_name: str = ""
    phones: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    lead_name: str = ""
    lead_price: str = ""
    utm: dict[str, str] = field(default_factory=dict)
    tracking: dict[str, str] = field(default_factory=dict)  # amoCRM tracking field code -> value
    custom_fields: list[tuple[str, str]] = field(default_factory=list)  # (code or name, value)
    other: list[tuple[str, str]] = field(default_factory=list)  # for the note


def recognize(
    pairs: Sequence[tuple[str, str]],
    field_map: Mapping[str, str],
    *,
    ignore: Sequence[str] = (),
) -> Recognized:
    """Sort `pairs` (in the order sent). `field_map` maps a submitted name (any case) to a
    target (see `TARGETS` and `field:<code or name>`); `ignore` names fields to leave out."""
    mapped = {name.casefold(): target for name, target in field_map.items()}
    skipped = {name.casefold() for name in ignore} | SERVICE_FIELDS
    found = Recognized()
    cookie_tags: list[tuple[str, str]] = []
    for name, raw in pairs:
        value = raw.strip()
        lowered = name.casefold()
        if lowered == "cookies":
            cookie_tags += tags_in_text(value)
        if lowered in skipped and lowered not in mapped:
            continue
        if not value:
            continue
        target = mapped.get(lowered) or _tag_target(lowered) or known_target(name)
        _place(found, name, value, target)
    for key, value in cookie_tags:  # a field sent on its own wins over the cookie
        _place(found, key, value, _tag_target(key.casefold()), from_cookie=True)
    return found


def _tag_target(lowered: str) -> str | None:
    if lowered.startswith("utm_") and len(lowered) > 4:
        return "utm"
    if lowered in CLICK_IDS:
        return "tracking"
    return None


def _place(
    found: Recognized, name: str, value: str, target: str | None, *, from_cookie: bool = False
) -> None:
    if target == "utm":
        key = name.casefold()[:64]
        if not (from_cookie and key in found.utm):
            found.utm[key] = value[:MAX_TRACKING]
    elif target == "tracking":
        code = CLICK_IDS[name.casefold()]
        if not (from_cookie and code in found.tracking):
            found.tracking[code] = value[:MAX_TRACKING]
    elif target == NAME:
        found.names.append(value)
    elif target == PHONE:
        found.phones.append(value)
    elif target == EMAIL:
        found.emails.append(value)
    elif target == COMMENT:
        found.comments.append(value)
    elif target in _SINGLE and not getattr(found, _SINGLE[target]):
        setattr(found, _SINGLE[target], value)
    elif target is not None and target.startswith(FIELD_PREFIX):
        found.custom_fields.append((target[len(FIELD_PREFIX) :], value))
    else:  # an ordinary field, or a second value for a one-value target: into the note
        found.other.append((name, value))


_SINGLE = {
    FIRST_NAME: "first_name",
    LAST_NAME: "last_name",
    LEAD_NAME: "lead_name",
    LEAD_PRICE: "lead_price",
}


def tags_in_text(text: str) -> list[tuple[str, str]]:
    """UTM tags and click ids inside a cookie string such as Tilda's `COOKIES`
    (`TILDAUTM=utm_source%3Dgoogle%7C%7C%7Cutm_medium%3Dcpc; _ym_uid=...`)."""
    decoded = text
    for _ in range(2):  # Tilda's cookie values are URL-encoded inside an encoded field
        decoded = unquote_plus(decoded)
    found: list[tuple[str, str]] = []
    for match in _TAG_IN_TEXT.finditer(decoded):
        if match.group(2):
            found.append((match.group(1).casefold(), match.group(2)))
    return found


def valid_target(target: str) -> bool:
    """Whether `target` is something `--map` may name."""
    if target in TARGETS:
        return True
    return target.startswith(FIELD_PREFIX) and bool(target[len(FIELD_PREFIX) :].strip())
