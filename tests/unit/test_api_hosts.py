"""The Host guard's rule, without a server: which header values name which host, and
which hosts are answered."""

from __future__ import annotations

import pytest

from coordinator.api.hosts import allowed_host_names, host_allowed, host_name

ALLOWED = allowed_host_names("api.internal", "Fleet.Example., , ops.example")


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("example.com", "example.com"),
        ("Example.COM:8077", "example.com"),
        ("example.com.", "example.com"),
        ("127.0.0.1:80", "127.0.0.1"),
        ("[::1]:8077", "::1"),
        ("[::1]", "::1"),
        ("[::1]x", None),
        ("[::1", None),
        ("example.com:http", None),
        ("user@example.com", None),
        ("exa mple.com", None),
        ("", None),
    ],
)
def test_the_name_of_a_host_header(header: str, name: str | None) -> None:
    assert host_name(header) == name


def test_the_allowed_names_are_localhost_the_bind_host_and_the_setting() -> None:
    assert {"localhost", "api.internal", "fleet.example", "ops.example"} == ALLOWED


@pytest.mark.parametrize(
    "header",
    [None, "localhost", "localhost:1", "api.internal:8077", "FLEET.example", "192.0.2.7",
     "[2001:db8::1]:80", "0.0.0.0"],
)  # fmt: skip
def test_answered(header: str | None) -> None:
    assert host_allowed(header, ALLOWED)


@pytest.mark.parametrize(
    "header",
    ["attacker.example", "api.internal.attacker.example", "localhost.attacker.example",
     "127.0.0.1.nip.io", "", "[::1", "a b"],
)  # fmt: skip
def test_refused(header: str) -> None:
    assert not host_allowed(header, ALLOWED)
