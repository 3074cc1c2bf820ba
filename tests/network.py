"""The network between a fleet and its database, under the test's control: a relay
process (``tcp_proxy.py``) and, where the machine allows it, network namespaces."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

import child_processes

PROXY_SCRIPT = Path(__file__).with_name("tcp_proxy.py")
START_DEADLINE = 30.0  # seconds for the relay to report that it listens


class Relay:
    """``tcp_proxy.py`` in its own process: pause it for a silent partition, kill it for
    a database that is gone, start it again on the same port."""

    def __init__(self, listen_host: str, target_host: str, target_port: int) -> None:
        self.listen_host = listen_host
        self.port = 0
        self._target = (target_host, target_port)
        self._process: subprocess.Popen[str] | None = None
        self._peers: list[str] = []
        self._lock = threading.Lock()
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        process = child_processes.popen(
            [
                sys.executable,
                str(PROXY_SCRIPT),
                self.listen_host,
                str(self.port),
                self._target[0],
                str(self._target[1]),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        ready = threading.Event()
        failure: list[str] = []

        def read_lines(stdout: IO[str]) -> None:
            with stdout:
                for line in stdout:
                    word, _, value = line.strip().partition(" ")
                    if word == "listening":
                        self.port = int(value.rsplit(":", 1)[1])
                        ready.set()
                    elif word == "accepted":
                        with self._lock:
                            self._peers.append(value)
            failure.append("relay exited")
            ready.set()

        self._reader = threading.Thread(target=read_lines, args=(process.stdout,), daemon=True)
        self._reader.start()
        self._process = process
        if not ready.wait(START_DEADLINE) or failure:
            self.kill()
            raise RuntimeError(f"relay on {self.listen_host}:{self.port} did not start")

    def url_for(self, database_url: str) -> str:
        """``database_url`` with its host and port replaced by this relay's."""
        from sqlalchemy import make_url

        url = make_url(database_url).set(host=self.listen_host, port=self.port)
        return url.render_as_string(hide_password=False)

    def peers(self) -> list[str]:
        with self._lock:
            return list(self._peers)

    def partition(self) -> None:
        self._signal(signal.SIGSTOP)

    def heal(self) -> None:
        self._signal(signal.SIGCONT)

    def kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._signal(signal.SIGCONT)  # a stopped process cannot die until resumed
            self._process.kill()
            self._process.wait(timeout=30)
        if self._reader is not None:
            self._reader.join(timeout=30)  # it closes the pipe on the way out
        self._process = None
        self._reader = None

    def _signal(self, signum: int) -> None:
        assert self._process is not None, "relay not running"
        self._process.send_signal(signum)


def namespaces_unavailable() -> str | None:
    """Why network namespaces cannot be made here, or None when they can."""
    if sys.platform != "linux":
        return "network namespaces are Linux-only"
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add)"
    if shutil.which("ip") is None:
        return "iproute2's `ip` command is not installed"
    probe = "coordprobe"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


class Host:
    """A network namespace joined to this machine by a veth pair: a host of its own,
    reachable only across that link. ``address`` is its end, ``gateway`` ours."""

    def __init__(self, name: str, subnet: int) -> None:
        self.name = name
        self.address = f"10.213.{subnet}.2"
        self.gateway = f"10.213.{subnet}.1"
        self._outer = f"{name[:13]}-o"  # interface names stop at 15 characters
        self._inner = f"{name[:13]}-i"

    def create(self) -> None:
        steps = [
            ["ip", "netns", "add", self.name],
            ["ip", "link", "add", self._outer, "type", "veth", "peer", "name", self._inner],
            ["ip", "link", "set", self._inner, "netns", self.name],
            ["ip", "addr", "add", f"{self.gateway}/30", "dev", self._outer],
            ["ip", "link", "set", self._outer, "up"],
            *(
                ["ip", "netns", "exec", self.name, *cmd]
                for cmd in (
                    ["ip", "addr", "add", f"{self.address}/30", "dev", self._inner],
                    ["ip", "link", "set", self._inner, "up"],
                    ["ip", "link", "set", "lo", "up"],
                )
            ),
        ]
        for step in steps:
            subprocess.run(step, check=True, capture_output=True, text=True)

    def command(self, *argv: str) -> list[str]:
        """``argv`` run inside this host's namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def cut_link(self) -> None:
        """Take this host's link down, as a pulled cable does: packets stop both ways,
        but no connection is reset; peers find out only by their own timeouts, and
        what was in flight is retransmitted once the link is back."""
        subprocess.run(["ip", "link", "set", self._outer, "down"], check=True, capture_output=True)

    def mend_link(self) -> None:
        subprocess.run(["ip", "link", "set", self._outer, "up"], check=True, capture_output=True)

    def destroy(self) -> None:
        subprocess.run(["ip", "link", "del", self._outer], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
