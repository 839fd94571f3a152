"""Verify a GitHub webhook delivery (HMAC-SHA256) and decode it; no I/O."""

from __future__ import annotations

from collections.abc import Mapping

import gidgethub
from gidgethub import sansio


class DeliveryRejectedError(Exception):
    """A delivery the bot will not process: the HTTP status to answer and why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


# GitHub caps a delivery's payload at 25 MB; it does not send larger ones.
MAX_PAYLOAD = 25 * 1024 * 1024


def verify(headers: Mapping[str, str], body: bytes, secret: str) -> sansio.Event:
    """The event of a delivery signed with ``secret``, or ``DeliveryRejectedError`` (401 or 400).

    Only ``X-Hub-Signature-256`` is accepted: GitHub sends it with every signed delivery,
    and the SHA-1 one is kept for old receivers only. Both of GitHub's content types are
    taken: JSON, and the form a repository webhook sends by default (the JSON in a
    ``payload`` field). A payload that is not a JSON object is no event of GitHub's.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    signature = lowered.get("x-hub-signature-256")
    if not signature:
        raise DeliveryRejectedError(
            401, "the delivery is not signed (no X-Hub-Signature-256 header)"
        )
    for needed in ("x-github-event", "x-github-delivery"):
        if not lowered.get(needed):
            raise DeliveryRejectedError(400, f"the delivery has no {needed} header")
    only_sha256 = {k: v for k, v in lowered.items() if k != "x-hub-signature"}
    try:
        event = sansio.Event.from_http(only_sha256, body, secret=secret)
    except gidgethub.ValidationFailure:
        raise DeliveryRejectedError(
            401, "the signature does not match the webhook secret"
        ) from None
    except gidgethub.BadRequest as error:
        raise DeliveryRejectedError(400, f"the delivery is not JSON: {error}") from None
    except (ValueError, KeyError, IndexError, RecursionError):
        raise DeliveryRejectedError(400, "the delivery's body is not valid JSON") from None
    if not isinstance(event.data, dict):
        kind = type(event.data).__name__ if event.data is not None else "null"
        raise DeliveryRejectedError(400, f"the delivery's payload is a JSON {kind}, not an object")
    return event
