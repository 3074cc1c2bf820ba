"""The error answers each route documents in the OpenAPI schema: every status it can give
besides success, with the body it gives (checked by the schemathesis tier)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from coordinator.api.bodies import InvalidRequestBody
from coordinator.api.body_limit import MAX_BODY_BYTES
from coordinator.api.errors import ErrorBody

_WHEN = {
    400: "the Host header names no host this server answers (`host_not_allowed`)",
    401: "no bearer token (`missing_token`), or another one (`invalid_token`)",
    403: "the server was started `--read-only` (`read_only`)",
    404: "no record with this id (`not_found`)",
    409: "the command does not fit the fleet's state (`conflict`); recorded as refused",
    413: f"the body exceeds {MAX_BODY_BYTES} bytes (`body_too_large`); the connection is closed",
    415: "the body is not sent as `Content-Type: application/json` (`unsupported_media_type`)",
    422: "the request is not valid (`invalid_request`): each problem names its field",
    503: "the database failed (`database_unavailable`)",
}

EMERGENCY_REFUSED = (
    "the server is `--read-only` (`read_only`), or the command fails verification "
    "(`unsigned`, `malformed`, `unknown_key`, `bad_signature`, `wrong_audience`, `expired`, "
    "`from_the_future`, `replayed`): recorded as refused"
)
EMERGENCY_INVALID = (
    "the request is not valid (`invalid_request`), or a valid command names an occurrence "
    "that never joined the fleet (`unknown_target`, not recorded)"
)


class UnknownTargetBody(BaseModel):
    error: Literal["unknown_target"]
    message: str


EMERGENCY_422 = InvalidRequestBody | UnknownTargetBody

SERVED = (400,)
"""Any route: the Host guard (``coordinator.api.hosts``) answers before it."""
READ = (*SERVED, 422, 503)
"""A read with parameters: a value out of range, or a database that fails."""
MUTATE = (*SERVED, 401, 403, 413, 415, 422, 503)
"""A route that changes the fleet: its token, its body, its database."""


def errors(
    *codes: int, invalid: Any = InvalidRequestBody, **when: str
) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route that can answer ``codes``: ``invalid`` is the body of
    its 422, and ``when`` overrides the description of a status, keyed ``s403``."""
    return {
        code: {
            "model": invalid if code == 422 else ErrorBody,
            "description": when.get(f"s{code}", _WHEN[code]),
        }
        for code in sorted(codes)
    }
