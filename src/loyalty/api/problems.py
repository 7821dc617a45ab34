"""Errors as Problem Details (RFC 9457), each with a stable machine-readable `code`."""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.types import ExceptionHandlersMap

from loyalty.errors import ErrorKind, FieldError, LoyaltyError, decoding_error

PROBLEM_MEDIA_TYPE = "application/problem+json"
_STATUS = {
    ErrorKind.INVALID: HTTPStatus.UNPROCESSABLE_ENTITY,
    ErrorKind.NOT_FOUND: HTTPStatus.NOT_FOUND,
    ErrorKind.CONFLICT: HTTPStatus.CONFLICT,
    ErrorKind.FORBIDDEN: HTTPStatus.FORBIDDEN,
    ErrorKind.UNAUTHENTICATED: HTTPStatus.UNAUTHORIZED,
    ErrorKind.UNAVAILABLE: HTTPStatus.SERVICE_UNAVAILABLE,
}
_HTTP_CODES: dict[type[HTTPException], str] = {
    NotFoundException: "route_not_found",
    MethodNotAllowedException: "method_not_allowed",
    NotAuthorizedException: "unauthenticated",
    PermissionDeniedException: "forbidden",
}
_MISSING = re.compile(r"^Missing required \w+ parameter '(?P<name>[^']+)'")

log = structlog.get_logger("loyalty.api")


def problem_body(
    status: int,
    code: str,
    detail: str,
    *,
    errors: list[FieldError] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"urn:loyalty:problem:{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "code": code,
        "detail": detail,
    }
    if errors:
        body["errors"] = [{"field": e.field, "code": e.code, "message": e.message} for e in errors]
    return body | (extra or {})


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    errors: list[FieldError] | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[dict[str, Any]]:
    body = problem_body(status, code, detail, errors=errors, extra=extra)
    return Response(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def status_of(error: LoyaltyError) -> int:
    return _STATUS[error.kind]


def error_body(error: LoyaltyError) -> dict[str, Any]:
    """A domain error as the problem body it would be answered with on its own."""
    return problem_body(
        status_of(error), error.code, error.detail, errors=error.errors, extra=error.extra
    )


def _loyalty_error(_: Request[Any, Any, Any], exc: LoyaltyError) -> Response[dict[str, Any]]:
    headers = {"WWW-Authenticate": "Bearer"} if exc.kind is ErrorKind.UNAUTHENTICATED else None
    return problem(
        status_of(exc), exc.code, exc.detail, errors=exc.errors, extra=exc.extra, headers=headers
    )


def _http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    if isinstance(exc, ValidationException):
        return _validation_error(exc)
    if exc.status_code == HTTPStatus.BAD_REQUEST:
        return problem(exc.status_code, "malformed_request", exc.detail, headers=exc.headers)
    phrase = HTTPStatus(exc.status_code).phrase
    code = _HTTP_CODES.get(type(exc)) or phrase.lower().replace(" ", "_")
    return problem(exc.status_code, code, exc.detail, headers=exc.headers)


def _validation_error(exc: ValidationException) -> Response[dict[str, Any]]:
    details = exc.extra if isinstance(exc.extra, list) else []
    errors = [_field_error(item) for item in details if isinstance(item, dict)]
    missing = _MISSING.match(exc.detail)
    if not errors and missing:
        errors = [FieldError(missing["name"], "required", f"{missing['name']} is required")]
    if not errors:
        return problem(HTTPStatus.BAD_REQUEST, "malformed_request", exc.detail)
    names = ", ".join(error.field for error in errors)
    return problem(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "validation_failed",
        f"invalid field(s): {names}",
        errors=errors,
    )


def _field_error(item: dict[str, Any]) -> FieldError:
    # Litestar names the field in `key` when the message has no path; "data" is its
    # name for the whole body.
    key = str(item.get("key") or "")
    return decoding_error(str(item.get("message", "invalid value")), "" if key == "data" else key)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.exception("unhandled_error", path=request.url.path)
    return problem(
        HTTPStatus.INTERNAL_SERVER_ERROR,
        "internal_error",
        "an unexpected error occurred; quote the X-Request-ID header when reporting it",
    )


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    LoyaltyError: _loyalty_error,
    HTTPException: _http_error,
    Exception: _unexpected,
}
