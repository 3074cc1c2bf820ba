"""Emergency commands built without coordinator's code, following only the README's
"Signed command format": by a shell script (printf, openssl, jq, curl), by a Node.js
script (JSON.stringify, node:crypto, fetch), and by plain Python (json, cryptography),
each accepted by a real ``serve`` over HTTP or by the Store."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import child_processes
import pytest
from api_server import TOKEN, ApiServer, server_env, start_api
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fleet_state import MEMBERS, Seeded

from coordinator.emergency import make_verifier
from persistence import Store
from schemas import CommandStatus, SignedCommand, load_settings

pytestmark = pytest.mark.processes

FLEET = "fleet-x"
# Quotes, a backslash, a control character, non-ASCII and a character beyond the BMP: the
# escapes the README's canonical form defines, and raw UTF-8 for the rest.
TRICKY_REASON = 'naïve "quoted" \\ back\tslash \x1b ☃ 🚨 stop'
NEEDS = ("openssl", "jq", "curl", "sha256sum", "base64")

SHELL_ISSUER = r"""
set -eu
issued_at=$(date +%s)
nonce=$(openssl rand -hex 16)
format='{"action":"emergency_shutdown","audience":"%s","issued_at":%s,'
format="$format"'"nonce":"%s","reason":"%s","targets":["%s"]}'
printf "$format" "$FLEET" "$issued_at" "$nonce" "$REASON" "$TARGET" > payload.json
signature=$(openssl pkeyutl -sign -inkey key.pem -rawin -in payload.json | base64 -w0)
key_id=$(openssl pkey -in key.pem -pubout -outform DER | tail -c 32 | sha256sum | cut -c1-16)
jq -n --rawfile payload payload.json --arg signature "$signature" --arg key_id "$key_id" \
    '{payload: $payload, signature: $signature, key_id: $key_id}' |
  curl -sS -o answer.json -w '%{http_code}' -X POST "$API/v1/emergency-shutdown" \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' --data-binary @-
"""

NODE_ISSUER = r"""
const crypto = require("node:crypto");
const fs = require("node:fs");
const key = crypto.createPrivateKey(fs.readFileSync("key.pem"));
const raw = crypto.createPublicKey(key).export({ format: "der", type: "spki" }).subarray(-32);
// Keys in sorted order: JSON.stringify keeps the order they were inserted in.
const payload = JSON.stringify({
  action: "emergency_shutdown",
  audience: process.env.FLEET,
  issued_at: Math.floor(Date.now() / 1000),
  nonce: crypto.randomBytes(16).toString("hex"),
  reason: process.env.REASON,
  targets: [process.env.TARGET],
});
const body = {
  payload,
  signature: crypto.sign(null, Buffer.from(payload, "utf8"), key).toString("base64"),
  key_id: crypto.createHash("sha256").update(raw).digest("hex").slice(0, 16),
};
fetch(process.env.API + "/v1/emergency-shutdown", {
  method: "POST",
  headers: { Authorization: "Bearer " + process.env.TOKEN, "Content-Type": "application/json" },
  body: JSON.stringify(body),
}).then(async (r) => {
  fs.writeFileSync("answer.json", await r.text());
  process.stdout.write(String(r.status));
});
"""


def issuer_folder(root: Path, name: str) -> Path:
    """A folder with an Ed25519 key made by openssl (``key.pem``, ``key.pub.pem``)."""
    folder = root / name
    folder.mkdir()
    for command in (
        ["openssl", "genpkey", "-algorithm", "ed25519", "-out", "key.pem"],
        ["openssl", "pkey", "-in", "key.pem", "-pubout", "-out", "key.pub.pem"],
    ):
        subprocess.run(command, cwd=folder, check=True, capture_output=True, timeout=60)
    return folder


@pytest.fixture
def shell_issuer(tmp_path: Path) -> Path:
    missing = [tool for tool in NEEDS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"the shell issuer needs {', '.join(missing)}")
    return issuer_folder(tmp_path, "shell")


@pytest.fixture
def node_issuer(tmp_path: Path, shell_issuer: Path) -> Path:
    if shutil.which("node") is None:
        pytest.skip("the Node.js issuer needs node")
    return issuer_folder(tmp_path, "node")


@pytest.fixture
async def foreign_api(
    seeded: Seeded, database_url: str, shell_issuer: Path, node_issuer: Path, tmp_path: Path
) -> AsyncIterator[ApiServer]:
    """``serve`` for fleet ``fleet-x``, trusting the two issuers' PEM public keys."""
    trusted = f"{shell_issuer / 'key.pub.pem'},{node_issuer / 'key.pub.pem'}"
    env = server_env(
        database_url,
        COORDINATOR_TRUSTED_KEYS=trusted,
        COORDINATOR_FLEET_ID=FLEET,
    )
    server = await start_api(tmp_path / "api", env)
    try:
        yield server
    finally:
        assert server.stop() == 0, server.stderr


def run_issuer(
    command: list[str], folder: Path, api: ApiServer, reason: str
) -> tuple[int, dict[str, Any]]:
    env = {
        "PATH": "/usr/bin:/bin:/usr/local/bin",
        "API": api.base_url,
        "TOKEN": TOKEN,
        "FLEET": FLEET,
        "REASON": reason,
        "TARGET": MEMBERS[2],
    }
    done = child_processes.run(
        command, cwd=folder, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout), json.loads((folder / "answer.json").read_text())


async def test_a_shell_script_with_openssl_issues_an_accepted_command(
    foreign_api: ApiServer, shell_issuer: Path
) -> None:
    status, answer = run_issuer(
        ["bash", "-c", SHELL_ISSUER], shell_issuer, foreign_api, "stop from the shell"
    )

    assert status == 202, answer
    command = answer["command"]
    assert (command["status"], command["reason"]) == ("accepted", "stop from the shell")
    assert command["targets"] == [MEMBERS[2]]


async def test_a_node_script_issues_an_accepted_command_with_any_reason(
    foreign_api: ApiServer, node_issuer: Path
) -> None:
    status, answer = run_issuer(
        ["node", "-e", NODE_ISSUER], node_issuer, foreign_api, TRICKY_REASON
    )

    assert status == 202, answer
    assert (answer["command"]["status"], answer["command"]["reason"]) == (
        "accepted",
        TRICKY_REASON,
    )


async def test_a_command_built_with_plain_json_and_cryptography_is_accepted_by_the_store(
    seeded: Seeded, db: Store
) -> None:
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    fields = {
        "action": "emergency_shutdown",
        "audience": FLEET,
        "issued_at": int(time.time()),
        "nonce": secrets.token_hex(16),
        "reason": TRICKY_REASON,
        "targets": [MEMBERS[1]],
    }
    payload = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    signed = SignedCommand(
        payload=payload,
        signature=base64.b64encode(key.sign(payload.encode("utf-8"))).decode("ascii"),
        key_id=hashlib.sha256(raw).hexdigest()[:16],
    )
    settings = load_settings(fleet_id=FLEET, trusted_keys=base64.b64encode(raw).decode("ascii"))

    record = await db.submit_emergency(signed, issued_by="python", verify=make_verifier(settings))

    assert record.status is CommandStatus.ACCEPTED, record.detail
    assert (record.reason, record.targets) == (TRICKY_REASON, (MEMBERS[1],))
