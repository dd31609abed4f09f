"""The admin page's message catalogue: English, Uzbek (Latin script) and Russian.

Every message has all three languages (a test checks it). The language comes from `?lang=`
(then kept in a cookie), else the cookie, else the browser's Accept-Language, else English.
Placeholders use `str.format` names: `t("deliveries.requeued_many", count=3)`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from markupsafe import Markup, escape

LANGUAGES: dict[str, str] = {"en": "English", "uz": "O'zbekcha", "ru": "Русский"}
DEFAULT_LANGUAGE = "en"
LANG_COOKIE = "amogate_lang"

Translator = Callable[..., str]

# message id -> (English, Uzbek, Russian)
_MESSAGES: dict[str, tuple[str, str, str]] = {
    # --- layout ---------------------------------------------------------------------------
    "app.title": ("amogate admin", "amogate boshqaruvi", "Панель amogate"),
    "nav.overview": ("Overview", "Umumiy holat", "Обзор"),
    "nav.deliveries": ("Deliveries", "Yetkazishlar", "Доставки"),
    "nav.keys": ("API keys", "API kalitlari", "API-ключи"),
    "nav.logout": ("Log out", "Chiqish", "Выйти"),
    "nav.language": ("Language", "Til", "Язык"),
    # --- login / disabled -----------------------------------------------------------------
    "login.title": ("Sign in", "Kirish", "Вход"),
    "login.password": ("Password", "Parol", "Пароль"),
    "login.submit": ("Sign in", "Kirish", "Войти"),
    "login.wrong": ("Wrong password.", "Parol noto'g'ri.", "Неверный пароль."),
    "login.expired": (
        "Your session has ended. Sign in again.",
        "Seans tugadi. Qaytadan kiring.",
        "Сеанс завершён. Войдите снова.",
    ),
    "login.too_many": (
        "Too many sign-in attempts. Try again in {seconds} s.",
        "Kirishga urinishlar juda ko'p. {seconds} soniyadan keyin qayta urinib ko'ring.",
        "Слишком много попыток входа. Повторите через {seconds} с.",
    ),
    "disabled.title": (
        "The admin page is turned off",
        "Boshqaruv sahifasi o'chirilgan",
        "Панель администратора выключена",
    ),
    "disabled.how": (
        "Set ADMIN_PASSWORD in the gateway's environment (or its .env file) and restart "
        "amogate to turn it on.",
        "Uni yoqish uchun gateway muhitida (yoki .env faylida) ADMIN_PASSWORD ni o'rnating va "
        "amogate ni qayta ishga tushiring.",
        "Чтобы включить её, задайте ADMIN_PASSWORD в окружении шлюза (или в файле .env) и "
        "перезапустите amogate.",
    ),
    "disabled.advice": (
        "Use a long random password: anyone who can reach the gateway can reach this page.",
        "Uzun tasodifiy parol tanlang: gatewayga kira oladigan har kim bu sahifani ko'radi.",
        "Используйте длинный случайный пароль: страница доступна всем, кто видит шлюз.",
    ),
    # --- errors ---------------------------------------------------------------------------
    "error.csrf": (
        "This form has expired. Reload the page and try again.",
        "Bu shakl eskirgan. Sahifani yangilab, qayta urinib ko'ring.",
        "Форма устарела. Обновите страницу и попробуйте ещё раз.",
    ),
    "error.not_found": ("Not found.", "Topilmadi.", "Не найдено."),
    "error.back": ("Back", "Orqaga", "Назад"),
    # --- overview -------------------------------------------------------------------------
    "overview.title": ("Overview", "Umumiy holat", "Обзор"),
    "overview.account": ("amoCRM account", "amoCRM hisobi", "Аккаунт amoCRM"),
    "overview.name": ("Name", "Nomi", "Название"),
    "overview.subdomain": ("Subdomain", "Subdomen", "Поддомен"),
    "overview.platform": ("Platform", "Platforma", "Платформа"),
    "overview.account_unavailable": (
        "amoCRM did not answer; the account name is unknown for now.",
        "amoCRM javob bermadi; hisob nomi hozircha noma'lum.",
        "amoCRM не ответил; название аккаунта пока неизвестно.",
    ),
    "overview.connection": ("Connection", "Ulanish", "Подключение"),
    "overview.state": ("State", "Holat", "Состояние"),
    "conn.connected": ("Connected", "Ulangan", "Подключено"),
    "conn.long_lived": (
        "Connected with a long-lived token",
        "Uzoq muddatli token bilan ulangan",
        "Подключено долгосрочным токеном",
    ),
    "conn.needs_reauthorization": (
        "Needs reauthorization: connect amoCRM again",
        "Qayta avtorizatsiya kerak: amoCRM ni qayta ulang",
        "Нужна повторная авторизация: подключите amoCRM заново",
    ),
    "conn.not_authorized": ("Not connected", "Ulanmagan", "Не подключено"),
    "conn.not_configured": (
        "amoCRM is not configured: set AMO_DOMAIN (or AMO_BASE_URL) and the integration's "
        "AMO_CLIENT_ID and AMO_CLIENT_SECRET.",
        "amoCRM sozlanmagan: AMO_DOMAIN (yoki AMO_BASE_URL), AMO_CLIENT_ID va "
        "AMO_CLIENT_SECRET ni o'rnating.",
        "amoCRM не настроен: задайте AMO_DOMAIN (или AMO_BASE_URL), AMO_CLIENT_ID и "
        "AMO_CLIENT_SECRET.",
    ),
    "conn.blocked": (
        "Blocked by amoCRM (403): calls paused until {until}",
        "amoCRM blokladi (403): so'rovlar {until} gacha to'xtatilgan",
        "Заблокировано amoCRM (403): запросы приостановлены до {until}",
    ),
    "conn.reason": ("Reason", "Sabab", "Причина"),
    "overview.token_expires": (
        "Access token expires",
        "Kirish tokeni muddati",
        "Токен доступа истекает",
    ),
    "overview.last_refresh": ("Last refresh", "Oxirgi yangilanish", "Последнее обновление"),
    "overview.never": ("never", "hech qachon", "никогда"),
    "overview.connect": ("Connect amoCRM", "amoCRM ni ulash", "Подключить amoCRM"),
    "overview.reconnect": ("Reconnect amoCRM", "amoCRM ni qayta ulash", "Переподключить amoCRM"),
    "overview.connect_hint": (
        "You will be sent to amoCRM to allow access, then back to amogate.",
        "Ruxsat berish uchun amoCRM ga o'tasiz, so'ng amogate ga qaytasiz.",
        "Вы перейдёте в amoCRM, чтобы разрешить доступ, и вернётесь в amogate.",
    ),
    "overview.replace": (
        "Connect a different amoCRM account instead…",
        "Uning o'rniga boshqa amoCRM hisobini ulash…",
        "Подключить вместо него другой аккаунт amoCRM…",
    ),
    # --- replacing the connected account ----------------------------------------------------
    "replace.title": (
        "Connect a different amoCRM account",
        "Boshqa amoCRM hisobini ulash",
        "Подключение другого аккаунта amoCRM",
    ),
    "replace.warning": (
        "From then on every new lead goes to the account you allow next, not to the connected "
        "one. Leads still waiting in the queue will go there too.",
        "Shundan so'ng har bir yangi lid hozir ulangan hisobga emas, keyingi ruxsat beradigan "
        "hisobingizga boradi. Navbatda kutayotgan lidlar ham o'sha yerga boradi.",
        "После этого все новые заявки пойдут в аккаунт, к которому вы сейчас дадите доступ, а "
        "не в подключённый. Заявки, ждущие в очереди, тоже уйдут туда.",
    ),
    "replace.connected": ("Connected now", "Hozir ulangan", "Подключён сейчас"),
    "replace.confirm": (
        "Yes, connect a different account",
        "Ha, boshqa hisobni ulash",
        "Да, подключить другой аккаунт",
    ),
    "replace.cancel": ("Cancel", "Bekor qilish", "Отмена"),
    "replace.not_configured": (
        "amoCRM is not configured: set AMO_DOMAIN (or AMO_BASE_URL).",
        "amoCRM sozlanmagan: AMO_DOMAIN (yoki AMO_BASE_URL) ni o'rnating.",
        "amoCRM не настроен: задайте AMO_DOMAIN (или AMO_BASE_URL).",
    ),
    "overview.budget": (
        "Outbound requests to amoCRM",
        "amoCRM ga so'rovlar",
        "Запросы к amoCRM",
    ),
    "overview.rate_limit": ("Limit", "Cheklov", "Лимит"),
    "overview.per_second": ("{rate} per second", "soniyasiga {rate}", "{rate} в секунду"),
    "overview.count_429": (
        "429 answers (too many requests)",
        "429 javoblar (so'rovlar ko'p)",
        "Ответы 429 (слишком много запросов)",
    ),
    "overview.count_403": ("403 answers (blocked)", "403 javoblar (blok)", "Ответы 403 (блок)"),
    "overview.paused_until": (
        "Paused until {until}",
        "{until} gacha to'xtatilgan",
        "Пауза до {until}",
    ),
    "overview.not_paused": ("Not paused", "To'xtatilmagan", "Без паузы"),
    "overview.deliveries_24h": (
        "Deliveries in the last 24 h",
        "Oxirgi 24 soatdagi yetkazishlar",
        "Доставки за последние 24 ч",
    ),
    "overview.oldest_undelivered": (
        "Oldest undelivered lead",
        "Eng eski yetkazilmagan lid",
        "Самая старая недоставленная заявка",
    ),
    "overview.none_waiting": (
        "none: every lead is delivered",
        "yo'q: barcha lidlar yetkazilgan",
        "нет: все заявки доставлены",
    ),
    "overview.waiting_for": ("waiting for {age}", "{age} dan beri kutmoqda", "ждёт {age}"),
    "overview.show_failed": (
        "Show failed deliveries",
        "Yetkazilmaganlarni ko'rsatish",
        "Показать неудачные доставки",
    ),
    # --- delivery states ------------------------------------------------------------------
    "state.queued": ("queued", "navbatda", "в очереди"),
    "state.sending": ("sending", "yuborilmoqda", "отправляется"),
    "state.retrying": ("retrying", "qayta urinilmoqda", "повтор"),
    "state.delivered": ("delivered", "yetkazildi", "доставлено"),
    "state.failed": ("failed", "xato", "ошибка"),
    # --- deliveries list ------------------------------------------------------------------
    "deliveries.title": ("Deliveries", "Yetkazishlar", "Доставки"),
    "deliveries.filter_state": ("State", "Holat", "Состояние"),
    "deliveries.all": ("All", "Hammasi", "Все"),
    "deliveries.from": ("From", "Dan", "С"),
    "deliveries.to": ("To", "Gacha", "По"),
    "deliveries.search": ("Search", "Qidiruv", "Поиск"),
    "deliveries.search_hint": (
        "lead or contact name",
        "lid yoki kontakt nomi",
        "название заявки или имя контакта",
    ),
    "deliveries.apply": ("Filter", "Saralash", "Применить"),
    "deliveries.retry_all": (
        "Retry all failed",
        "Barcha xatolarni qayta yuborish",
        "Повторить все неудачные",
    ),
    "deliveries.created": ("Created", "Yaratilgan", "Создана"),
    "deliveries.lead": ("Lead", "Lid", "Заявка"),
    "deliveries.contact": ("Contact", "Kontakt", "Контакт"),
    "deliveries.state": ("State", "Holat", "Состояние"),
    "deliveries.attempts": ("Attempts", "Urinishlar", "Попытки"),
    "deliveries.error": ("Error", "Xato", "Ошибка"),
    "deliveries.empty": (
        "No deliveries match.",
        "Mos yetkazishlar yo'q.",
        "Нет подходящих доставок.",
    ),
    "deliveries.total": ("{count} found", "{count} ta topildi", "Найдено: {count}"),
    "deliveries.prev": ("Previous", "Oldingi", "Назад"),
    "deliveries.next": ("Next", "Keyingi", "Далее"),
    "deliveries.page": (
        "Page {page} of {pages}",
        "{page}/{pages} sahifa",
        "Страница {page} из {pages}",
    ),
    "deliveries.requeued": (
        "The delivery is queued for another attempt.",
        "Yetkazish qayta urinish uchun navbatga qo'yildi.",
        "Доставка поставлена в очередь на повтор.",
    ),
    "deliveries.requeued_many": (
        "{count} failed deliveries are queued again.",
        "{count} ta xato yetkazish qayta navbatga qo'yildi.",
        "Неудачных доставок снова в очереди: {count}.",
    ),
    "deliveries.not_retryable": (
        "This delivery cannot be retried: it is delivered or being sent right now.",
        "Bu yetkazishni qayta yuborib bo'lmaydi: u yetkazilgan yoki hozir yuborilmoqda.",
        "Эту доставку нельзя повторить: она доставлена или отправляется прямо сейчас.",
    ),
    # --- delivery detail ------------------------------------------------------------------
    "delivery.title": ("Delivery {id}", "Yetkazish {id}", "Доставка {id}"),
    "delivery.back": ("All deliveries", "Barcha yetkazishlar", "Все доставки"),
    "delivery.retry": ("Retry", "Qayta yuborish", "Повторить"),
    "delivery.retry_now": ("Retry now", "Hozir qayta yuborish", "Повторить сейчас"),
    "delivery.next_attempt": ("Next attempt", "Keyingi urinish", "Следующая попытка"),
    "delivery.give_up": ("Gives up at", "Voz kechish vaqti", "Отказ после"),
    "delivery.delivered_at": ("Delivered", "Yetkazildi", "Доставлено"),
    "delivery.amo_lead": ("amoCRM lead", "amoCRM lidi", "Сделка в amoCRM"),
    "delivery.open_in_amo": ("Open in amoCRM", "amoCRM da ochish", "Открыть в amoCRM"),
    "delivery.field_errors": (
        "amoCRM's objections",
        "amoCRM e'tirozlari",
        "Замечания amoCRM",
    ),
    "delivery.warnings": (
        "Not taken as sent (the values are in the lead's note)",
        "Yuborilgandek olinmadi (qiymatlar lid izohida)",
        "Принято не так, как отправлено (значения в примечании к сделке)",
    ),
    "delivery.request": ("Original request", "Asl so'rov", "Исходный запрос"),
    "delivery.erased": (
        "The lead's personal data was erased on {at} (DATA_RETENTION_DAYS).",
        "Lidning shaxsiy ma'lumotlari {at} da o'chirildi (DATA_RETENTION_DAYS).",
        "Персональные данные заявки удалены {at} (DATA_RETENTION_DAYS).",
    ),
    "delivery.masked": (
        "Phones and e-mails are partly hidden.",
        "Telefon va e-pochtalar qisman yashirilgan.",
        "Телефоны и e-mail частично скрыты.",
    ),
    "delivery.attempts": ("Attempts", "Urinishlar", "Попытки"),
    "delivery.no_attempts": ("No attempts yet.", "Hali urinish yo'q.", "Попыток ещё не было."),
    "attempt.time": ("Time", "Vaqt", "Время"),
    "attempt.step": ("Step", "Bosqich", "Шаг"),
    "attempt.outcome": ("Outcome", "Natija", "Итог"),
    "attempt.status": ("HTTP", "HTTP", "HTTP"),
    "attempt.answer": ("amoCRM's answer", "amoCRM javobi", "Ответ amoCRM"),
    "attempt.duration": ("{ms} ms", "{ms} ms", "{ms} мс"),
    # --- API keys -------------------------------------------------------------------------
    "keys.title": ("API keys", "API kalitlari", "API-ключи"),
    "keys.admin_note": (
        "The admin key (API_KEY) comes from the environment and is not listed here.",
        "Admin kaliti (API_KEY) muhitdan olinadi va bu yerda ko'rsatilmaydi.",
        "Ключ администратора (API_KEY) задаётся в окружении и здесь не показан.",
    ),
    "keys.name": ("Name", "Nomi", "Название"),
    "keys.scopes": ("Scopes", "Ruxsatlar", "Права"),
    "keys.origins": ("Allowed sites", "Ruxsat etilgan saytlar", "Разрешённые сайты"),
    "keys.origins_hint": (
        "one per line, like https://site.uz (empty: the global CORS list)",
        "har qatorda bittadan, masalan https://site.uz (bo'sh: umumiy CORS ro'yxati)",
        "по одному в строке, например https://site.uz (пусто: общий список CORS)",
    ),
    "keys.rate": ("Requests per minute", "Daqiqasiga so'rovlar", "Запросов в минуту"),
    "keys.rate_hint": ("empty: no limit", "bo'sh: cheklovsiz", "пусто: без лимита"),
    "keys.created": ("Created", "Yaratilgan", "Создан"),
    "keys.last_used": ("Last used", "Oxirgi foydalanish", "Последнее использование"),
    "keys.status": ("Status", "Holat", "Статус"),
    "keys.active": ("active", "faol", "активен"),
    "keys.revoked": ("revoked", "bekor qilingan", "отозван"),
    "keys.revoke": ("Revoke", "Bekor qilish", "Отозвать"),
    "keys.revoke_confirm": (
        "Revoke the key {name}? Forms using it will stop working at once.",
        "{name} kaliti bekor qilinsinmi? Undan foydalanadigan shakllar darhol ishlamay qoladi.",
        "Отозвать ключ {name}? Формы, которые его используют, сразу перестанут работать.",
    ),
    "keys.create": ("Create key", "Kalit yaratish", "Создать ключ"),
    "keys.new_title": ("New key", "Yangi kalit", "Новый ключ"),
    "keys.shown_once": (
        "This is the only time the key {name} is shown. Copy it now and keep it safe.",
        "{name} kaliti faqat hozir ko'rsatiladi. Uni hozir nusxalab, xavfsiz saqlang.",
        "Ключ {name} показывается только сейчас. Скопируйте его и сохраните в надёжном месте.",
    ),
    "keys.copy": ("Copy", "Nusxalash", "Копировать"),
    "keys.copied": ("Copied", "Nusxalandi", "Скопировано"),
    "keys.empty": ("No keys yet.", "Hali kalitlar yo'q.", "Ключей пока нет."),
    "keys.revoked_done": (
        "The key {name} is revoked.",
        "{name} kaliti bekor qilindi.",
        "Ключ {name} отозван.",
    ),
    "keys.error_name": (
        "Give the key a name (up to 128 characters).",
        "Kalitga nom bering (128 belgigacha).",
        "Дайте ключу название (до 128 символов).",
    ),
    "keys.error_name_taken": (
        "A key with this name already exists.",
        "Bunday nomli kalit allaqachon bor.",
        "Ключ с таким названием уже есть.",
    ),
    "keys.error_scopes": (
        "Choose at least one scope.",
        "Kamida bitta ruxsatni tanlang.",
        "Выберите хотя бы одно право.",
    ),
    "keys.error_origin": (
        "{origin} is not a site address like https://site.uz.",
        "{origin} https://site.uz kabi sayt manzili emas.",
        "{origin} — не адрес сайта вида https://site.uz.",
    ),
    "keys.error_rate": (
        "Requests per minute must be a whole number from 1 to 100000.",
        "Daqiqasiga so'rovlar 1 dan 100000 gacha butun son bo'lishi kerak.",
        "Запросов в минуту — целое число от 1 до 100000.",
    ),
    "keys.unknown": ("Unknown key.", "Noma'lum kalit.", "Неизвестный ключ."),
    # --- reachability, time zone -----------------------------------------------------------
    "conn.not_answering": (
        "amoCRM is not answering since {since} (last attempt: {how}); leads are kept and retried",
        "amoCRM {since} dan beri javob bermayapti (oxirgi urinish: {how}); lidlar saqlanadi va "
        "qayta yuboriladi",
        "amoCRM не отвечает с {since} (последняя попытка: {how}); заявки сохранены и будут "
        "отправлены повторно",
    ),
    "conn.no_answer": ("no answer", "javob yo'q", "нет ответа"),
    "overview.timezone": ("Time zone", "Vaqt mintaqasi", "Часовой пояс"),
    "overview.timezone_hint": (
        "Times are in the account's time zone; hover over one to see it in UTC.",
        "Vaqtlar hisob vaqt mintaqasida; UTC dagi vaqtni ko'rish uchun ustiga olib boring.",
        "Время указано в часовом поясе аккаунта; наведите курсор, чтобы увидеть UTC.",
    ),
    "overview.timezone_unknown": (
        "The account's time zone is not known yet (amoCRM has not answered): times are in UTC.",
        "Hisob vaqt mintaqasi hali noma'lum (amoCRM javob bermadi): vaqtlar UTC da.",
        "Часовой пояс аккаунта пока неизвестен (amoCRM не ответил): время указано в UTC.",
    ),
    # --- attempts: steps and outcomes ---------------------------------------------------------
    "step.form": ("form", "shakl", "форма"),
    "step.note": ("note", "izoh", "примечание"),
    "step.reconcile": ("lookup", "tekshiruv", "сверка"),
    "outcome.ok": ("done", "bajarildi", "выполнено"),
    "outcome.not_found": ("not found", "topilmadi", "не найдено"),
    "outcome.transient": ("temporary failure", "vaqtinchalik xato", "временный сбой"),
    "outcome.rate_limited": (
        "too many requests (429)",
        "so'rovlar juda ko'p (429)",
        "слишком много запросов (429)",
    ),
    "outcome.auth": ("needs authorization", "avtorizatsiya kerak", "нужна авторизация"),
    "outcome.blocked": ("blocked (403)", "bloklangan (403)", "заблокировано (403)"),
    "outcome.payment": ("payment needed (402)", "to'lov kerak (402)", "нужна оплата (402)"),
    "outcome.permanent": ("rejected", "rad etildi", "отклонено"),
    "outcome.unknown": ("unknown", "noma'lum", "неизвестно"),
    # --- the request as sent and as normalised ------------------------------------------------
    "delivery.received": (
        "What the client sent",
        "Mijoz yuborgan so'rov",
        "Что прислал клиент",
    ),
    "delivery.normalised": (
        "What amoCRM gets (normalised)",
        "amoCRM ga boradigan shakli (normallashtirilgan)",
        "Что получит amoCRM (нормализовано)",
    ),
    "delivery.received_unknown": (
        "Not kept for leads accepted by earlier versions of amogate.",
        "amogate ning oldingi versiyalari qabul qilgan lidlar uchun saqlanmagan.",
        "Не сохранялось для заявок, принятых прежними версиями amogate.",
    ),
    # --- the OAuth callback page ----------------------------------------------------------------
    "callback.status": ("Connection status", "Ulanish holati", "Состояние подключения"),
    "callback.admin": ("Admin page", "Boshqaruv sahifasi", "Панель администратора"),
    "callback.replace": (
        "Connect the other account instead (asks to confirm)",
        "O'rniga boshqa hisobni ulash (tasdiqlash so'raladi)",
        "Подключить вместо него другой аккаунт (с подтверждением)",
    ),
    # --- time -----------------------------------------------------------------------------
    "age.seconds": ("{n} s", "{n} soniya", "{n} с"),
    "age.minutes": ("{n} min", "{n} daqiqa", "{n} мин"),
    "age.hours": ("{n} h", "{n} soat", "{n} ч"),
    "age.days": ("{n} d", "{n} kun", "{n} дн"),
    "time.in": ("in {age}", "{age} dan keyin", "через {age}"),
    "time.ago": ("{age} ago", "{age} oldin", "{age} назад"),
    # --- contact matching -----------------------------------------------------------------------
    "delivery.amo_contact": ("amoCRM contact", "amoCRM kontakti", "Контакт в amoCRM"),
    "delivery.contact_matched": (
        "existing contact (matched by phone or email)",
        "mavjud kontakt (telefon yoki email bo'yicha topildi)",
        "существующий контакт (найден по телефону или email)",
    ),
    "delivery.contact_new": ("new contact", "yangi kontakt", "новый контакт"),
    # --- public forms ---------------------------------------------------------------------
    "nav.forms": ("Forms", "Formalar", "Формы"),
    "state.spam": ("spam", "spam", "спам"),
    "forms.title": ("Forms", "Formalar", "Формы"),
    "forms.name": ("Name", "Nomi", "Название"),
    "forms.account": ("Account", "Hisob", "Аккаунт"),
    "forms.endpoint": ("Endpoint", "Manzil", "Адрес"),
    "forms.origins": ("Allowed sites", "Ruxsat etilgan saytlar", "Разрешённые сайты"),
    "forms.origins_hint": (
        "one per line, e.g. https://site.uz; empty: only servers (Tilda) may post",
        "har qatorda bittadan, masalan https://site.uz; bo'sh: faqat serverlar (Tilda)",
        "по одному в строке, например https://site.uz; пусто: только серверы (Tilda)",
    ),
    "forms.success_url": (
        "Success page (optional)",
        "Muvaffaqiyat sahifasi (ixtiyoriy)",
        "Страница «спасибо» (необязательно)",
    ),
    "forms.pipeline": (
        "Pipeline id (optional)",
        "Voronka id (ixtiyoriy)",
        "ID воронки (необязательно)",
    ),
    "forms.tags": ("Tags, comma-separated", "Teglar, vergul bilan", "Теги через запятую"),
    "forms.rate": (
        "Posts per address per minute (empty: FORM_RATE_PER_MINUTE)",
        "Bir manzildan daqiqasiga yuborishlar (bo'sh: FORM_RATE_PER_MINUTE)",
        "Отправок с адреса в минуту (пусто: FORM_RATE_PER_MINUTE)",
    ),
    "forms.posts": ("Submissions", "Yuborishlar", "Заявки"),
    "forms.create": ("Create form", "Forma yaratish", "Создать форму"),
    "forms.new_title": ("New form", "Yangi forma", "Новая форма"),
    "forms.shown_once": (
        "The endpoint of {name} is shown only once: copy it into the form's page now.",
        "{name} manzili faqat bir marta ko'rsatiladi: uni hozir forma sahifasiga nusxalang.",
        "Адрес формы {name} показан только один раз: скопируйте его на страницу формы сейчас.",
    ),
    "forms.docs_hint": (
        "Snippets for HTML, fetch(), Tilda, Contact Form 7 and Google Forms: docs/forms.md.",
        "HTML, fetch(), Tilda, Contact Form 7 va Google Forms uchun namunalar: docs/forms.md.",
        "Примеры для HTML, fetch(), Tilda, Contact Form 7 и Google Forms: docs/forms.md.",
    ),
    "forms.empty": ("No forms yet.", "Hali formalar yo'q.", "Форм пока нет."),
    "forms.remove": ("Remove", "O'chirish", "Удалить"),
    "forms.remove_confirm": (
        "Remove the form {name}? Its endpoint will answer 404.",
        "{name} formasi o'chirilsinmi? Uning manzili 404 qaytaradi.",
        "Удалить форму {name}? Её адрес будет отвечать 404.",
    ),
    "forms.removed_done": (
        "Form {name} removed.",
        "{name} formasi o'chirildi.",
        "Форма {name} удалена.",
    ),
    "forms.unknown": ("Unknown form.", "Noma'lum forma.", "Неизвестная форма."),
    "forms.last_submissions": ("Last submissions", "Oxirgi yuborishlar", "Последние заявки"),
    "forms.no_submissions": (
        "Nothing submitted yet.",
        "Hali hech narsa yuborilmagan.",
        "Заявок пока нет.",
    ),
    "forms.received": ("Received", "Qabul qilingan", "Получена"),
    "forms.lead": ("Lead", "Lid", "Сделка"),
    "forms.status": ("Status", "Holat", "Статус"),
    "forms.back": ("All forms", "Barcha formalar", "Все формы"),
    # --- webhooks (amoCRM's events to subscribers) ----------------------------------------
    "nav.webhooks": ("Webhooks", "Webhooklar", "Вебхуки"),
    "webhooks.title": ("amoCRM events", "amoCRM hodisalari", "События amoCRM"),
    "webhooks.intro": (
        "amoCRM's webhooks are stored here and sent on, signed, to your subscribers. Add "
        "subscribers with `amogate webhooks add`.",
        "amoCRM webhooklari shu yerda saqlanadi va imzolangan holda obunachilaringizga "
        "yuboriladi. Obunachini `amogate webhooks add` bilan qo'shing.",
        "Вебхуки amoCRM сохраняются здесь и пересылаются подписчикам с подписью. Подписчиков "
        "добавляет `amogate webhooks add`.",
    ),
    "webhooks.amocrm": ("Webhook in amoCRM", "amoCRM dagi webhook", "Вебхук в amoCRM"),
    "webhooks.account": ("Account", "Akkaunt", "Аккаунт"),
    "webhooks.events": ("Events", "Hodisalar", "События"),
    "webhooks.state": ("State", "Holat", "Состояние"),
    "webhooks.checked": ("Checked", "Tekshirilgan", "Проверен"),
    "webhooks.reenabled": ("Re-enabled", "Qayta yoqilgan", "Включён повторно"),
    "webhooks.not_connected": (
        "not registered: run amogate webhooks connect",
        "ro'yxatdan o'tmagan: amogate webhooks connect ni ishga tushiring",
        "не зарегистрирован: выполните amogate webhooks connect",
    ),
    "webhooks.disabled": (
        "disabled by amoCRM (registering again)",
        "amoCRM o'chirib qo'ygan (qayta ro'yxatdan o'tkazilmoqda)",
        "отключён amoCRM (регистрируется заново)",
    ),
    "webhooks.enabled": ("enabled", "yoqilgan", "включён"),
    "webhooks.none_connected": (
        "No account has a webhook registered with amoCRM yet.",
        "Hali hech bir akkaunt amoCRM da webhook ro'yxatdan o'tkazmagan.",
        "Ни один аккаунт ещё не зарегистрировал вебхук в amoCRM.",
    ),
    "webhooks.subscribers": ("Subscribers", "Obunachilar", "Подписчики"),
    "webhooks.created": ("Added", "Qo'shilgan", "Добавлен"),
    "webhooks.no_subscribers": (
        "No subscribers yet.",
        "Hali obunachilar yo'q.",
        "Подписчиков пока нет.",
    ),
    "webhooks.recent": ("Recent events", "So'nggi hodisalar", "Последние события"),
    "webhooks.received": ("Received", "Qabul qilingan", "Получено"),
    "webhooks.event": ("Event", "Hodisa", "Событие"),
    "webhooks.entity_id": ("Object", "Obyekt", "Объект"),
    "webhooks.no_events": ("No events yet.", "Hali hodisalar yo'q.", "Событий пока нет."),
    "webhooks.failed": (
        "Failed deliveries",
        "Yetkazilmagan hodisalar",
        "Недоставленные события",
    ),
    "webhooks.attempts": ("Attempts", "Urinishlar", "Попытки"),
    "webhooks.error": ("Last error", "Oxirgi xato", "Последняя ошибка"),
    "webhooks.retry": ("Retry", "Qayta yuborish", "Повторить"),
    "webhooks.retry_all": (
        "Retry all failed",
        "Barcha yetkazilmaganlarni qayta yuborish",
        "Повторить все недоставленные",
    ),
    "webhooks.no_failed": (
        "No failed deliveries.",
        "Yetkazilmagan hodisalar yo'q.",
        "Недоставленных событий нет.",
    ),
    "webhooks.requeued": (
        "{count} delivery(ies) queued again.",
        "{count} ta yetkazish qayta navbatga qo'yildi.",
        "Снова в очереди: {count}.",
    ),
    # --- accounts -------------------------------------------------------------------------
    "nav.accounts": ("Accounts", "Akkauntlar", "Аккаунты"),
    "accounts.title": ("amoCRM accounts", "amoCRM akkauntlari", "Аккаунты amoCRM"),
    "accounts.hint": (
        "Each account has its own connection, budget and queue. Add one with "
        "`amogate accounts add NAME --domain HOST`.",
        "Har bir akkauntning o'z ulanishi, limiti va navbati bor. Qo'shish: "
        "`amogate accounts add NAME --domain HOST`.",
        "У каждого аккаунта своё подключение, лимит и очередь. Добавить: "
        "`amogate accounts add NAME --domain HOST`.",
    ),
    "accounts.name": ("Name", "Nomi", "Имя"),
    "accounts.domain": ("Domain", "Domen", "Домен"),
    "accounts.state": ("Connection", "Ulanish", "Подключение"),
    "accounts.queued": ("Waiting", "Navbatda", "В очереди"),
    "accounts.failed": ("Failed", "Xato", "С ошибкой"),
    "accounts.connect": ("Connect", "Ulash", "Подключить"),
    "accounts.reconnect": ("Reconnect", "Qayta ulash", "Переподключить"),
    "accounts.empty": (
        "No amoCRM account is configured yet.",
        "Hali amoCRM akkaunti sozlanmagan.",
        "Аккаунт amoCRM ещё не настроен.",
    ),
    "deliveries.filter_account": ("Account", "Akkaunt", "Аккаунт"),
}

_INDEX = {code: i for i, code in enumerate(LANGUAGES)}

# Texts other parts of amogate write in English (the worker's errors, the OAuth refusals and
# advice) -> (Uzbek, Russian). Shown through `translate_text`; a test checks that every such
# text the code can produce is here.
_TEXTS: dict[str, tuple[str, str]] = {
    # the worker (failures.py, worker/), its retry policy and the info cache (errors.py)
    "amoCRM did not answer in time": (
        "amoCRM o'z vaqtida javob bermadi",
        "amoCRM не ответил вовремя",
    ),
    "amoCRM rate limit reached": (
        "amoCRM so'rovlar chekloviga yetildi",
        "достигнут лимит запросов amoCRM",
    ),
    "amoCRM is unavailable": ("amoCRM ishlamayapti", "amoCRM недоступен"),
    "amoCRM needs (re)authorization": (
        "amoCRM ni qayta ulash kerak",
        "amoCRM нужно подключить заново",
    ),
    "amoCRM refused access (403)": (
        "amoCRM kirishni rad etdi (403)",
        "amoCRM отказал в доступе (403)",
    ),
    "the amoCRM account's paid period has ended": (
        "amoCRM hisobining to'langan muddati tugagan",
        "оплаченный период аккаунта amoCRM закончился",
    ),
    "amoCRM rejected the request": ("amoCRM so'rovni rad etdi", "amoCRM отклонил запрос"),
    "amoCRM returned an error": ("amoCRM xato qaytardi", "amoCRM вернул ошибку"),
    "amoCRM rejected the lead": ("amoCRM lidni rad etdi", "amoCRM отклонил заявку"),
    "amoCRM rejected the note": ("amoCRM izohni rad etdi", "amoCRM отклонил примечание"),
    "the account has no such custom field or option": (
        "hisobda bunday qo'shimcha maydon yoki variant yo'q",
        "в аккаунте нет такого дополнительного поля или варианта",
    ),
    "amoCRM's answer did not list this lead": (
        "amoCRM javobida bu lid yo'q",
        "в ответе amoCRM нет этой заявки",
    ),
    "amoCRM's answer did not list the note": (
        "amoCRM javobida izoh yo'q",
        "в ответе amoCRM нет примечания",
    ),
    "amoCRM is not connected: open /oauth/authorize to connect it": (
        "amoCRM ulanmagan: ulash uchun /oauth/authorize ni oching",
        "amoCRM не подключён: откройте /oauth/authorize, чтобы подключить",
    ),
    "amoCRM needs reauthorization: open /oauth/authorize to reconnect it": (
        "amoCRM ni qayta avtorizatsiya qilish kerak: /oauth/authorize ni oching",
        "amoCRM нужна повторная авторизация: откройте /oauth/authorize",
    ),
    "gave up: amoCRM did not accept the lead in time": (
        "voz kechildi: amoCRM lidni belgilangan muddatda qabul qilmadi",
        "отказ: amoCRM не принял заявку за отведённое время",
    ),
    # the OAuth flow (connection/advice.py, connection/connect.py, api/oauth.py)
    "amoCRM connected": ("amoCRM ulandi", "amoCRM подключён"),
    "amoCRM was not connected": ("amoCRM ulanmadi", "amoCRM не подключён"),
    "amoCRM did not accept the integration's keys (HTTP 401): check AMO_CLIENT_ID / "
    "AMO_CLIENT_SECRET, and that AMO_REDIRECT_URI equals the integration's Redirect URI": (
        "amoCRM integratsiya kalitlarini qabul qilmadi (HTTP 401): AMO_CLIENT_ID / "
        "AMO_CLIENT_SECRET ni tekshiring, shuningdek AMO_REDIRECT_URI integratsiyaning "
        "Redirect URI bilan bir xil ekanini",
        "amoCRM не принял ключи интеграции (HTTP 401): проверьте AMO_CLIENT_ID / "
        "AMO_CLIENT_SECRET, а также что AMO_REDIRECT_URI совпадает с Redirect URI интеграции",
    ),
    "amoCRM came back without the OAuth state: start again from the admin page or "
    "/oauth/authorize, and check AMO_REDIRECT_URI equals the integration's Redirect URI": (
        "amoCRM OAuth state siz qaytdi: boshqaruv sahifasidan yoki /oauth/authorize dan "
        "qaytadan boshlang va AMO_REDIRECT_URI integratsiyaning Redirect URI bilan bir xil "
        "ekanini tekshiring",
        "amoCRM вернулся без OAuth state: начните заново с панели администратора или "
        "/oauth/authorize и проверьте, что AMO_REDIRECT_URI совпадает с Redirect URI "
        "интеграции",
    ),
    "Invalid or expired OAuth state: start again from the admin page or /oauth/authorize; if "
    "it happens again, check AMO_REDIRECT_URI equals the integration's Redirect URI": (
        "OAuth state noto'g'ri yoki eskirgan: boshqaruv sahifasidan yoki /oauth/authorize dan "
        "qaytadan boshlang; yana takrorlansa, AMO_REDIRECT_URI integratsiyaning Redirect URI "
        "bilan bir xil ekanini tekshiring",
        "Неверный или устаревший OAuth state: начните заново с панели администратора или "
        "/oauth/authorize; если повторится, проверьте, что AMO_REDIRECT_URI совпадает с "
        "Redirect URI интеграции",
    ),
    "amoCRM did not complete the code exchange; try again in a minute": (
        "amoCRM kod almashinuvini yakunlamadi; bir daqiqadan so'ng qayta urinib ko'ring",
        "amoCRM не завершил обмен кода; попробуйте через минуту",
    ),
    "Access was denied in amoCRM": (
        "amoCRM da ruxsat berilmadi",
        "В amoCRM доступ не разрешён",
    ),
    "amoCRM refused": ("amoCRM rad etdi", "amoCRM отказал"),
    "Untrusted referer: not an amoCRM or Kommo account host": (
        "Ishonchsiz referer: amoCRM yoki Kommo hisobi manzili emas",
        "Недоверенный referer: это не адрес аккаунта amoCRM или Kommo",
    ),
    "Missing referer: the account host is unknown (set AMO_DOMAIN)": (
        "referer yo'q: hisob manzili noma'lum (AMO_DOMAIN ni o'rnating)",
        "Нет referer: адрес аккаунта неизвестен (задайте AMO_DOMAIN)",
    ),
    "Missing authorization code": ("Avtorizatsiya kodi yo'q", "Нет кода авторизации"),
    "AMO_CLIENT_ID is not set": ("AMO_CLIENT_ID o'rnatilmagan", "AMO_CLIENT_ID не задан"),
    "AMO_DOMAIN must be an amoCRM or Kommo account host (or set AMO_BASE_URL)": (
        "AMO_DOMAIN amoCRM yoki Kommo hisobi manzili bo'lishi kerak (yoki AMO_BASE_URL ni "
        "o'rnating)",
        "AMO_DOMAIN должен быть адресом аккаунта amoCRM или Kommo (или задайте AMO_BASE_URL)",
    ),
}

# Texts with a variable part: (pattern, Uzbek, Russian); the named groups fill the templates,
# and `text` and `reason` groups are themselves translated.
_PATTERNS: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (
        re.compile(r"(?P<text>.+) \(HTTP (?P<status>\d{3})\)"),
        "{text} (HTTP {status})",
        "{text} (HTTP {status})",
    ),
    (
        re.compile(r"(?P<reason>gave up: [^;]+); last error: (?P<text>.+)"),
        "{reason}; oxirgi xato: {text}",
        "{reason}; последняя ошибка: {text}",
    ),
    (
        re.compile(r"unsorted (?P<uid>\S+), lead (?P<lead>\d+)"),
        "saralanmagan {uid}, lid {lead}",
        "неразобранное {uid}, сделка {lead}",
    ),
    (
        re.compile(r"found unsorted (?P<uid>\S+)"),
        "saralanmagan {uid} topildi",
        "найдено неразобранное {uid}",
    ),
    (
        re.compile(r"amoCRM refused the authorization code \((?P<hint>.+)\): connect again"),
        "amoCRM avtorizatsiya kodini rad etdi ({hint}): qaytadan ulang",
        "amoCRM отклонил код авторизации ({hint}): подключите заново",
    ),
    (
        re.compile(
            r"amogate is now connected to (?P<name>.+)\. Leads will be delivered there; "
            r"you can close this page\."
        ),
        "amogate endi {name} ga ulandi. Lidlar o'sha yerga yetkaziladi; bu sahifani yopishingiz "
        "mumkin.",
        "amogate подключён к {name}. Заявки будут доставляться туда; эту страницу можно закрыть.",
    ),
)


def message_ids() -> list[str]:
    return list(_MESSAGES)


def has_message(message_id: str) -> bool:
    return message_id in _MESSAGES


def text(message_id: str, lang: str) -> str:
    """The raw catalogue text (placeholders not filled)."""
    return _MESSAGES[message_id][_INDEX.get(lang, 0)]


def translator(lang: str) -> Translator:
    """`t(message_id, **values)` for one language; an unknown id raises KeyError (a typo in a
    template should fail its test, not show a raw id to an operator)."""
    index = _INDEX.get(lang, 0)

    def t(message_id: str, **values: object) -> str:
        template = _MESSAGES[message_id][index]
        if any(isinstance(v, Markup) for v in values.values()):
            # A value that is already HTML (a <time>): escape the text around it, keep it.
            return escape(template).format(**values)
        return template.format(**values) if values else template

    return t


def translate_text(value: str | None, lang: str) -> str:
    """A text another part of amogate wrote in English, in `lang` when it is a known one
    (else as it is: amoCRM's own words, a new text not translated yet)."""
    if not value:
        return ""
    index = _INDEX.get(lang, 0)
    if index == 0:
        return value
    known = _TEXTS.get(value)
    if known is not None:
        return known[index - 1]
    for pattern, *templates in _PATTERNS:
        match = pattern.fullmatch(value)
        if match is not None:
            values = match.groupdict()
            for key in ("text", "reason"):
                if key in values:
                    values[key] = translate_text(values[key], lang)
            return templates[index - 1].format(**values)
    return value


def known_english_texts() -> list[str]:
    """Every fixed English text amogate may show an operator (for the no-English checks)."""
    return [text(message_id, "en") for message_id in _MESSAGES] + list(_TEXTS)


def translatable(value: str) -> bool:
    """Whether `translate_text` knows `value` (exactly or by a pattern)."""
    return value in _TEXTS or any(p.fullmatch(value) for p, *_ in _PATTERNS)


def negotiate(query: str | None, cookie: str | None, accept_language: str | None) -> str:
    """The language to use: a valid `?lang=`, else the cookie, else Accept-Language."""
    for candidate in (query, cookie):
        if candidate in LANGUAGES:
            return candidate
    for part in (accept_language or "").split(","):
        code = part.split(";", 1)[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return DEFAULT_LANGUAGE
