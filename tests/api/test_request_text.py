"""The rules a request meets before its fields are looked at, without a server: JSON text
the database can store, reasons with something besides white space, and an OpenAPI
document that states both."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from coordinator.api.app import create_app
from coordinator.api.bodies import REASON_PATTERN, SPACE, RolloutActionBody
from coordinator.api.json_text import NO_NUL_PATTERN, InvalidJson, TextProblem, check_json_text
from persistence import Store
from schemas import load_settings

LONE = "the string holds a lone surrogate ({}), which is not Unicode text"
NUL = "holds U+0000 (NUL), which no text field can store"
NOT_UTF8 = "the request body is not UTF-8 text: byte {} at offset {} is invalid"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"reason": "ok", "n": [1, null, true]}', None),
        (b'{"reason": "caf\xc3\xa9 \\u00e9 \\ud83d\\ude00"}', None),  # a surrogate *pair* is fine
        (b"{}", None),
        (b'{"reason": "\\ud800"}', TextProblem(("reason",), LONE.format("\\ud800"))),
        (b'{"a": [1, {"b": "x\\udfffy"}]}', TextProblem(("a", 1, "b"), LONE.format("\\udfff"))),
        (b'"\\ud800"', TextProblem((), LONE.format("\\ud800"))),
        (b'{"reason": "a\\u0000"}', TextProblem(("reason",), f"the string {NUL}")),
        (b'{"re\\u0000ason": 1}', TextProblem(("re\\u0000ason",), f"the field name {NUL}")),
        (b'{"reason": "\xed\xa0\x80"}', TextProblem((), NOT_UTF8.format("0xed", 12))),
        (b'\xff\xfe{\x00}\x00', TextProblem((), NOT_UTF8.format("0xff", 0))),  # UTF-16
        (b"[" * 100_000 + b"]" * 100_000,
         TextProblem((), "the request body nests arrays or objects too deeply")),
    ],
)  # fmt: skip
def test_check_json_text_names_the_first_unstorable_value(
    body: bytes, problem: TextProblem | None
) -> None:
    assert check_json_text(body) == problem


@pytest.mark.parametrize("body", [b"{not json", b"\xef\xbb\xbf{}", b""])
def test_json_that_does_not_parse_is_left_to_fastapis_message(body: bytes) -> None:
    with pytest.raises(InvalidJson):
        check_json_text(body)


@given(st.text())
def test_any_storable_json_passes(value: str) -> None:
    # hypothesis's text has no lone surrogates; what it has besides U+0000 is storable.
    body = json.dumps({"reason": value}).encode()
    expected = None if "\x00" not in value else ("reason",)
    found = check_json_text(body)
    assert (found.location if found else None) == expected


def test_the_space_class_is_exactly_what_strip_removes() -> None:
    space = re.compile(f"[{SPACE}]")
    everything = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    assert {c for c in everything if space.fullmatch(c)} == {c for c in everything if c.isspace()}


@given(
    st.text(alphabet=st.sampled_from(" \t\n\x1c\x85\xa0\u3000\x00ab\u00e9"), max_size=8)
    | st.text(max_size=500)
)
def test_the_reason_pattern_admits_exactly_the_reasons_the_server_takes(reason: str) -> None:
    try:
        RolloutActionBody(reason=reason)
        taken = "\x00" not in reason  # U+0000 is refused before the model (json_text)
    except ValidationError:
        taken = False
    assert (re.search(REASON_PATTERN, reason) is not None) == taken, repr(reason)


@pytest.fixture
async def openapi(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'fleet.db'}")
    try:
        yield create_app(load_settings(), store).openapi()
    finally:
        await store.close()


def test_every_422_is_documented_with_the_body_the_server_sends(openapi: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in openapi["components"]["schemas"]
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            has_input = operation.get("parameters") or operation.get("requestBody")
            responses = operation["responses"]
            if has_input:
                assert "422" in responses, (method, path)
            if "422" in responses:
                schema = responses["422"]["content"]["application/json"]["schema"]
                refs = [s["$ref"] for s in schema.get("anyOf", [schema])]
                assert "#/components/schemas/InvalidRequestBody" in refs, (method, path)
    emergency = json.dumps(openapi["paths"]["/v1/emergency-shutdown"]["post"]["responses"]["422"])
    assert "unknown_target" in emergency and "UnknownTargetBody" in emergency
    problem = openapi["components"]["schemas"]["Problem"]
    assert set(problem["properties"]) == {"in", "field", "problem", "got"}


def test_no_string_of_a_request_body_admits_nul(openapi: dict[str, Any]) -> None:
    components = openapi["components"]["schemas"]
    checked = 0
    for operations in openapi["paths"].values():
        for operation in operations.values():
            if "requestBody" not in operation:
                continue
            ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            for name, field in components[ref.rpartition("/")[2]]["properties"].items():
                pattern = field.get("pattern") or field["anyOf"][0].get("pattern")
                assert pattern, name
                assert re.search(pattern, "text") and not re.search(pattern, "te\x00xt"), name
                checked += 1
    assert checked == 6  # reason, requested_by; reason; payload, signature, key_id
    assert components["SignedCommand"]["properties"]["payload"]["pattern"] == NO_NUL_PATTERN
