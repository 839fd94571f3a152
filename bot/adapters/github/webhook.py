"""Verify a GitHub webhook delivery (HMAC-SHA256) and decode it; no I/O."""

from __future__ import annotations

import json
from collections.abc import Mapping

import gidgethub
from gidgethub import sansio

from bot.adapters.github.events import SOURCE
from bot.adapters.receiving import DeliveryRejectedError, Received, Receiver

WEBHOOK_PATH = "/github/webhook"

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
    if not signature.isascii():  # a digest is hex: hmac cannot compare other characters
        raise DeliveryRejectedError(401, "the signature does not match the webhook secret")
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


def receiver(secret: str) -> Receiver:
    """GitHub's webhook at ``/github/webhook``: deliveries signed with ``secret``."""

    def read(headers: Mapping[str, str], body: bytes) -> Received:
        """The verified delivery, its payload as kept: JSON, the body itself when it is
        (a form-encoded delivery is JSON from here on); a ping is answered, not kept."""
        event = verify(headers, body, secret)
        if event.event == "ping":
            return Received(answer={"msg": "pong"})
        kind = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        try:  # the body as it came when it is JSON in UTF-8, as GitHub sends it
            json_body = kind.split(";")[0].strip().lower() == "application/json"
            payload = body.decode("utf-8") if json_body else json.dumps(event.data)
        except UnicodeDecodeError:  # another charset: what it says, as JSON
            payload = json.dumps(event.data)
        return Received(event.delivery_id, event.event, payload)

    return Receiver(WEBHOOK_PATH, SOURCE, MAX_PAYLOAD, read, "GitHub")


def receiver_from_env(env: Mapping[str, str]) -> Receiver | None:
    """The receiver the front process serves (bot/adapters/front.py): None without a secret."""
    secret = env.get("GITHUB_WEBHOOK_SECRET")
    return receiver(secret) if secret else None
