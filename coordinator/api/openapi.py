"""The OpenAPI document, as FastAPI writes it plus what the server checks before the
models do: no string in a request body may hold U+0000 (``json_text``)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from coordinator.api.json_text import NO_NUL_PATTERN


def api_schema(app: FastAPI) -> dict[str, Any]:
    """The document ``GET /openapi.json`` serves, built once."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        _forbid_nul_in_request_strings(schema)
        app.openapi_schema = schema
    return app.openapi_schema


def _forbid_nul_in_request_strings(schema: dict[str, Any]) -> None:
    components = schema.get("components", {}).get("schemas", {})
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            content = operation.get("requestBody", {}).get("content", {})
            for media in content.values():
                ref = media.get("schema", {}).get("$ref", "")
                body = components.get(ref.rpartition("/")[2], {})
                for field in body.get("properties", {}).values():
                    for variant in (field, *field.get("anyOf", ())):
                        if variant.get("type") == "string" and "pattern" not in field:
                            variant["pattern"] = NO_NUL_PATTERN
