"""The seeded account: users, two pipelines, 60+ lead fields and the standard contact fields.

Ids are fixed numbers so tests and demos can name them. Shapes follow amocrm-api.md §4.1–§4.3:
every pipeline has the Unsorted status (type 1) first and the system statuses 142 (won) and
143 (lost) last; contact PHONE/EMAIL carry amoCRM's standard enum lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from amogate.amocrm.sandbox.config import DEFAULT_ACCOUNT_ID

JSON = dict[str, Any]

ACCOUNT_ID = DEFAULT_ACCOUNT_ID
ADMIN_USER_ID = 9_100_001
MAIN_PIPELINE_ID = 7_100_001
SECOND_PIPELINE_ID = 7_100_002
WON_STATUS_ID = 142
LOST_STATUS_ID = 143
ACCOUNT_CREATED_AT = 1_700_000_000

LEAD_FIELD_FIRST_ID = 700_001
CONTACT_FIELD_FIRST_ID = 750_001
ENUM_FIRST_ID = 800_001

USERS: list[tuple[int, str, str]] = [
    (ADMIN_USER_ID, "Dilshod Karimov", "dilshod@sandbox.uz"),
    (9_100_002, "Malika Yusupova", "malika@sandbox.uz"),
    (9_100_003, "Aziz Rahimov", "aziz@sandbox.uz"),
    (9_100_004, "Ольга Смирнова", "olga@sandbox.uz"),
]

# (pipeline id, name, is_main, [(status id, name, type, color)])
PIPELINES: list[tuple[int, str, bool, list[tuple[int, str, int, str]]]] = [
    (
        MAIN_PIPELINE_ID,
        "Asosiy voronka",
        True,
        [
            (71_000_011, "Неразобранное", 1, "#c1c1c1"),
            (71_000_012, "Yangi murojaat", 0, "#99ccff"),
            (71_000_013, "Bog'lanildi", 0, "#ffff99"),
            (71_000_014, "Taklif yuborildi", 0, "#ffcc66"),
            (71_000_015, "To'lov kutilmoqda", 0, "#ff8f92"),
        ],
    ),
    (
        SECOND_PIPELINE_ID,
        "Ulgurji savdo",
        False,
        [
            (71_000_021, "Неразобранное", 1, "#c1c1c1"),
            (71_000_022, "Первичный контакт", 0, "#99ccff"),
            (71_000_023, "Переговоры", 0, "#ffcc66"),
            (71_000_024, "Принимают решение", 0, "#deff81"),
        ],
    ),
]

TRACKING_CODES = [
    "UTM_SOURCE",
    "UTM_MEDIUM",
    "UTM_CAMPAIGN",
    "UTM_CONTENT",
    "UTM_TERM",
    "UTM_REFERRER",
    "REFERRER",
    "FROM",
    "GCLID",
    "YCLID",
    "FBCLID",
    "GCLIENTID",
    "_YM_UID",
    "_YM_COUNTER",
    "OPENSTAT_SERVICE",
    "OPENSTAT_CAMPAIGN",
    "OPENSTAT_AD",
    "OPENSTAT_SOURCE",
    "ROISTAT",
]

# (name, type, code, enum values) for the account's own lead fields.
LEAD_FIELDS: list[tuple[str, str, str | None, list[str]]] = [
    ("Mahsulot turi", "select", None, ["Premium", "Standart"]),
    ("Manba", "select", None, ["Sayt", "Instagram", "Telegram", "Telefon", "Tavsiya"]),
    ("To'lov usuli", "select", None, ["Naqd", "Karta", "Click", "Payme", "Bank o'tkazmasi"]),
    ("Mijoz turi", "select", None, ["Yangi", "Doimiy", "VIP"]),
    (
        "Hudud",
        "select",
        None,
        ["Toshkent", "Samarqand", "Buxoro", "Farg'ona", "Andijon", "Namangan", "Xorazm"],
    ),
    ("Тип сделки", "select", None, ["Розница", "Опт", "Дилер"]),
    ("Aloqa usuli", "radiobutton", None, ["Qo'ng'iroq", "SMS", "Telegram"]),
    ("Qiziqishlar", "multiselect", None, ["Kurslar", "Konsultatsiya", "Yetkazib berish", "Servis"]),
    ("Xizmatlar", "multiselect", None, ["O'rnatish", "Kafolat", "Sozlash", "O'qitish"]),
    ("Каналы связи", "multiselect", None, ["Звонок", "WhatsApp", "Telegram", "Email"]),
    ("Kompaniya nomi", "text", None, []),
    ("Manzil", "text", None, []),
    ("Shahar", "text", None, []),
    ("Buyurtma raqami", "text", None, []),
    ("INN", "text", None, []),
    ("Promo-kod", "text", None, []),
    ("Telegram username", "text", None, []),
    ("Menejer izohi", "text", None, []),
    ("Номер договора", "text", None, []),
    ("Артикул", "text", None, []),
    ("Miqdor", "numeric", None, []),
    ("Chegirma (%)", "numeric", None, []),
    ("Byudjet (UZS)", "numeric", None, []),
    ("Xodimlar soni", "numeric", None, []),
    ("Количество мест", "numeric", None, []),
    ("Yetkazib berish kerak", "checkbox", None, []),
    ("Shartnoma imzolangan", "checkbox", None, []),
    ("Qayta aloqa", "checkbox", None, []),
    ("Согласие на рассылку", "checkbox", None, []),
    ("Uchrashuv sanasi", "date", None, []),
    ("To'lov sanasi", "date", None, []),
    ("Yetkazib berish sanasi", "date", None, []),
    ("Дата замера", "date", None, []),
    ("Qo'ng'iroq vaqti", "date_time", None, []),
    ("Tug'ilgan kun", "birthday", None, []),
    ("Sayt sahifasi", "url", None, []),
    ("Instagram profili", "url", None, []),
    ("Ссылка на КП", "url", None, []),
    ("Mijoz so'rovi", "textarea", None, []),
    ("Qo'shimcha ma'lumot", "textarea", None, []),
    ("Комментарий менеджера", "textarea", None, []),
    ("Ofis manzili", "streetaddress", None, []),
    ("Yetkazib berish vaqti", "select", None, ["09:00-12:00", "12:00-15:00", "15:00-18:00"]),
    ("Valyuta", "select", None, ["UZS", "USD", "RUB"]),
    ("Filial", "select", None, ["Chilonzor", "Yunusobod", "Mirzo Ulug'bek", "Sergeli"]),
    ("Причина отказа", "select", None, ["Дорого", "Нет в наличии", "Выбрали конкурента"]),
]

CONTACT_FIELDS: list[tuple[str, str, str | None, list[str]]] = [
    ("Телефон", "multitext", "PHONE", ["WORK", "WORKDD", "MOB", "FAX", "HOME", "OTHER"]),
    ("Email", "multitext", "EMAIL", ["WORK", "PRIV", "OTHER"]),
    ("Должность", "text", "POSITION", []),
    ("Telegram", "text", None, []),
    ("Tug'ilgan kun", "birthday", None, []),
    ("Shahar", "select", None, ["Toshkent", "Samarqand", "Buxoro", "Boshqa"]),
    ("Manba", "select", None, ["Sayt", "Instagram", "Telegram", "Tavsiya"]),
    ("Ulanish kanali", "multiselect", None, ["Qo'ng'iroq", "Telegram", "Email"]),
]

ENUM_TYPES = frozenset({"select", "multiselect", "radiobutton", "multitext"})


@dataclass
class SeededAccount:
    """The fixed part of the account; lists are copied on every reset."""

    users: list[JSON] = field(default_factory=list)
    pipelines: list[JSON] = field(default_factory=list)
    lead_fields: list[JSON] = field(default_factory=list)
    contact_fields: list[JSON] = field(default_factory=list)
    next_enum_id: int = ENUM_FIRST_ID
    account_id: int = ACCOUNT_ID


def build_seed(base_url: str, account_id: int = ACCOUNT_ID) -> SeededAccount:
    """Build the seeded account; `base_url` prefixes the `_links` hrefs."""
    seed = SeededAccount(account_id=account_id)
    seed.users = [
        {"id": uid, "name": name, "email": email, "lang": "ru", "rights": {"is_admin": i == 0}}
        for i, (uid, name, email) in enumerate(USERS)
    ]
    seed.pipelines = [
        _pipeline(base_url, *p, sort=i + 1, account_id=account_id) for i, p in enumerate(PIPELINES)
    ]
    lead_specs: list[tuple[str, str, str | None, list[str]]] = [
        (code.lower(), "tracking_data", code, []) for code in TRACKING_CODES
    ]
    lead_specs += LEAD_FIELDS
    for i, spec in enumerate(lead_specs):
        seed.lead_fields.append(
            make_field(base_url, seed, "leads", LEAD_FIELD_FIRST_ID + i, *spec, sort=(i + 1) * 10)
        )
    for i, spec in enumerate(CONTACT_FIELDS):
        seed.contact_fields.append(
            make_field(
                base_url, seed, "contacts", CONTACT_FIELD_FIRST_ID + i, *spec, sort=(i + 1) * 2
            )
        )
    return seed


def make_field(
    base_url: str,
    seed: SeededAccount,
    entity_type: str,
    field_id: int,
    name: str,
    field_type: str,
    code: str | None,
    enum_values: list[str],
    *,
    sort: int,
) -> JSON:
    """One custom field object in amoCRM's read shape; enum ids come from `seed`'s counter."""
    predefined = code is not None
    enums: list[JSON] | None = None
    if field_type in ENUM_TYPES:
        enums = []
        for j, value in enumerate(enum_values):
            enums.append({"id": seed.next_enum_id, "value": value, "sort": (j + 1) * 2})
            seed.next_enum_id += 1
    return {
        "id": field_id,
        "name": name,
        "type": field_type,
        "account_id": seed.account_id,
        "code": code,
        "sort": sort,
        "is_api_only": False,
        "enums": enums,
        "group_id": None,
        "required_statuses": [],
        "is_deletable": not predefined,
        "is_predefined": predefined,
        "entity_type": entity_type,
        "tracking_callback": None,
        "remind": None,
        "triggers": [],
        "currency": None,
        "hidden_statuses": [],
        "_links": {"self": {"href": f"{base_url}/api/v4/{entity_type}/custom_fields/{field_id}"}},
    }


def _pipeline(
    base_url: str,
    pipeline_id: int,
    name: str,
    is_main: bool,
    statuses: list[tuple[int, str, int, str]],
    *,
    sort: int,
    account_id: int,
) -> JSON:
    status_rows = [
        *statuses,
        (WON_STATUS_ID, "Успешно реализовано", 0, "#CCFF66"),
        (LOST_STATUS_ID, "Закрыто и не реализовано", 0, "#D5D8DB"),
    ]
    href = f"{base_url}/api/v4/leads/pipelines/{pipeline_id}"
    embedded = []
    for i, (status_id, status_name, status_type, color) in enumerate(status_rows):
        system = status_type == 1 or status_id in (WON_STATUS_ID, LOST_STATUS_ID)
        embedded.append(
            {
                "id": status_id,
                "name": status_name,
                "sort": 10000
                if status_id == WON_STATUS_ID
                else 11000
                if status_id == LOST_STATUS_ID
                else (i + 1) * 10,
                "is_editable": not system,
                "pipeline_id": pipeline_id,
                "color": color,
                "type": status_type,
                "account_id": account_id,
                "_links": {"self": {"href": f"{href}/statuses/{status_id}"}},
            }
        )
    return {
        "id": pipeline_id,
        "name": name,
        "sort": sort,
        "is_main": is_main,
        "is_unsorted_on": True,
        "is_archive": False,
        "account_id": account_id,
        "_links": {"self": {"href": href}},
        "_embedded": {"statuses": embedded},
    }
