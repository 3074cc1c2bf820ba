"""A real ``python -m coordinator serve`` process on a free loopback port, and the keys
and signed commands the tests send it, and ``smoke`` run against it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import child_processes
import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator.signing import generate_key_pair, load_private_key, new_command, sign
from schemas import DEFAULT_FLEET_ID, SignedCommand

TOKEN = "test-token-0123456789abcdef"
START_DEADLINE = 30.0  # seconds for the server to listen and answer
STOP_DEADLINE = 20.0  # seconds for a graceful stop after SIGTERM
_LISTENING = re.compile(r"listening on (http://\S+)")
SMOKE_TIMEOUT = 120  # seconds for one smoke run


@dataclass
class Signer:
    """An operator's key pair, as ``keys generate`` writes it."""

    private_key: Ed25519PrivateKey
    public_text: str

    @classmethod
    def generate(cls, directory: Path, name: str) -> Signer:
        pem, public_text = generate_key_pair()
        path = directory / name
        path.write_bytes(pem)
        return cls(load_private_key(path), public_text)

    def command(
        self,
        reason: str = "test stop",
        targets: Iterable[str] = (),
        *,
        at: float | None = None,
        audience: str = DEFAULT_FLEET_ID,
    ) -> SignedCommand:
        issued = new_command(reason, targets, time.time() if at is None else at, audience=audience)
        return sign(issued, self.private_key)


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORDINATOR_")}
    env["COORDINATOR_DATABASE_URL"] = database_url
    env.update(extra)
    return env


@dataclass
class ApiServer:
    process: subprocess.Popen[bytes]
    base_url: str
    workdir: Path
    token: str | None = TOKEN
    _stopped: int | None = field(default=None, repr=False)

    def client(self, token: str | None = None, **headers: str) -> httpx.AsyncClient:
        """A client; with ``token`` it sends ``Authorization: Bearer <token>``."""
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=30)

    def authorized(self) -> httpx.AsyncClient:
        assert self.token is not None
        return self.client(self.token)

    @property
    def stdout(self) -> str:
        return (self.workdir / "serve.out").read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return (self.workdir / "serve.err").read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stop it with ``sig`` and return its exit code (killed after a deadline)."""
        if self._stopped is None:
            if self.process.poll() is None:
                self.process.send_signal(sig)
            try:
                self._stopped = self.process.wait(timeout=STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_DEADLINE)
                raise AssertionError(f"serve ignored {signal.Signals(sig).name}") from None
        return self._stopped


def serve_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "coordinator", "serve", "--log-json", *args]


async def start_api(
    workdir: Path,
    env: dict[str, str],
    *args: str,
    token: str | None = TOKEN,
) -> ApiServer:
    """Start ``serve --port 0`` and return once it answers ``GET /v1/status``."""
    workdir.mkdir(parents=True, exist_ok=True)
    if token is not None:
        env = {**env, "COORDINATOR_API_TOKEN": token}
    out_path, err_path = workdir / "serve.out", workdir / "serve.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        process = child_processes.popen(
            serve_command("--host", "127.0.0.1", "--port", "0", *args),
            env=env,
            stdout=out,
            stderr=err,
        )
    server = ApiServer(process, "", workdir, token)
    try:
        with anyio.fail_after(START_DEADLINE):
            server.base_url = await _announced_url(server)
            await _answers(server)
    except (TimeoutError, RuntimeError):
        code = server.stop(signal.SIGKILL)
        raise AssertionError(
            f"serve did not start (exit {code}):\n{server.stdout}\n{server.stderr}"
        ) from None
    except BaseException:
        server.stop(signal.SIGKILL)
        raise
    return server


async def _announced_url(server: ApiServer) -> str:
    while True:
        found = _LISTENING.search(server.stdout)
        if found:
            return found.group(1)
        if server.process.poll() is not None:
            raise RuntimeError("serve exited")
        await anyio.sleep(0.05)


async def _answers(server: ApiServer) -> None:
    async with server.client() as client:
        while True:
            try:
                if (await client.get("/v1/status")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await anyio.sleep(0.05)


def smoke(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m coordinator smoke`` as an operator runs it: none of this process's
    ``COORDINATOR_`` settings, only ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("COORDINATOR_")}
    return child_processes.run(
        [sys.executable, "-m", "coordinator", "smoke", *args],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT,
    )
