"""The lead request (`POST /api/v1/leads/unsorted`) and its validation — the one place for it.

The original gateway's fields and messages are kept: `lead` ("Lead object is required"),
`lead.name` ("Lead name is required"), `contact` ("Contact object is required" / "At least one
contact field (name, phone, email) is required"). Every problem is reported at once, keyed by
dotted path. Extensions (custom fields by code or name, select values by label, several phones
and emails, contact custom fields, status and responsible user, visitor_uid) are validated here
for shape; names and labels are resolved against the account's fields at intake.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from amogate.errors import ValidationFailed
from amogate.leads.phones import PhoneWithoutDigits, has_digits

MAX_TEXT = 255
MAX_URL = 2048
MAX_COMMENT = 20_000
MAX_LIST = 50
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")

# Messages the original gateway used (its users' code may match on them).
LEAD_REQUIRED = "Lead object is required"
LEAD_NAME_REQUIRED = "Lead name is required"
CONTACT_REQUIRED = "Contact object is required"
CONTACT_FIELD_REQUIRED = "At least one contact field (name, phone, email) is required"

Scalar = str | int | float | bool


class _Model(BaseModel):
    # Unknown keys are ignored, as the original gateway did, so existing forms keep working.
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class CustomFieldIn(_Model):
    """One custom field value. The field is named by `field_id`, `field_code` or `field_name`;
    the value by `value`/`values` (text, number, flag, date), `enum_id`/`enum_ids` or the
    option labels `enum`/`enums`."""

    field_id: int | None = Field(default=None, gt=0)
    field_code: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT)
    field_name: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT)
    value: Scalar | None = None
    values: list[Scalar] | None = Field(default=None, max_length=MAX_LIST)
    enum_id: int | None = Field(default=None, gt=0)
    enum_ids: list[int] | None = Field(default=None, max_length=MAX_LIST)
    enum: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT)
    enums: list[str] | None = Field(default=None, max_length=MAX_LIST)

    @model_validator(mode="after")
    def _named_and_valued(self) -> CustomFieldIn:
        if self.field_id is None and not self.field_code and not self.field_name:
            raise ValueError("Custom field needs field_id, field_code or field_name")
        given = [
            self.value is not None,
            bool(self.values),
            self.enum_id is not None,
            bool(self.enum_ids),
            self.enum is not None,
            bool(self.enums),
        ]
        if not any(given):
            raise ValueError(
                "Custom field needs a value: value, values, enum_id, enum_ids, enum or enums"
            )
        return self

    @property
    def reference(self) -> str:
        """How the caller named the field, for error messages."""
        if self.field_id is not None:
            return f"field_id {self.field_id}"
        if self.field_code:
            return f"field_code {self.field_code!r}"
        return f"field_name {self.field_name!r}"


class TagIn(_Model):
    id: int | None = Field(default=None, gt=0)
    name: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT)

    @model_validator(mode="after")
    def _has_id_or_name(self) -> TagIn:
        if self.id is None and not self.name:
            raise ValueError("Tag needs a name or an id")
        return self


MAX_PRICE = 10**12
# Bounds on each member: bounds on the whole union appear in /openapi.json as "ge"/"le", which
# JSON Schema does not know, so clients (and schema-driven tests) saw an unbounded price.
Price = Annotated[int, Field(ge=0, le=MAX_PRICE)] | Annotated[float, Field(ge=0, le=MAX_PRICE)]


class LeadIn(_Model):
    name: str = Field(min_length=1, max_length=MAX_TEXT)
    price: Price | None = None
    status_id: int | None = Field(default=None, gt=0)
    responsible_user_id: int | None = Field(default=None, gt=0)
    custom_fields: list[CustomFieldIn] = Field(default_factory=list, max_length=MAX_LIST)
    tags: list[TagIn] = Field(default_factory=list, max_length=MAX_LIST)

    @field_validator("tags", mode="before")
    @classmethod
    def _plain_tags(cls, value: Any) -> Any:
        # The original accepted plain strings: ["website", "hot"].
        if isinstance(value, list):
            return [{"name": item} if isinstance(item, str) else item for item in value]
        return value


class PhoneIn(_Model):
    value: str = Field(min_length=1, max_length=64)
    type: str = Field(default="WORK", pattern=r"^(WORK|WORKDD|MOB|FAX|HOME|OTHER)$")

    @field_validator("value")
    @classmethod
    def _has_digits(cls, value: str) -> str:
        if not has_digits(value):
            raise PhoneWithoutDigits("Phone number must contain digits")
        return value


class EmailIn(_Model):
    value: str = Field(min_length=3, max_length=MAX_TEXT)
    type: str = Field(default="WORK", pattern=r"^(WORK|PRIV|OTHER)$")

    @field_validator("value")
    @classmethod
    def _email(cls, value: str) -> str:
        return _valid_email(value)


class ContactIn(_Model):
    name: str | None = Field(default=None, max_length=MAX_TEXT)
    first_name: str | None = Field(default=None, max_length=MAX_TEXT)
    last_name: str | None = Field(default=None, max_length=MAX_TEXT)
    phone: str | None = Field(default=None, max_length=64)
    email: str | None = Field(default=None, max_length=MAX_TEXT)
    phones: list[PhoneIn] = Field(default_factory=list, max_length=10)
    emails: list[EmailIn] = Field(default_factory=list, max_length=10)
    custom_fields: list[CustomFieldIn] = Field(default_factory=list, max_length=MAX_LIST)

    @field_validator("phones", "emails", mode="before")
    @classmethod
    def _plain_strings(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"value": item} if isinstance(item, str) else item for item in value]
        return value

    @field_validator("phone")
    @classmethod
    def _phone_has_digits(cls, value: str | None) -> str | None:
        if value and not has_digits(value):
            raise PhoneWithoutDigits("Phone number must contain digits")
        return value or None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return _valid_email(value) if value else None

    @model_validator(mode="after")
    def _has_something(self) -> ContactIn:
        if not (
            self.name
            or self.first_name
            or self.last_name
            or self.phone
            or self.email
            or self.phones
            or self.emails
        ):
            raise ValueError(CONTACT_FIELD_REQUIRED)
        return self


class LeadRequest(_Model):
    source: str | None = Field(default=None, max_length=MAX_TEXT)
    form_name: str | None = Field(default=None, max_length=MAX_TEXT)
    form_page: str | None = Field(default=None, max_length=MAX_URL)
    referer: str | None = Field(default=None, max_length=MAX_URL)
    ip: str | None = Field(default=None, max_length=64)
    pipeline_id: int | None = Field(default=None, gt=0)
    visitor_uid: str | None = Field(default=None, max_length=MAX_TEXT)
    lead: LeadIn
    contact: ContactIn
    utm: dict[str, str] = Field(default_factory=dict, max_length=20)
    comment: str | None = Field(default=None, max_length=MAX_COMMENT)

    @field_validator("ip")
    @classmethod
    def _ip(cls, value: str | None) -> str | None:
        if value:
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise ValueError("ip must be an IPv4 or IPv6 address") from None
        return value or None

    @field_validator("utm", mode="before")
    @classmethod
    def _utm_values_as_text(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                str(k).strip().lower(): (str(v) if isinstance(v, int | float) else v)
                for k, v in value.items()
                if v is not None and v != ""
            }
        return value

    @field_validator("utm")
    @classmethod
    def _utm_limits(cls, value: dict[str, str]) -> dict[str, str]:
        for key, text in value.items():
            if not key or len(key) > 64:
                raise ValueError("UTM keys must be 1-64 characters")
            if len(text) > MAX_TEXT:
                raise ValueError(f"{key} must be at most {MAX_TEXT} characters")
        return value


def _valid_email(value: str) -> str:
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        raise ValueError("Email address is not valid") from None


# --- turning pydantic's errors into the original gateway's details --------------------------


def _message(path: str, error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    if path == "lead":
        return (
            LEAD_REQUIRED
            if kind in ("missing", "model_type", "model_attributes_type")
            else ("Lead must be an object")
        )
    if path == "lead.name" and kind in ("missing", "string_too_short", "string_type"):
        return LEAD_NAME_REQUIRED
    if path == "contact" and kind in ("missing",):
        return CONTACT_REQUIRED
    if path == "contact" and kind in ("model_type", "model_attributes_type"):
        return CONTACT_REQUIRED
    message = str(error.get("msg", "Invalid value"))
    # pydantic prefixes messages of ValueErrors raised in validators.
    return message.removeprefix("Value error, ")


def _dotted(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "request"


def parse_lead_request(data: Any) -> LeadRequest:
    """Validate a decoded JSON body; ValidationFailed lists every problem by dotted path."""
    if not isinstance(data, dict):
        raise ValidationFailed(details={"request": "Request body must be a JSON object"})
    try:
        return LeadRequest.model_validate(data)
    except ValidationError as exc:
        details: dict[str, str] = {}
        for error in exc.errors(include_url=False):
            loc = tuple(part for part in error["loc"] if not _is_union_tag(part))
            path = _dotted(loc)
            details.setdefault(path, _message(path, dict(error)))
        raise ValidationFailed(details=details) from None


def _is_union_tag(part: Any) -> bool:
    # pydantic adds the union member's name ("int", "float", "list[...]") to the location.
    return isinstance(part, str) and (
        part in {"int", "float", "str", "bool"} or "[" in part or part.startswith("constrained-")
    )


def request_json_schema() -> dict[str, Any]:
    """The documented request body (OpenAPI)."""
    return LeadRequest.model_json_schema(ref_template="#/components/schemas/{model}")
