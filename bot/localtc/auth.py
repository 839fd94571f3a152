"""Hawk authentication as Taskcluster's services do it: clients, certificates, authorizedScopes."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import mohawk
import mohawk.exc
from mohawk.util import parse_authorization_header

from bot.localtc.errors import TaskclusterError
from bot.localtc.scopes import expand_roles, has_scope

MAX_CERTIFICATE_MS = 31 * 24 * 3600 * 1000
ANONYMOUS_ROLE = "anonymous"


@dataclass(frozen=True, slots=True)
class Client:
    """A permanent client: its id, secret accessToken, and scopes."""

    client_id: str
    access_token: str
    scopes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Caller:
    """Who made a request, and the scopes it may use for it (roles expanded)."""

    client_id: str
    scopes: frozenset[str]


def _unauthorized(message: str) -> TaskclusterError:
    return TaskclusterError(401, "AuthenticationFailed", message)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def temporary_access_token(issuer_token: str, seed: str) -> str:
    """The accessToken of temporary credentials: HMAC-SHA256 of the seed, URL-safe base64."""
    digest = hmac.new(issuer_token.encode(), seed.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def certificate_signature(
    issuer_token: str, certificate: Mapping[str, Any], name: str | None
) -> str:
    lines = [f"version:{certificate['version']}"]
    if name:
        lines += [f"clientId:{name}", f"issuer:{certificate['issuer']}"]
    lines += [
        f"seed:{certificate['seed']}",
        f"start:{certificate['start']}",
        f"expiry:{certificate['expiry']}",
        "scopes:",
        *certificate["scopes"],
    ]
    return _b64(hmac.new(issuer_token.encode(), "\n".join(lines).encode(), hashlib.sha256).digest())


@dataclass
class Authenticator:
    """Checks Hawk requests against configured clients and roles."""

    clients: dict[str, Client]
    roles: Mapping[str, Sequence[str]] = field(default_factory=dict)
    clock: Callable[[], float] = time.time
    # Like Taskcluster, no nonce cache: HTTP clients re-send an idempotent request whose
    # connection dropped with the same header, and the Queue's idempotency makes it safe.
    skew_seconds: float = 900.0

    def scopes_of(self, scopes: Sequence[str]) -> frozenset[str]:
        return frozenset(expand_roles(scopes, self.roles))

    def anonymous(self) -> Caller:
        return Caller("anonymous", self.scopes_of([f"assume:{ANONYMOUS_ROLE}"]))

    def authenticate(
        self, header: str | None, *, url: str, method: str, content: bytes, content_type: str
    ) -> Caller:
        """The caller of a request, or a 401 ``AuthenticationFailed`` saying why not."""
        if not header:
            return self.anonymous()
        if not header.startswith("Hawk "):
            raise _unauthorized("only Hawk authentication is supported")
        try:
            fields = parse_authorization_header(header)
        except mohawk.exc.HawkFail as error:
            raise _unauthorized(f"malformed Authorization header: {error}") from None
        hawk_id = fields.get("id", "")
        ext = _decode_ext(fields.get("ext", ""))
        key, scopes = self._key_and_scopes(hawk_id, ext)
        try:
            mohawk.Receiver(
                lambda sender_id: {"id": sender_id, "key": key, "algorithm": "sha256"},
                header,
                url,
                method,
                content=content,
                content_type=content_type,
                seen_nonce=_no_nonce_cache,
                timestamp_skew_in_seconds=self.skew_seconds,
            )
        except mohawk.exc.TokenExpired:
            raise _unauthorized(
                "the request's Hawk timestamp is too far from the server's clock"
            ) from None
        except mohawk.exc.HawkFail as error:
            # Name the check that failed, never the MACs or hashes involved.
            raise _unauthorized(
                f"the Hawk signature is not valid ({type(error).__name__})"
            ) from None
        authorized = ext.get("authorizedScopes")
        if authorized is not None:
            if not isinstance(authorized, list) or not all(isinstance(s, str) for s in authorized):
                raise _unauthorized("authorizedScopes must be a list of strings")
            granted = self.scopes_of(scopes)
            if not all(has_scope(granted, s) for s in authorized):
                raise _unauthorized("the credentials do not satisfy the supplied authorizedScopes")
            scopes = list(authorized)
        return Caller(hawk_id, self.scopes_of(scopes))

    def _key_and_scopes(self, hawk_id: str, ext: Mapping[str, Any]) -> tuple[str, list[str]]:
        certificate = ext.get("certificate")
        if certificate is None:
            client = self.clients.get(hawk_id)
            if client is None:
                raise _unauthorized(f"unknown clientId `{hawk_id}`")
            return client.access_token, list(client.scopes)
        if isinstance(certificate, str):
            try:
                certificate = json.loads(certificate)
            except ValueError:
                raise _unauthorized("the certificate is not JSON") from None
        if not isinstance(certificate, dict) or certificate.get("version") != 1:
            raise _unauthorized("the certificate must be an object with version 1")
        issuer_id = certificate.get("issuer", hawk_id)
        name = hawk_id if "issuer" in certificate else None
        issuer = self.clients.get(issuer_id)
        if issuer is None:
            raise _unauthorized(f"unknown certificate issuer `{issuer_id}`")
        try:
            start, expiry = int(certificate["start"]), int(certificate["expiry"])
            seed, scopes = str(certificate["seed"]), list(certificate["scopes"])
            signature = str(certificate["signature"])
        except (KeyError, TypeError, ValueError):
            raise _unauthorized(
                "the certificate lacks start, expiry, seed, scopes or signature"
            ) from None
        now_ms = self.clock() * 1000
        if expiry - start > MAX_CERTIFICATE_MS:
            raise _unauthorized("temporary credentials may last at most 31 days")
        if now_ms < start - self.skew_seconds * 1000:
            raise _unauthorized("the temporary credentials are not valid yet")
        if now_ms > expiry + self.skew_seconds * 1000:
            raise _unauthorized("the temporary credentials have expired")
        expected = certificate_signature(issuer.access_token, certificate, name)
        if not hmac.compare_digest(expected, signature):
            raise _unauthorized("the certificate signature is invalid")
        issuer_scopes = self.scopes_of(issuer.scopes)
        if not all(has_scope(issuer_scopes, s) for s in scopes):
            raise _unauthorized("the issuer does not have every scope of the certificate")
        return temporary_access_token(issuer.access_token, seed), scopes


def _no_nonce_cache(sender_id: str, nonce: str, timestamp: str) -> bool:
    """Never a replay: Taskcluster keeps no nonce cache (see ``skew_seconds``)."""
    return False


def _decode_ext(ext: str) -> dict[str, Any]:
    if not ext:
        return {}
    try:
        padded = ext + "=" * (-len(ext) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError):
        raise _unauthorized("the Hawk ext is not base64-encoded JSON") from None
    if not isinstance(data, dict):
        raise _unauthorized("the Hawk ext must hold a JSON object")
    return data
