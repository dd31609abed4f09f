"""The lead request (`POST /api/v1/leads/unsorted`) in its normalised shape.

These models describe what a request becomes after `amogate.leads.reading` has read it (and
what /openapi.json documents): every text trimmed and within amoCRM's limits, every id a
positive integer, phones with digits, emails valid. Deciding what a caller's mistake costs
(a 422, or a warning and a line in the note) is `reading`'s job alone; the messages the
original gateway used live here because both the reader and the tests name them.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from amogate.leads.phones import PhoneWithoutDigits, has_digits

MAX_TEXT = 255
MAX_URL = 2048
MAX_PHONE = 64
MAX_LIST = 50
MAX_CHANNELS = 10  # phones, emails
MAX_UTM = 20
MAX_UTM_KEY = 64
MAX_ID = 2**63 - 1  # amoCRM ids are 64-bit
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")

# Messages the original gateway used (its users' code may match on them).
LEAD_REQUIRED = "Lead object is required"
LEAD_NAME_REQUIRED = "Lead name is required"
CONTACT_REQUIRED = "Contact object is required"
CONTACT_FIELD_REQUIRED = "At least one contact field (name, phone, email) is required"

Scalar = str | int | float | bool


class _Model(BaseModel):
    # The reader has already trimmed every text and set aside every unknown key (it keeps
    # them for the note), so the models only describe; they never strip or refuse on their own.
    model_config = ConfigDict(extra="ignore")


class Remark(_Model):
    """Something in the request that was not taken as given: where (`field`, the caller's
    dotted path), what happened (`problem`), and the value as the caller typed it (`value`),
    which the lead's note shows. `extra` marks a key amogate does not know (kept in the note)."""

    field: str
    problem: str
    value: Any = None
    extra: bool = False


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
    # Where the entry stood in the caller's list, so warnings point at what was sent even when
    # entries before it were set aside.
    index: SkipJsonSchema[int | None] = None

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
    value: str = Field(min_length=1, max_length=MAX_PHONE)
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
    # Valid by construction: the reader keeps only addresses `valid_email` accepts (checking
    # again here would double the cost of the most expensive check of a request).


class ContactIn(_Model):
    name: str | None = Field(default=None, max_length=MAX_TEXT)
    first_name: str | None = Field(default=None, max_length=MAX_TEXT)
    last_name: str | None = Field(default=None, max_length=MAX_TEXT)
    phone: str | None = Field(default=None, max_length=MAX_PHONE)
    email: str | None = Field(default=None, max_length=MAX_TEXT)
    phones: list[PhoneIn] = Field(default_factory=list, max_length=MAX_CHANNELS)
    emails: list[EmailIn] = Field(default_factory=list, max_length=MAX_CHANNELS)
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
    # "unsorted" (default): an incoming lead in Unsorted; "lead": straight into the pipeline
    # stage (pipeline_id / lead.status_id) through amoCRM's complex leads.
    mode: Literal["unsorted", "lead"] | None = None
    visitor_uid: str | None = Field(default=None, max_length=MAX_TEXT)
    lead: LeadIn
    contact: ContactIn
    utm: dict[str, str] = Field(default_factory=dict, max_length=MAX_UTM)
    comment: str | None = None
    # Set by the reader, never by the caller (a "remarks" key in a request is an unknown key).
    remarks: SkipJsonSchema[list[Remark]] = Field(default_factory=list)

    @property
    def warnings(self) -> list[dict[str, str]]:
        """The remarks as the answer's `data.warnings`: `{"field", "problem"}` items."""
        return warnings_of(self.remarks)

    @field_validator("ip")
    @classmethod
    def _ip(cls, value: str | None) -> str | None:
        if value:
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise ValueError("ip must be an IPv4 or IPv6 address") from None
        return value or None

    @field_validator("utm")
    @classmethod
    def _utm_limits(cls, value: dict[str, str]) -> dict[str, str]:
        for key, text in value.items():
            if not key or len(key) > MAX_UTM_KEY:
                raise ValueError(f"UTM keys must be 1-{MAX_UTM_KEY} characters")
            if len(text) > MAX_TEXT:
                raise ValueError(f"{key} must be at most {MAX_TEXT} characters")
        return value


def warnings_of(remarks: list[Remark]) -> list[dict[str, str]]:
    return [{"field": r.field, "problem": r.problem} for r in remarks]


def valid_email(value: str) -> str | None:
    """The normalised address, or None when it is not an email address."""
    try:
        return str(validate_email(value, check_deliverability=False).normalized)
    except EmailNotValidError:
        return None


def request_json_schema() -> dict[str, Any]:
    """The documented request body (OpenAPI)."""
    return LeadRequest.model_json_schema(ref_template="#/components/schemas/{model}")
