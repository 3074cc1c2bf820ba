"""What a request body must be before any field of it is looked at: JSON text (RFC 8259:
UTF-8, no byte-order mark) whose every string, names included, the database can store.

Python's JSON reader is more lenient than that: it guesses UTF-16 and UTF-32, takes the
UTF-8 form of a surrogate, and turns ``"\\ud800"`` into a lone surrogate. A lone surrogate
has no UTF-8 form, so recording it (or answering with it) failed with a 500; U+0000 is
refused by PostgreSQL's ``text`` (a 503 there) while SQLite stored it. Both are refused
here, on every backend alike, as 422s that say where they are.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

NO_NUL_PATTERN = r"^[^\u0000]*$"
"""The JSON Schema ``pattern`` of a request string: every one is held to it."""

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


@dataclass(frozen=True)
class TextProblem:
    """Why a body is refused: ``location`` is the path to the value in the document (names
    and list indexes, empty for the document itself), ``message`` says what is wrong."""

    location: tuple[str | int, ...]
    message: str


class InvalidJson(ValueError):
    """The body is UTF-8 but not JSON; FastAPI's own ``json_invalid`` error describes it."""

    def __init__(self, error: json.JSONDecodeError) -> None:
        super().__init__(error.msg)
        self.error = error


def check_json_text(body: bytes) -> TextProblem | None:
    """The first problem of ``body`` as a request's JSON text, or None if it has none.

    Raises ``InvalidJson`` if it is UTF-8 but does not parse.
    """
    try:
        text = body.decode("utf-8")  # strict: a surrogate's UTF-8 form is refused too
    except UnicodeDecodeError as exc:
        return TextProblem(
            (), f"the request body is not UTF-8 text: byte 0x{body[exc.start]:02x} at offset "
            f"{exc.start} is invalid",
        )  # fmt: skip
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidJson(exc) from None
    except RecursionError:
        return TextProblem((), "the request body nests arrays or objects too deeply")
    return _first_unstorable(document)


def _first_unstorable(document: Any) -> TextProblem | None:
    # Iterative: a body of 64 KiB may nest as deep as the parser allows.
    pending: list[tuple[Any, tuple[str | int, ...]]] = [(document, ())]
    while pending:
        value, at = pending.pop()
        if isinstance(value, str):
            found = _string_problem(value, at, "the string")
            if found:
                return found
        elif isinstance(value, dict):
            for name in value:
                found = _string_problem(name, (*at, _shown(name)), "the field name")
                if found:
                    return found
            pending.extend(reversed([(item, (*at, name)) for name, item in value.items()]))
        elif isinstance(value, list):
            pending.extend(reversed([(item, (*at, i)) for i, item in enumerate(value)]))
    return None


def _string_problem(value: str, at: tuple[str | int, ...], what: str) -> TextProblem | None:
    found = _UNSTORABLE.search(value)
    if found is None:
        return None
    char = found.group()
    if char == "\x00":
        why = "holds U+0000 (NUL), which no text field can store"
    else:
        why = f"holds a lone surrogate (\\u{ord(char):04x}), which is not Unicode text"
    return TextProblem(at, f"{what} {why}")


def _shown(name: str) -> str:
    # A location is echoed in the answer, which must itself be storable, printable text.
    return _UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", name)
