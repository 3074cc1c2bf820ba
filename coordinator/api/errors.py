"""Every error of the control API is one JSON shape: ``{"error", "message", "details"?}``.

``error`` is a short stable code clients branch on; ``message`` is a sentence for people.
FastAPI's own answers (a malformed body, an unknown route) are rewritten into that shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from coordinator.logs import get_logger
from persistence import database_failure
from schemas import NotFound, UnknownTargets

log = get_logger("coordinator.api")

_GENERIC_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    503: "unavailable",
}
_MAX_SHOWN_INPUT = 80  # characters of a rejected value echoed back


class ErrorBody(BaseModel):
    """The body of every error answer."""

    error: str
    message: str
    details: dict[str, Any] | None = None


class ApiError(Exception):
    """An answer other than success, raised anywhere below a route."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.details = details
        self.headers = headers


def error_response(
    status: int,
    error: str,
    message: str,
    *,
    details: dict[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody(error=error, message=message, details=details)
    return JSONResponse(
        body.model_dump(mode="json", exclude_none=True), status_code=status, headers=headers
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid_request)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(NotFound, _not_found)  # type: ignore[arg-type]
    app.add_exception_handler(UnknownTargets, _unknown_targets)  # type: ignore[arg-type]


def unhandled_error_response(request: Request, exc: Exception) -> JSONResponse:
    """The answer to an exception no handler took: 503 when the database failed (retries
    exhausted, or an error no retry cures), else 500. Either is logged with its traceback."""
    failure = database_failure(exc)
    if failure is not None:
        log.error("api_database_unavailable", path=request.url.path, error=failure, exc_info=exc)
        return error_response(
            503, "database_unavailable", f"the database is unavailable: {failure}"
        )
    log.error(
        "api_internal_error",
        path=request.url.path,
        error=f"{type(exc).__name__}: {exc}",
        exc_info=exc,
    )
    return error_response(
        500,
        "internal_error",
        f"the server failed to answer ({type(exc).__name__}); its log says why "
        "(api_internal_error)",
    )


async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    if exc.status >= 400:
        log.info("api_refused", path=request.url.path, status=exc.status, error=exc.error)
    return error_response(
        exc.status, exc.error, exc.message, details=exc.details, headers=exc.headers
    )


async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = [_problem(error) for error in exc.errors()]
    broken = next((e for e in exc.errors() if e.get("type") == "json_invalid"), None)
    if broken is not None:
        # Its location is ("body", character offset), not a field.
        at = broken["loc"][-1] if len(broken.get("loc", ())) > 1 else "?"
        why = (broken.get("ctx") or {}).get("error", "JSON decode error")
        message = f"the request body is not valid JSON: {why} (at character {at})"
        problems = [{"in": "body", "field": "", "problem": message}]
    elif [(e.get("type"), tuple(e.get("loc", ()))) for e in exc.errors()] == [
        ("unstorable_text", ("body",))
    ]:
        message = problems[0]["problem"]  # about the body as a whole: its own sentence
    else:
        message = "the request is not valid: " + "; ".join(
            f"{p['field']}: {p['problem']}" if p["field"] else p["problem"] for p in problems
        )
    log.info("api_refused", path=request.url.path, status=422, error="invalid_request")
    return error_response(422, "invalid_request", message, details={"problems": problems})


def _problem(error: Any) -> dict[str, Any]:
    # The first element of a location is where the value came from (body, path, query).
    location = [str(part) for part in error.get("loc", ())]
    source = location[0] if location else ""
    field = ".".join(location[1:])
    problem = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    shown: dict[str, Any] = {"in": source, "field": field, "problem": problem}
    value = error.get("input")
    if isinstance(value, str | int | float | bool) and error.get("type") != "missing":
        text = str(value)
        shown["got"] = text if len(text) <= _MAX_SHOWN_INPUT else text[:_MAX_SHOWN_INPUT] + "..."
    return shown


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = _GENERIC_CODES.get(exc.status_code, "error")
    if exc.status_code == 404:
        message = f"no route {request.url.path} (GET /openapi.json lists the routes)"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    return error_response(exc.status_code, code, message, headers=exc.headers)


async def _not_found(request: Request, exc: NotFound) -> JSONResponse:
    log.info("api_refused", path=request.url.path, status=404, error="not_found")
    return error_response(404, "not_found", str(exc))


async def _unknown_targets(request: Request, exc: UnknownTargets) -> JSONResponse:
    log.info("api_refused", path=request.url.path, status=422, error="unknown_target")
    return error_response(422, "unknown_target", str(exc))
