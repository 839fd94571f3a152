"""Reading HTTP requests safely: bodies whole within a size limit (a body may arrive in many
writes, or compressed and broken), header values as text whatever their bytes."""

from __future__ import annotations

import hmac

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError


def header(request: web.Request, name: str) -> str:
    """A header's value as text; bytes that are not UTF-8 become replacement characters
    (aiohttp keeps them as lone surrogates, which nothing can encode)."""
    raw = request.headers.get(name, "")
    return raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def bearer(request: web.Request) -> str | None:
    """The credential of an ``Authorization: Bearer ...`` header, if there is one."""
    scheme, _, credential = header(request, "Authorization").partition(" ")
    credential = credential.strip()
    return credential if scheme.lower() == "bearer" and credential else None


def same_secret(expected: str, given: str) -> bool:
    """Whether ``given`` is the secret, compared in constant time."""
    return hmac.compare_digest(expected.encode(), given.encode())


async def read_at_most(request: web.Request, limit: int) -> bytes | None:
    """The request's whole body, or None when it is longer than ``limit`` bytes."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.content.iter_chunked(1 << 16):
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
    except (RequestPayloadError, HttpProcessingError) as error:  # a broken compressed body
        raise web.HTTPBadRequest(
            text='{"error": "the body could not be read"}', content_type="application/json"
        ) from error
    return b"".join(chunks)
