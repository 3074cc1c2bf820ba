"""The control API's application: ``create_app(settings, store, read_only=...)``.

Reads (status, events, diagnostics, metrics, commands without their signatures) are
open: bind the server to loopback or put it behind your proxy. It answers only Host
headers it knows (``coordinator.api.hosts``), so a browser page cannot reach a loopback
server by DNS rebinding. Every route that changes the fleet demands the
bearer token of ``COORDINATOR_API_TOKEN``; the emergency route also demands a valid
signature, which is judged and recorded by the store, not here.

Only the OpenAPI schema is served (``/openapi.json``): FastAPI's documentation pages load
their scripts from a CDN, which a server on an operator's loopback often cannot reach.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

from coordinator.api import control, reads
from coordinator.api.body_limit import BodyLimit
from coordinator.api.context import Access, ApiContext, context_of
from coordinator.api.diagnostics import package_versions
from coordinator.api.errors import (
    error_response,
    install_error_handlers,
    unhandled_error_response,
)
from coordinator.api.hosts import ALLOWED_HOSTS_ENV, allowed_host_names, host_allowed
from coordinator.api.openapi import api_schema
from coordinator.emergency import make_verifier
from coordinator.keys import load_trusted_keys
from coordinator.logs import get_logger
from persistence import Store
from schemas import Settings

log = get_logger("coordinator.api")

OPENAPI_PATH = "/openapi.json"
DESCRIPTION = """\
Control one fleet of coordinator occurrences through its shared database.

Mutating routes need `Authorization: Bearer <COORDINATOR_API_TOKEN>`; the emergency
route also needs a command signed by a key in `COORDINATOR_TRUSTED_KEYS`. Every error is
`{"error": code, "message": sentence, "details": {...}}`.

Request bodies are JSON text: UTF-8, at most 64 KiB, and no string in them may hold
U+0000 or a lone surrogate (`\\ud800`): those are 422s, since no database could store
them. A body over the limit is refused with 413 without being read further, and the
connection is closed.
"""


def create_app(
    settings: Settings, store: Store, *, read_only: bool = False, bind_host: str | None = None
) -> FastAPI:
    """The application over an open ``store``; the caller opens and closes it.

    Without ``settings.api_token`` the API is read-only whatever ``read_only`` says.
    ``bind_host`` (the ``--host`` it listens on) is one of the host names it answers.
    Raises ``ConfigurationError`` if a trusted key does not load.
    """
    version = package_versions()["coordinator"] or "unknown"
    token = settings.api_token.get_secret_value() if settings.api_token else None
    app = FastAPI(
        title="coordinator control API",
        version=version,
        description=DESCRIPTION,
        openapi_url=OPENAPI_PATH,
        docs_url=None,
        redoc_url=None,
    )
    app.state.context = ApiContext(
        settings=settings,
        store=store,
        access=Access(token=token, read_only=read_only or token is None),
        verifier=make_verifier(settings),
        key_ids=tuple(sorted(load_trusted_keys(settings.trusted_keys))),
        version=version,
        allowed_hosts=allowed_host_names(bind_host, settings.api_allowed_hosts),
    )
    app.openapi = lambda: api_schema(app)  # type: ignore[method-assign]
    install_error_handlers(app)
    app.include_router(reads.router)
    app.include_router(control.router)
    # Innermost first: the body limit wraps the routes' ``receive``; the log sees its 413.
    app.add_middleware(BodyLimit)
    app.middleware("http")(_check_host)  # inside the log: a refused host is logged too
    app.middleware("http")(_log_request)
    return app


async def _check_host(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    header = request.headers.get("host")
    if not host_allowed(header, context_of(request).allowed_hosts):
        log.warning("api_host_refused", host=header, client=_client(request))
        return error_response(
            400,
            "host_not_allowed",
            f"this server does not answer to the host {header!r} (a guard against DNS "
            f"rebinding): use an IP address, localhost or the --host name, or list the name "
            f"in {ALLOWED_HOSTS_ENV}",
        )
    return await call_next(request)


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


async def _log_request(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    started = time.perf_counter()
    try:
        response = await call_next(request)
    except Exception as exc:
        # Starlette's last-resort handler answers and then re-raises, and uvicorn drops
        # the connection: answering here keeps a keep-alive client able to ask again.
        response = unhandled_error_response(request, exc)
    log.info(
        "api_request",
        method=request.method,
        path=request.url.path,
        status=response.status_code,
        client=_client(request),
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return response
