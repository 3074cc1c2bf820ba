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
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer

from coordinator.api.context import Access, context_of
from coordinator.api.errors import ApiError
from schemas.settings import API_TOKEN_ENV

MAX_BODY_BYTES = 64 * 1024
"""A signed command is well under 2 KiB; anything this large is not one of ours."""

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
    """A route that demands the token (and a body of sane size) before anything else."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            check_access(context_of(request).access, request.headers.get("authorization"))
            if request.method != "GET":
                _demand_json(request)
                await _refuse_large_body(request)
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


async def _refuse_large_body(request: Request) -> None:
    declared = request.headers.get("content-length", "")
    too_large = declared.isdigit() and int(declared) > MAX_BODY_BYTES
    if not too_large:
        # Chunked bodies declare no length: read it (Starlette keeps it for the route).
        too_large = len(await request.body()) > MAX_BODY_BYTES
    if too_large:
        raise ApiError(413, "body_too_large", f"the request body exceeds {MAX_BODY_BYTES} bytes")
