"""``keys generate``: the Ed25519 key pair that signs emergency shutdown commands."""

from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path

from coordinator.cli.arguments import add_command, utf8_text
from coordinator.cli.options import EXIT_FAILED, EXIT_OK, refuse
from coordinator.keys import TRUSTED_KEYS_ENV, generate_key_pair, load_trusted_keys

DEFAULT_KEY_NAME = "coordinator_ed25519"
PRIVATE_KEY_MODE = 0o600
PUBLIC_KEY_MODE = 0o644
KEY_DIR_MODE = 0o700
KEYS_EXAMPLE = "python -m coordinator keys generate --out ~/.coordinator"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        commands,
        "keys",
        help="manage the keys that sign emergency shutdown commands",
        description="Manage the Ed25519 keys that sign emergency shutdown commands.",
        example_lines=(KEYS_EXAMPLE,),
    )
    actions = parser.add_subparsers(dest="keys_action", metavar="ACTION", required=True)
    generate = add_command(
        actions,
        "generate",
        help="write a new key pair",
        description="Write a new Ed25519 key pair: DIR/NAME, the private key (mode 600; keep "
        "it with the operators, off the fleet), and DIR/NAME.pub, the public key every "
        f"occurrence trusts through {TRUSTED_KEYS_ENV}. Exit 0 written, 1 could not write, "
        "2 bad arguments or the files exist.",
        example_lines=(KEYS_EXAMPLE,),
    )
    generate.add_argument(
        "--out", required=True, type=Path, metavar="DIR", help="directory (created if missing)"
    )
    generate.add_argument(
        "--name",
        default=DEFAULT_KEY_NAME,
        type=utf8_text,
        help=f"file name of the private key ({DEFAULT_KEY_NAME})",
    )
    generate.add_argument(
        "--force",
        action="store_true",
        help="replace an existing pair (commands signed with the old key stop verifying)",
    )
    generate.set_defaults(handler=handle_generate)


def handle_generate(args: argparse.Namespace) -> int:
    name: str = args.name
    if not name or name in (".", "..") or "/" in name or os.sep in name:
        return refuse("keys generate", f"--name must be a plain file name (got {name!r})")
    private_path = args.out / name
    public_path = args.out / f"{name}.pub"
    if not args.force:
        existing = [str(path) for path in (private_path, public_path) if path.exists()]
        if existing:
            return refuse(
                "keys generate",
                f"will not overwrite {' and '.join(existing)}; pass --force to replace the key "
                "pair (commands signed with the old key will no longer verify)",
            )
    private_pem, public_text = generate_key_pair()
    try:
        args.out.mkdir(mode=KEY_DIR_MODE, parents=True, exist_ok=True)
        _write_new(private_path, private_pem, PRIVATE_KEY_MODE, replace=args.force)
        _write_new(public_path, f"{public_text}\n".encode(), PUBLIC_KEY_MODE, replace=args.force)
    except OSError as exc:
        return refuse("keys generate", f"cannot write the key pair: {exc}", EXIT_FAILED)
    print(_summary(private_path, public_path))
    return EXIT_OK


def _write_new(path: Path, content: bytes, mode: int, *, replace: bool) -> None:
    """Create ``path`` with ``mode`` from its first byte on.

    Writing over an existing file would keep that file's permissions, and a file created
    with defaults and then chmod-ed is world-readable for a moment: so the old file is
    removed and the new one created exclusively (O_EXCL also refuses to follow a symlink).
    """
    if replace:
        path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as file:
        file.write(content)


def _summary(private_path: Path, public_path: Path) -> str:
    public_path = public_path.resolve()
    # Read back the way occurrences will, so the printed id is what they will trust.
    (fingerprint,) = load_trusted_keys(str(public_path))
    return "\n".join(
        [
            f"private key: {private_path.resolve()}  (keep secret: signs emergency shutdowns)",
            f"public key:  {public_path}",
            f"key id:      {fingerprint}",
            "Trust it on every occurrence:",
            f"  export {TRUSTED_KEYS_ENV}={shlex.quote(str(public_path))}",
        ]
    )
