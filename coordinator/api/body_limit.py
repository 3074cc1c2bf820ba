"""The request-body limit, enforced where the bytes arrive: an ASGI layer that counts the
``http.request`` messages a request's body comes in, and refuses the one that takes it past
the limit. Chunked or not, the server never reads more than the limit and one message (the
protocol's own buffer, 64 KiB for uvicorn); a declared ``Content-Length`` over the limit is
refused before anything is read (``GuardedRoute``)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coordinator.api.errors import ApiError

MAX_BODY_BYTES = 64 * 1024
"""A signed command is well under 2 KiB; anything this large is not one of ours."""


class BodyTooLarge(ApiError):
    """413. The rest of the body stays unread, so the connection cannot carry another
    request: the answer closes it."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            "body_too_large",
            f"the request body exceeds {limit} bytes",
            headers={"Connection": "close"},
        )


class BodyLimit:
    """Wraps an ASGI application: a body read past ``max_bytes`` raises ``BodyTooLarge``
    from ``receive``, in the code that reads it (the API's error handlers answer it)."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited_receive, send)
