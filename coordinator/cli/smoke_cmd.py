"""``smoke``: check a running control API and say everything that is off."""

from __future__ import annotations

import argparse
import json
import os

from coordinator.cli.arguments import add_command, bounded_int, seconds, utf8_text
from coordinator.cli.options import EXIT_FAILED, EXIT_OK, refuse
from persistence.backends import BACKEND_NAMES
from schemas.settings import API_TOKEN_ENV

DEFAULT_TIMEOUT = 10.0  # seconds per request
MIN_TIMEOUT = 0.01
MAX_TIMEOUT = 3_600.0
MAX_MIN_ALIVE = 1_000_000


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        commands,
        "smoke",
        help="check a running control API (status, diagnostics, metrics, token)",
        description="Check a running control API without changing anything: status, "
        "diagnostics (the database answers; --expect-backend; --expect-engine), Prometheus "
        "metrics, the "
        "OpenAPI schema, and with a token that the token is accepted. Prints one line per "
        "check. Exit 0 all passed, 1 something is off (the reasons are printed), 2 bad "
        "arguments.",
        example_lines=(
            "python -m coordinator smoke --base-url http://127.0.0.1:8077",
            "COORDINATOR_API_TOKEN=... python -m coordinator smoke --base-url "
            "http://127.0.0.1:8077 --expect-backend postgresql --min-alive 3",
            "python -m coordinator smoke --base-url http://127.0.0.1:8077 "
            "--expect-engine my_agent.engine:MyEngine",
        ),
    )
    parser.add_argument(
        "--base-url",
        required=True,
        metavar="URL",
        type=utf8_text,
        help="e.g. http://127.0.0.1:8077",
    )
    parser.add_argument(
        "--token",
        metavar="T",
        type=utf8_text,
        help=f"check that this bearer token is accepted (default: {API_TOKEN_ENV} if set)",
    )
    parser.add_argument(
        "--expect-backend", choices=BACKEND_NAMES, help="fail unless the API uses it"
    )
    parser.add_argument(
        "--expect-engine",
        metavar="NAME",
        type=utf8_text,
        help="fail unless every live occurrence loaded this decision engine: builtin, "
        "external (any of the agent's own), or the module:attr COORDINATOR_ENGINE names; an "
        "occurrence whose engine failed to load never passes",
    )
    parser.add_argument(
        "--min-alive",
        type=bounded_int(0, MAX_MIN_ALIVE),
        default=0,
        metavar="N",
        help="fail unless at least N occurrences are alive (default 0)",
    )
    parser.add_argument(
        "--timeout",
        type=seconds(MIN_TIMEOUT, MAX_TIMEOUT),
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"per request ({MIN_TIMEOUT:g} to {MAX_TIMEOUT:g}; default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=handle)


def check_lines(name: str, ok: bool, findings: list[str]) -> list[str]:
    """The lines of one check: its mark (``ok`` or ``FAIL``) and name once, on the first
    line, so one failed check is one FAIL however many findings it has; the others below,
    indented."""
    first, *rest = [" ".join(f.split()) for f in findings] or [""]  # an error may span lines
    mark = "ok  " if ok else "FAIL"
    return [f"{mark}  {name:<12} {first}".rstrip(), *(f"{'':18} {line}" for line in rest)]


def handle(args: argparse.Namespace) -> int:
    base_url: str = args.base_url.rstrip("/")
    if not base_url.startswith(("http://", "https://")):
        return refuse("smoke", f"--base-url must start with http:// or https:// (got {base_url!r})")
    if args.expect_engine is not None and not args.expect_engine.strip():
        return refuse("smoke", "--expect-engine needs a name: builtin, external or module:attr")
    # Imported here so that other commands do not pay for the HTTP client.
    import httpx

    from coordinator.api.smoke import Expectations, Unreachable, run_checks

    token = args.token if args.token is not None else os.environ.get(API_TOKEN_ENV)
    expect = Expectations(
        backend=args.expect_backend,
        min_alive=args.min_alive,
        token=token.strip() if token else None,
        engine=args.expect_engine.strip() if args.expect_engine else None,
    )
    try:
        with httpx.Client(base_url=base_url, timeout=args.timeout) as client:
            checks = run_checks(client, expect)
    except Unreachable as exc:
        if args.json:
            print(
                json.dumps({"ok": False, "base_url": base_url, "unreachable": str(exc)}, indent=2)
            )
        else:
            print(f"FAIL  reach        {exc}")
            print("smoke check FAILED: the control API does not answer")
        return EXIT_FAILED
    failed = [c for c in checks if not c.ok]
    if args.json:
        report = {"ok": not failed, "base_url": base_url, "checks": [c.as_dict() for c in checks]}
        print(json.dumps(report, indent=2))
    else:
        for check in checks:
            print("\n".join(check_lines(check.name, check.ok, [*check.problems, *check.notes])))
        if failed:
            names = ", ".join(c.name for c in failed)
            print(f"smoke check FAILED: {len(failed)} of {len(checks)} checks ({names})")
        else:
            print(f"smoke check passed: {len(checks)} checks against {base_url}")
    return EXIT_FAILED if failed else EXIT_OK
