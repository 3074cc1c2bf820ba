"""``serve``: the HTTP control API of the fleet whose database it is pointed at."""

from __future__ import annotations

import argparse
import socket

import anyio

from coordinator.cli.arguments import add_command, bounded_int, utf8_text
from coordinator.cli.options import (
    EXIT_OK,
    add_database_flag,
    add_logging_flags,
    existing_database_url,
    refuse,
    settings_from_args,
)
from coordinator.keys import load_trusted_keys
from coordinator.logs import configure_logging
from schemas import ConfigurationError, DatabaseUnavailable, Settings
from schemas.settings import API_TOKEN_ENV, MIN_TOKEN_LENGTH

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8077
LISTEN_BACKLOG = 128


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        commands,
        "serve",
        help="serve the HTTP control API (status, events, metrics, commands)",
        description="Serve the HTTP control API over the fleet's database: status, events, "
        "diagnostics and Prometheus metrics for anyone who can reach it; shutdown, rollout "
        f"control and emergency stop for clients with the bearer token of {API_TOKEN_ENV}. "
        f"Refuses to start without that token unless --read-only. The OpenAPI schema is "
        "at /openapi.json (no /docs pages: they need a CDN). Exit "
        "0 after SIGTERM or SIGINT, 2 for bad configuration, a missing or unreachable "
        "database, or an address that cannot be bound.",
        example_lines=(
            "export COORDINATOR_API_TOKEN=$(openssl rand -hex 32)",
            "python -m coordinator serve --db sqlite:///./fleet.db --port 8077",
            "python -m coordinator serve --read-only --host 0.0.0.0 --port 0",
        ),
    )
    add_database_flag(parser)
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        type=utf8_text,
        help=f"address to listen on (default {DEFAULT_HOST})",
    )
    parser.add_argument(
        "--port",
        type=bounded_int(0, 65535),
        default=DEFAULT_PORT,
        help=f"port (default {DEFAULT_PORT}; 0 picks a free one, printed at start)",
    )
    parser.add_argument(
        "--read-only",
        action="store_true",
        help="serve reads only: every mutating route answers 403 (no token needed)",
    )
    add_logging_flags(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args)
        _check_token(settings, read_only=args.read_only)
        load_trusted_keys(settings.trusted_keys)  # a bad key stops us before we listen
        url = existing_database_url(args)
    except ConfigurationError as exc:
        return refuse("serve", exc)
    try:
        listener = _listen(args.host, args.port)
    except OSError as exc:
        return refuse("serve", f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
    configure_logging(args.log_level, json=args.log_json)
    # Imported here: FastAPI and uvicorn take most of a second to import, which every
    # other command (nine `run` processes starting at once) would pay for nothing.
    from coordinator.api.server import serve_api

    try:
        with listener:
            anyio.run(serve_api, settings, url, listener, args.read_only, args.host)
    except DatabaseUnavailable as exc:
        return refuse("serve", exc)
    return EXIT_OK


def _check_token(settings: Settings, *, read_only: bool) -> None:
    if read_only:
        return
    token = settings.api_token.get_secret_value() if settings.api_token else ""
    if not token:
        raise ConfigurationError(
            f"{API_TOKEN_ENV} is not set: mutating routes need a bearer token. Set it (e.g. "
            f"export {API_TOKEN_ENV}=$(openssl rand -hex 32)) or pass --read-only"
        )
    if len(token) < MIN_TOKEN_LENGTH:
        raise ConfigurationError(
            f"{API_TOKEN_ENV} has {len(token)} characters; at least {MIN_TOKEN_LENGTH} are "
            "required, or it could be guessed"
        )


def _listen(host: str, port: int) -> socket.socket:
    """Bind before anything else, so a taken port is a start-up error, and so ``--port 0``
    can print the port it got."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    listener = socket.socket(family, kind, proto)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(LISTEN_BACKLOG)
    except OSError:
        listener.close()
        raise
    return listener
