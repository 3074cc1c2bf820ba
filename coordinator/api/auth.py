"""Who may change the fleet: a bearer token on every mutating route, checked first.

The check runs before FastAPI reads the body, so a client without the token learns
nothing about what a valid body looks like and cannot make the server parse one.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer

from coordinator.api.body_limit import MAX_BODY_BYTES, BodyTooLarge
from coordinator.api.context import Access, context_of
from coordinator.api.errors import ApiError
from coordinator.api.json_text import InvalidJson, check_json_text
from schemas.settings import API_TOKEN_ENV

bearer_scheme = HTTPBearer(
    auto_error=False,
    description=f"`Authorization: Bearer <{API_TOKEN_ENV}>` on every mutating route",
)
"""Declared on the mutating routes so the OpenAPI schema shows the lock; the check itself
is ``GuardedRoute``'s."""

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def check_access(access: Access, authorization: str | None) -> None:
    """Raise the ``ApiError`` a request with this ``Authorization`` header deserves."""
    if access.read_only or access.token is None:
        raise ApiError(
            403,
            "read_only",
            "this control API was started read-only (`serve --read-only`): it changes nothing",
        )
    if not authorization:
        raise ApiError(
            401,
            "missing_token",
            f"this route changes the fleet: send Authorization: Bearer <{API_TOKEN_ENV}>",
            headers=_CHALLENGE,
        )
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not _same(given.strip(), access.token):
        raise ApiError(
            401,
            "invalid_token",
            f"the bearer token is not the one this server was started with ({API_TOKEN_ENV})",
            headers=_CHALLENGE,
        )


def _same(given: str, expected: str) -> bool:
    # Digests first: compare_digest's time still depends on the lengths it compares.
    return hmac.compare_digest(
        hashlib.sha256(given.encode("utf-8")).digest(),
        hashlib.sha256(expected.encode("utf-8")).digest(),
    )


class GuardedRoute(APIRoute):
    """A route that demands the token, then a body of sane size that is storable JSON
    text, before anything else."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            check_access(context_of(request).access, request.headers.get("authorization"))
            if request.method != "GET":
                _demand_json(request)
                _check_json_text(await _read_body(request))
            return await handler(request)

        return guarded


def _demand_json(request: Request) -> None:
    # FastAPI would read a form-encoded body (curl -d's default) as bytes and answer that
    # it is "not a valid dictionary": say what is actually wrong instead.
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind and kind != "application/json" and not kind.endswith("+json"):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"the body must be JSON sent with Content-Type: application/json (got {kind})",
        )


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BodyTooLarge(MAX_BODY_BYTES)
    # A chunked body declares no length: ``BodyLimit`` stops reading it at the limit.
    # Starlette keeps what was read for the route.
    return await request.body()


def _check_json_text(body: bytes) -> None:
    # Raised as FastAPI's own validation error, so every 422 is written by one handler.
    if not body:
        return  # the route says which fields are missing
    try:
        problem = check_json_text(body)
    except InvalidJson as exc:
        error = exc.error
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body", error.pos),
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": error.msg},
                }
            ]
        ) from None
    if problem is not None:
        raise RequestValidationError(
            [
                {
                    "type": "unstorable_text",
                    "loc": ("body", *problem.location),
                    "msg": problem.message,
                }
            ]
        )
