from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from amogate.amocrm.errors import (
    BODY_EXCERPT_LIMIT,
    AmoAuthError,
    AmoBlockedError,
    AmoError,
    AmoNotFoundError,
    AmoPaymentError,
    AmoPermanentError,
    AmoRateLimitedError,
    AmoRefreshRevokedError,
    AmoTimeoutError,
    AmoTransientError,
    AmoUnavailableError,
    FieldError,
    ItemValidationErrors,
    error_from_exception,
    error_from_response,
)
from tests.amocrm.helpers import html, problem

VALIDATION_BODY = {
    "validation-errors": [
        {
            "request_id": "0",
            "errors": [
                {
                    "code": "NotSupportedChoice",
                    "path": "custom_fields_values.0.field_id",
                    "detail": "The value you selected is not a valid choice.",
                },
                {
                    "code": "InvalidType",
                    "path": "status_id",
                    "detail": "This value should be of type array.",
                },
            ],
        }
    ],
    "title": "Bad Request",
    "type": "https://httpstatus.es/400",
    "status": 400,
    "detail": "Request validation failed",
}


def test_400_with_validation_errors_is_permanent_and_lists_field_errors() -> None:
    error = error_from_response(httpx.Response(400, json=VALIDATION_BODY))

    assert type(error) is AmoPermanentError
    assert error.status == 400
    assert error.detail == "Request validation failed"
    assert error.validation_errors == [
        ItemValidationErrors(
            "0",
            [
                FieldError(
                    "NotSupportedChoice",
                    "custom_fields_values.0.field_id",
                    "The value you selected is not a valid choice.",
                ),
                FieldError("InvalidType", "status_id", "This value should be of type array."),
            ],
        )
    ]


def test_400_without_validation_errors_is_permanent_with_an_empty_list() -> None:
    error = error_from_response(problem(400, "Request data can not be empty"))

    assert type(error) is AmoPermanentError
    assert error.detail == "Request data can not be empty"
    assert error.validation_errors == []


def test_validation_entry_without_request_id_is_keyed_by_its_index() -> None:
    body = {"validation-errors": [{"errors": []}, {"errors": [{"code": "FieldMissing"}]}]}

    error = error_from_response(httpx.Response(400, json=body))

    assert isinstance(error, AmoPermanentError)
    assert [item.request_id for item in error.validation_errors] == ["0", "1"]
    assert error.validation_errors[1].errors == [FieldError("FieldMissing", "", "")]


def test_401_is_an_auth_error() -> None:
    error = error_from_response(problem(401, "Invalid user name or password"))

    assert type(error) is AmoAuthError
    assert error.detail == "Invalid user name or password"


def test_402_is_a_payment_error() -> None:
    assert type(error_from_response(problem(402, "Payment required"))) is AmoPaymentError


def test_403_html_page_is_blocked_with_the_page_title_as_detail() -> None:
    error = error_from_response(html(403, "403 Forbidden"))

    assert type(error) is AmoBlockedError
    assert error.detail == "403 Forbidden"
    assert error.body_excerpt is not None
    assert "nginx" in error.body_excerpt


def test_403_json_is_blocked() -> None:
    error = error_from_response(problem(403, "Access denied"))

    assert type(error) is AmoBlockedError
    assert error.detail == "Access denied"


def test_404_is_not_found() -> None:
    error = error_from_response(problem(404, "Cannot GET https://sub.kommo.com/example"))

    assert type(error) is AmoNotFoundError


def test_429_json_takes_retry_after_from_the_body() -> None:
    error = error_from_response(problem(429, "Too many requests", retry_after=300))

    assert type(error) is AmoRateLimitedError
    assert error.retry_after == 300.0
    assert error.maybe_applied is False


def test_429_html_without_header_has_no_retry_after() -> None:
    error = error_from_response(html(429, "429 Too Many Requests"))

    assert type(error) is AmoRateLimitedError
    assert error.retry_after is None
    assert error.detail == "429 Too Many Requests"


def test_429_retry_after_header_wins_over_the_body() -> None:
    response = problem(429, "slow down", retry_after=300)
    response.headers["Retry-After"] = "7"

    error = error_from_response(response)

    assert isinstance(error, AmoRateLimitedError)
    assert error.retry_after == 7.0


def test_429_retry_after_header_may_be_an_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    response = html(429, "Too Many", headers={"Retry-After": format_datetime(when, usegmt=True)})

    error = error_from_response(response)

    assert isinstance(error, AmoRateLimitedError)
    assert error.retry_after is not None
    assert 25 <= error.retry_after <= 31


def test_500_problem_json_is_transient() -> None:
    response = httpx.Response(
        500, json={"title": "ErrInternalServer", "status": 500, "detail": "boom", "trace_id": "8e"}
    )

    error = error_from_response(response)

    assert type(error) is AmoTransientError
    assert error.detail == "boom"
    assert error.maybe_applied is True


@pytest.mark.parametrize(
    ("status", "kind"),
    [(502, AmoUnavailableError), (503, AmoUnavailableError), (504, AmoTimeoutError)],
)
def test_gateway_html_errors_are_transient(status: int, kind: type[AmoError]) -> None:
    error = error_from_response(html(status, f"{status} Bad Gateway"))

    assert type(error) is kind
    assert isinstance(error, AmoTransientError)
    assert error.status == status


def test_other_4xx_statuses_are_permanent() -> None:
    error = error_from_response(problem(422, "Limit 250 per page"))

    assert type(error) is AmoPermanentError
    assert error.status == 422


def test_204_where_an_object_was_expected_is_not_found() -> None:
    assert type(error_from_response(httpx.Response(204))) is AmoNotFoundError


def test_a_success_with_an_unreadable_body_is_unavailable() -> None:
    error = error_from_response(httpx.Response(200, text="<html>maintenance</html>"))

    assert type(error) is AmoUnavailableError


def test_connect_error_is_unavailable_and_surely_not_applied() -> None:
    error = error_from_exception(httpx.ConnectError("Connection refused"))

    assert type(error) is AmoUnavailableError
    assert error.maybe_applied is False
    assert error.status is None


def test_read_timeout_is_a_timeout_that_may_have_been_applied() -> None:
    error = error_from_exception(httpx.ReadTimeout("timed out"))

    assert type(error) is AmoTimeoutError
    assert error.maybe_applied is True


def test_connect_timeout_was_surely_not_applied() -> None:
    error = error_from_exception(httpx.ConnectTimeout("timed out"))

    assert isinstance(error, AmoTimeoutError)
    assert error.maybe_applied is False


def test_connection_reset_while_reading_is_unavailable() -> None:
    assert type(error_from_exception(httpx.ReadError("reset by peer"))) is AmoUnavailableError


def test_oauth_401_with_a_hint_means_the_refresh_token_is_revoked() -> None:
    response = httpx.Response(
        401,
        json={
            "hint": "Token has been revoked",
            "title": "Некорректный запрос",
            "type": "https://developers.amocrm.ru/v3/errors/OAuthProblemJson",
            "status": 401,
            "detail": "В запросе отсутствует ряд параметров или параметры невалидны",
        },
    )

    error = error_from_response(response, oauth=True)

    assert type(error) is AmoRefreshRevokedError
    assert error.detail == "Token has been revoked"


def test_oauth_401_without_a_hint_means_a_bad_client() -> None:
    response = httpx.Response(
        401,
        json={
            "title": "Некорректный клиент",
            "type": "https://developers.amocrm.ru/v3/errors/OAuthProblemJson",
            "status": 401,
            "detail": "Авторизация клиента не прошла",
        },
    )

    error = error_from_response(response, oauth=True)

    assert type(error) is AmoAuthError
    assert error.detail == "Авторизация клиента не прошла"


def test_oauth_400_for_a_bad_code_is_an_auth_error() -> None:
    response = problem(400, "invalid request", hint="Authorization code has expired")

    assert type(error_from_response(response, oauth=True)) is AmoAuthError


def test_body_excerpt_is_truncated_and_hides_tokens() -> None:
    jwt_like = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJleHAiOjF9.c2ln"
    body = (
        f'{{"access_token": "abc", "echo": "{jwt_like}", "refresh": "def50200ffee",'
        f' "pad": "{"x" * 5000}"}}'
    )

    error = error_from_response(httpx.Response(500, text=body))

    assert error.body_excerpt is not None
    assert len(error.body_excerpt) == BODY_EXCERPT_LIMIT
    assert "abc" not in error.body_excerpt
    assert jwt_like not in error.body_excerpt
    assert "def50200ffee" not in error.body_excerpt


def test_body_excerpt_keeps_amocrm_validation_codes_for_the_operator() -> None:
    body = (
        '{"validation-errors": [{"request_id": "0", "errors": [{"code": "NotSupportedChoice",'
        ' "path": "custom_fields_values.0.field_id", "detail": "not a valid choice"}]}],'
        ' "status": 400}'
    )

    error = error_from_response(httpx.Response(400, text=body))

    assert error.body_excerpt is not None
    assert '"code": "NotSupportedChoice"' in error.body_excerpt


def test_str_and_repr_are_short_and_name_the_status() -> None:
    error = error_from_response(problem(402, "Payment required"))

    assert str(error) == "amoCRM 402: Payment required"
    assert repr(error) == "AmoPaymentError(status=402, detail='Payment required')"


# status -> (error type, detail) for an answer whose body is a problem+json saying "Nope".
BY_STATUS: dict[int, tuple[type[AmoError], str]] = {
    401: (AmoAuthError, "Nope"),
    402: (AmoPaymentError, "Nope"),
    403: (AmoBlockedError, "Nope"),
    404: (AmoNotFoundError, "Nope"),
    408: (AmoTimeoutError, "Nope"),
    409: (AmoPermanentError, "Nope"),
    429: (AmoRateLimitedError, "Nope"),
    500: (AmoTransientError, "Nope"),
    502: (AmoUnavailableError, "Nope"),
    503: (AmoUnavailableError, "Nope"),
    504: (AmoTimeoutError, "Nope"),
}


@pytest.mark.parametrize("status", BY_STATUS)
def test_every_error_status_keeps_its_status_detail_and_body(status: int) -> None:
    response = problem(status, "Nope")
    error = error_from_response(response)
    kind, detail = BY_STATUS[status]
    assert type(error) is kind
    assert (error.status, error.detail) == (status, detail)
    assert error.body_excerpt == response.text


@pytest.mark.parametrize("status", [429, 502, 503])
def test_retry_after_is_kept_where_amocrm_may_send_it(status: int) -> None:
    response = httpx.Response(status, headers={"Retry-After": "12"}, text="busy")
    error = error_from_response(response)
    assert isinstance(error, AmoTransientError)
    assert error.retry_after == 12


@pytest.mark.parametrize(
    ("status", "kind", "detail"),
    [(204, AmoNotFoundError, "no content"), (200, AmoUnavailableError, "unreadable answer")],
)
def test_a_success_without_the_expected_body_is_an_error_with_its_status(
    status: int, kind: type[AmoError], detail: str
) -> None:
    response = httpx.Response(status, text="" if status == 204 else "<html>proxy</html>")
    error = error_from_response(response)
    assert type(error) is kind
    assert (error.status, error.detail) == (status, detail)
    assert error.body_excerpt == (None if status == 204 else "<html>proxy</html>")


def test_a_300_is_not_mistaken_for_a_success() -> None:
    assert type(error_from_response(httpx.Response(300, text="moved"))) is AmoPermanentError


@pytest.mark.parametrize(
    ("hint", "kind"), [("revoked", AmoRefreshRevokedError), (None, AmoAuthError)]
)
def test_the_token_endpoint_keeps_status_and_body(hint: str | None, kind: type[AmoError]) -> None:
    body = {"error": "invalid_grant", "hint": hint} if hint else {"error": "invalid_client"}
    response = httpx.Response(401, json=body)
    error = error_from_response(response, oauth=True)
    assert type(error) is kind
    assert error.status == 401
    assert error.body_excerpt == response.text


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_in_the_json_body_counts_when_there_is_no_header(status: int) -> None:
    error = error_from_response(httpx.Response(status, json={"retry_after": 9}))
    assert isinstance(error, AmoTransientError)
    assert error.retry_after == 9
