"""Running the control API: uvicorn on a socket already bound, over an open store."""

from __future__ import annotations

import contextlib
import signal
import socket
from collections.abc import Iterator

import anyio
import uvicorn

from coordinator.api.app import OPENAPI_PATH, create_app
from coordinator.api.context import context_of
from coordinator.heartbeat_loop import CLOCK_REALIGN_INTERVAL
from coordinator.logs import get_logger
from persistence import Store
from schemas import Settings

GRACEFUL_SHUTDOWN = 5  # seconds requests in flight get after a stop signal

log = get_logger("coordinator.api")


async def serve_api(
    settings: Settings,
    url: str,
    listener: socket.socket,
    read_only: bool,
    bind_host: str | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT; prints the address on stdout once listening.
    ``bind_host`` is the ``--host`` as given (a name is one the server answers to)."""
    store = await Store.open(url, server_time=True)
    try:
        app = create_app(settings, store, read_only=read_only, bind_host=bind_host)
        config = uvicorn.Config(
            app,
            log_config=None,  # structlog writes our lines; uvicorn's own only on errors
            access_log=False,  # each request is logged once, as api_request
            lifespan="off",
            # The recorded issuer is the real peer: a forwarded header could name anyone.
            proxy_headers=False,
            server_header=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
        )
        server = _Server(config)
        host, port = listener.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        read_only = context_of(app).access.read_only
        mode = "read-only" if read_only else "token required to change"
        print(
            f"coordinator API listening on http://{shown}:{port} "
            f"(database {store.backend}, {mode}; OpenAPI schema at {OPENAPI_PATH})",
            flush=True,
        )
        log.info("api_started", host=host, port=port, backend=store.backend, read_only=read_only)
        async with anyio.create_task_group() as tg:
            tg.start_soon(_keep_clock_aligned, store)
            await server.serve(sockets=[listener])
            tg.cancel_scope.cancel()
        log.info("api_stopped")
    finally:
        await store.close()


async def _keep_clock_aligned(store: Store) -> None:
    # "alive" in the status is judged by the database's clock, as occurrences judge it.
    while True:
        await anyio.sleep(CLOCK_REALIGN_INTERVAL)
        try:
            await store.align_clock_with_server()
        except Exception as exc:  # the routes report a failing database; never stop serving
            log.warning("clock_alignment_failed", error=f"{type(exc).__name__}: {exc}")


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn re-raises the stop signal once it has stopped, so the process would die
        # of it; a stop signal is how `serve` is meant to end, so it exits 0 instead.
        stop = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in stop}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
