"""Which ``Host`` headers the control API answers: the guard against DNS rebinding.

A page in the operator's browser can make a name of its own resolve to 127.0.0.1 and
then talk to a loopback API as if it were its own site; the only trace of the trick is
the ``Host`` header, which still carries the attacker's name. So the API answers only
names it knows: ``localhost``, the name it was told to listen on, and the names of
``COORDINATOR_API_ALLOWED_HOSTS``. An IP address is always accepted: no DNS answer can
stand behind a literal address, so it cannot be rebound.
"""

from __future__ import annotations

import ipaddress

from schemas.settings import setting_env_name

ALLOWED_HOSTS_ENV = setting_env_name("api_allowed_hosts")
ALWAYS_ALLOWED = frozenset({"localhost"})


def allowed_host_names(bind_host: str | None, extra: str) -> frozenset[str]:
    """The names to answer: ``localhost``, ``bind_host`` and the comma-separated ``extra``."""
    names = {_normal(name) for name in extra.split(",") if name.strip()}
    if bind_host:
        names.add(_normal(bind_host))
    return ALWAYS_ALLOWED | names


def host_allowed(header: str | None, allowed: frozenset[str]) -> bool:
    """Whether a request with this ``Host`` header may be answered.

    No header at all (HTTP/1.0) is let through: every browser sends one, so no rebinding
    page can leave it out.
    """
    if header is None:
        return True
    name = host_name(header)
    if name is None:
        return False
    return name in allowed or _is_ip_address(name)


def host_name(header: str) -> str | None:
    """The name part of a ``Host`` header (no port, no brackets, lower case), or None if
    the header is not a host at all."""
    text = header.strip()
    if text.startswith("["):  # [v6 address] with an optional port
        inside, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not _is_port(rest)):
            return None
        return inside.lower()
    name, colon, port = text.rpartition(":") if ":" in text else (text, "", "")
    if colon and not port.isdigit():
        return None
    name = _normal(name)
    if not name or any(c.isspace() or c in "/@\\" for c in name):
        return None
    return name


def _is_port(text: str) -> bool:
    return text.startswith(":") and text[1:].isdigit()


def _normal(name: str) -> str:
    # DNS names are case-insensitive, and "example.com." is the same name as "example.com".
    return name.strip().strip("[]").rstrip(".").lower()


def _is_ip_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
