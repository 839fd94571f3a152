"""A real Matrix homeserver on loopback for tests: Synapse, with SQLite, one client listener.

Synapse lives in a virtualenv of its own (``scripts/install-matrix-server`` makes it, at
``$TASKBOT_SYNAPSE_VENV``, by default ``~/.cache/taskbot/synapse-venv``), never in the
project's ``.venv``. Everything the homeserver writes -- homeserver.yaml, its signing key,
the SQLite database, media, logs -- lives in one state directory, by default the test's
``tmp_path``. There is no federation, no presence and no URL previews; users are made
through the shared-secret admin API, and messages are rate-limited for real
(:data:`MESSAGES_PER_SECOND`, :data:`MESSAGE_BURST`) unless :meth:`SynapseServer.unlimit`
exempts a user.

Use the ``synapse`` fixture and talk to it with :class:`MatrixTestClient` (or any real
client, the bot included)::

    from tests.matrixserver import SynapseServer, synapse

    async def test_hello(synapse: SynapseServer) -> None:
        alice = await synapse.register("alice", "correct-horse")
        bob = await synapse.register("bob", "battery-staple")
        async with synapse.client(alice) as a, synapse.client(bob) as b:
            room = await a.create_room("taskbot", invite=[bob.user_id])
            await b.join(room)
            await a.send_text(room, "hello")
            await b.wait_for(room, lambda e: e["content"].get("body") == "hello")

Each test gets a fresh homeserver from ``synapse`` (about 1.5 s to start; 3 s for the first
of a run, which generates the signing key the others reuse); tests that can share one, each
with users of its own, may use the module-scoped ``synapse_server`` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import itertools
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
import pytest_asyncio
import yaml
from multidict import CIMultiDict
from yarl import URL

from tests.conftest import keep_secret
from tests.daemons import die_with_parent, free_port, tail

SYNAPSE_VERSION = "1.163.2"  # as scripts/install-matrix-server pins it
SERVER_NAME = "taskbot.test"
INSTALL_HINT = "run scripts/install-matrix-server (installs Synapse into its own virtualenv)"

# The message rate limit homeserver.yaml sets (rc_message): a token bucket of MESSAGE_BURST
# that refills at MESSAGES_PER_SECOND, per user, counting every event a user sends: messages,
# state events (a power-level change), membership events (a join, an invite, a leave), and
# a room's creation as one. So MESSAGE_BURST events sent at once pass and the next is
# refused with HTTP 429 M_LIMIT_EXCEEDED (after a 0.5 s pause Synapse adds), with
# ``retry_after_ms`` in the body and a Retry-After header (whole seconds, rounded up).
# Joins, invites, logins, registrations and room creations also have limits of their own,
# set high enough never to get in a test's way.
MESSAGES_PER_SECOND = 0.5
MESSAGE_BURST = 5


def _relaxed() -> dict[str, float]:
    """A limit no test reaches (a fresh dict each time: no YAML anchors in the file)."""
    return {"per_second": 1000, "burst_count": 10000}


def synapse_venv() -> Path:
    """Where scripts/install-matrix-server puts Synapse's virtualenv."""
    if explicit := os.environ.get("TASKBOT_SYNAPSE_VENV"):
        return Path(explicit)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "taskbot" / "synapse-venv"


def find_synapse() -> str | None:
    """The python of Synapse's virtualenv if it imports synapse, else None."""
    python = synapse_venv() / "bin" / "python"
    if not os.access(python, os.X_OK):
        return None
    return str(python) if _imports_synapse(str(python)) else None


@functools.cache
def _imports_synapse(python: str) -> bool:
    try:
        result = subprocess.run(
            [python, "-c", "import synapse"], capture_output=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


class SynapseError(RuntimeError):
    """The homeserver did not start (the message ends with the tail of its logs)."""


class MatrixError(Exception):
    """A Client-Server or admin API request answered with an HTTP error.

    ``body`` is the JSON error (``errcode``, ``error``, and for 429 ``retry_after_ms``);
    ``headers`` the response's headers (a 429 carries ``Retry-After``).
    """

    def __init__(
        self, method: str, path: str, status: int, body: dict[str, Any], headers: Mapping[str, str]
    ) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.body = body
        self.headers: Mapping[str, str] = CIMultiDict(headers)
        super().__init__(f"{method} {path}: HTTP {status} {body}")

    @property
    def errcode(self) -> str | None:
        value = self.body.get("errcode")
        return value if isinstance(value, str) else None

    @property
    def retry_after_ms(self) -> int | None:
        value = self.body.get("retry_after_ms")
        return value if isinstance(value, int) else None


@dataclass
class MatrixUser:
    """A registered account, logged in on one device."""

    user_id: str
    access_token: str = field(repr=False)
    device_id: str
    password: str = field(repr=False)

    @property
    def localpart(self) -> str:
        return self.user_id[1:].partition(":")[0]


# --- HTTP ---------------------------------------------------------------------------------


def _path(*segments: str) -> str:
    """URL path segments joined, each percent-encoded whole ('!', ':', '#', '$', '/')."""
    return "/".join(quote(segment, safe="") for segment in segments)


async def _request(
    session: aiohttp.ClientSession,
    base_url: str,
    method: str,
    path: str,
    *,
    json_body: Any = None,
    params: Mapping[str, str] | None = None,
    access_token: str | None = None,
) -> dict[str, Any]:
    """One JSON request; returns the JSON body, raises :class:`MatrixError` on HTTP >= 400."""
    url = URL(base_url + path, encoded=True)
    if params:
        url = url.update_query(params)
    headers = {"Authorization": f"Bearer {access_token}"} if access_token else {}
    async with session.request(method, url, json=json_body, headers=headers) as response:
        text = await response.text()
        try:
            body = json.loads(text) if text else {}
        except ValueError:
            body = {"error": text}
        if not isinstance(body, dict):
            body = {"body": body}
        if response.status >= 400:
            raise MatrixError(method, path, response.status, body, response.headers)
        return body


class MatrixTestClient:
    """A bare-bones Client-Server API (v3) client on aiohttp, for driving rooms from a test.

    Every request carries the user's access token as ``Authorization: Bearer``. Requests
    that fail raise :class:`MatrixError` with the homeserver's status and JSON error; for
    anything not covered here, :meth:`request` takes a method and a path.
    """

    def __init__(self, base_url: str, user: MatrixUser, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.user = user
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._txn_prefix = secrets.token_hex(4)
        self._txn_counter = itertools.count()

    async def __aenter__(self) -> MatrixTestClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def user_id(self) -> str:
        return self.user.user_id

    async def request(
        self,
        method: str,
        path: str,
        json_body: Any = None,
        *,
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """``method`` on ``/_matrix/client/v3`` + ``path`` (already encoded); the JSON reply."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return await _request(
            self._session,
            self.base_url,
            method,
            "/_matrix/client/v3" + path,
            json_body=json_body,
            params=params,
            access_token=self.user.access_token,
        )

    def _txn_id(self) -> str:
        return f"{self._txn_prefix}-{next(self._txn_counter)}"

    async def whoami(self) -> dict[str, Any]:
        return await self.request("GET", "/account/whoami")

    async def create_room(
        self,
        name: str | None = None,
        *,
        preset: str = "private_chat",
        invite: Iterable[str] = (),
        power_levels: Mapping[str, Any] | None = None,
        encrypted: bool = False,
        room_version: str | None = None,
    ) -> str:
        """Create a room; returns its id. ``power_levels`` overrides parts of the initial
        m.room.power_levels content; ``encrypted`` turns on Megolm from the start.

        Without ``room_version`` the room has Synapse's default version, 12 in Synapse
        1.163: its id is a bare hash (``!abc...``, no ``:server_name``), and its creator
        has unlimited power without being listed in the power levels' ``users``.
        """
        body: dict[str, Any] = {"preset": preset, "invite": list(invite)}
        if name is not None:
            body["name"] = name
        if room_version is not None:
            body["room_version"] = room_version
        if power_levels is not None:
            body["power_level_content_override"] = dict(power_levels)
        if encrypted:
            body["initial_state"] = [
                {
                    "type": "m.room.encryption",
                    "state_key": "",
                    "content": {"algorithm": "m.megolm.v1.aes-sha2"},
                }
            ]
        reply = await self.request("POST", "/createRoom", body)
        return str(reply["room_id"])

    async def join(self, room_id_or_alias: str) -> str:
        """Join a room by id or alias; returns the room id."""
        reply = await self.request("POST", f"/join/{_path(room_id_or_alias)}", {})
        return str(reply["room_id"])

    async def leave(self, room_id: str) -> None:
        await self.request("POST", f"/rooms/{_path(room_id)}/leave", {})

    async def invite(self, room_id: str, user_id: str) -> None:
        await self.request("POST", f"/rooms/{_path(room_id)}/invite", {"user_id": user_id})

    async def state(self, room_id: str, event_type: str, state_key: str = "") -> dict[str, Any]:
        """The content of one state event of the room."""
        return await self.request(
            "GET", f"/rooms/{_path(room_id)}/state/{_path(event_type)}/{_path(state_key)}"
        )

    async def set_state(
        self, room_id: str, event_type: str, content: Mapping[str, Any], state_key: str = ""
    ) -> str:
        """Send a state event; returns its event id."""
        reply = await self.request(
            "PUT",
            f"/rooms/{_path(room_id)}/state/{_path(event_type)}/{_path(state_key)}",
            dict(content),
        )
        return str(reply["event_id"])

    async def set_power_level(self, room_id: str, user_id: str, level: int) -> str:
        """Give ``user_id`` power ``level`` in the room (read, modify, write
        m.room.power_levels); returns the new state event's id."""
        content = await self.state(room_id, "m.room.power_levels")
        content.setdefault("users", {})[user_id] = level
        return await self.set_state(room_id, "m.room.power_levels", content)

    async def send_raw(self, room_id: str, event_type: str, content: Mapping[str, Any]) -> str:
        """Send a message event of any type and content; returns its event id."""
        path = f"/rooms/{_path(room_id)}/send/{_path(event_type)}/{_path(self._txn_id())}"
        reply = await self.request("PUT", path, dict(content))
        return str(reply["event_id"])

    async def send_text(
        self,
        room_id: str,
        body: str,
        *,
        formatted_body: str | None = None,
        mentions: Iterable[str] | None = None,
        reply_to: str | None = None,
        thread_root: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """Send an m.text message; returns its event id.

        ``formatted_body`` is HTML (``org.matrix.custom.html``); ``mentions`` the user ids
        for ``m.mentions``; ``reply_to`` an event to reply to; ``thread_root`` puts the
        message in that thread (with a reply fallback to the root unless ``reply_to`` says
        which event of the thread it answers). ``extra`` is merged into the content last.
        """
        content: dict[str, Any] = {"msgtype": "m.text", "body": body}
        if formatted_body is not None:
            content["format"] = "org.matrix.custom.html"
            content["formatted_body"] = formatted_body
        if mentions is not None:
            content["m.mentions"] = {"user_ids": list(mentions)}
        if thread_root is not None:
            content["m.relates_to"] = {
                "rel_type": "m.thread",
                "event_id": thread_root,
                "is_falling_back": reply_to is None,
                "m.in_reply_to": {"event_id": reply_to or thread_root},
            }
        elif reply_to is not None:
            content["m.relates_to"] = {"m.in_reply_to": {"event_id": reply_to}}
        if extra:
            content.update(extra)
        return await self.send_raw(room_id, "m.room.message", content)

    async def messages(self, room_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """The room's latest ``limit`` events the user may see, oldest first."""
        reply = await self.request(
            "GET",
            f"/rooms/{_path(room_id)}/messages",
            params={"dir": "b", "limit": str(limit)},
        )
        return list(reversed(reply.get("chunk", [])))

    async def wait_for(
        self,
        room_id: str,
        predicate: Callable[[dict[str, Any]], bool],
        timeout: float = 30.0,
        *,
        interval: float = 0.2,
    ) -> dict[str, Any]:
        """Poll :meth:`messages` until an event matches; returns the oldest that does.

        Raises AssertionError listing the events seen when none matches in time.
        """
        deadline = time.monotonic() + timeout
        events: list[dict[str, Any]] = []
        while True:
            events = await self.messages(room_id)
            for event in events:
                if predicate(event):
                    return event
            if time.monotonic() > deadline:
                seen = "\n".join(_describe(event) for event in events[-30:]) or "(none)"
                raise AssertionError(
                    f"{self.user_id}: no matching event in {room_id} within {timeout}s; "
                    f"events seen:\n{seen}"
                )
            await asyncio.sleep(interval)


def _describe(event: Mapping[str, Any]) -> str:
    content = json.dumps(event.get("content", {}), sort_keys=True)
    if len(content) > 200:
        content = content[:200] + "…"
    state = f" [{event['state_key']}]" if "state_key" in event else ""
    return f"  {event.get('sender')} {event.get('type')}{state} {content}"


# --- the homeserver -----------------------------------------------------------------------


# The signing key the first homeserver of the run generated, reused by the others.
_signing_key: bytes | None = None


@dataclass
class SynapseServer:
    """Synapse on ``host``:``port`` (picked when first started, kept by :meth:`restart`),
    all state under ``state_dir``, serving ``server_name`` (user ids end ``:taskbot.test``).

    With no ``state_dir`` a temporary directory is made (and removed by ``async with``'s
    exit). ``python`` is Synapse's interpreter, by default :func:`find_synapse`'s.
    """

    state_dir: Path | None = None
    python: str | None = None
    host: str = "127.0.0.1"
    port: int = 0
    server_name: str = SERVER_NAME
    messages_per_second: float = MESSAGES_PER_SECOND
    message_burst: int = MESSAGE_BURST
    startup_timeout: float = 60.0
    registration_shared_secret: str = field(
        default_factory=lambda: keep_secret(secrets.token_hex(24)), repr=False
    )
    startup_seconds: float = field(default=0.0, init=False)
    _process: asyncio.subprocess.Process | None = field(default=None, init=False, repr=False)
    _admin: MatrixUser | None = field(default=None, init=False, repr=False)
    _owns_state_dir: bool = field(default=False, init=False, repr=False)

    @property
    def base_url(self) -> str:
        """The client listener, e.g. ``http://127.0.0.1:40123`` (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    @property
    def config_path(self) -> Path:
        assert self.state_dir is not None
        return self.state_dir / "homeserver.yaml"

    async def __aenter__(self) -> SynapseServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
        if self._owns_state_dir and self.state_dir is not None:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    async def start(self) -> None:
        """Write the configuration (and a signing key, once), start Synapse, and return once
        ``GET /_matrix/client/versions`` answers."""
        if self.running:
            raise SynapseError("already running")
        self.python = self.python or find_synapse()
        if self.python is None:
            raise SynapseError(f"Synapse not found in {synapse_venv()}; {INSTALL_HINT}")
        if self.state_dir is None:
            self.state_dir = Path(tempfile.mkdtemp(prefix="taskbot-synapse-"))
            self._owns_state_dir = True
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port(self.host)
        self._write_config()

        started = time.monotonic()
        deadline = started + self.startup_timeout
        try:
            await self._ensure_signing_key(deadline)
            self._process = await self._spawn("--config-path", str(self.config_path))
            await self._wait_until_up(deadline)
        except BaseException as error:
            await self.stop()
            if isinstance(error, SynapseError | TimeoutError | OSError):
                raise SynapseError(f"Synapse did not start: {error}\n{self.logs()}") from error
            raise
        self.startup_seconds = time.monotonic() - started

    async def stop(self) -> None:
        """Stop Synapse and anything it started (its whole process group)."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()

    async def restart(self) -> None:
        """Stop, then start again on the same port with the same database."""
        await self.stop()
        await self.start()

    def client(self, user: MatrixUser) -> MatrixTestClient:
        """A :class:`MatrixTestClient` acting as ``user`` (close it, or use ``async with``)."""
        return MatrixTestClient(self.base_url, user)

    async def register(self, localpart: str, password: str, *, admin: bool = False) -> MatrixUser:
        """Create an account through the shared-secret registration API, logged in on a new
        device. Raises :class:`MatrixError` (e.g. M_USER_IN_USE) when Synapse refuses."""
        async with self._session() as session:
            fresh = await _request(session, self.base_url, "GET", "/_synapse/admin/v1/register")
            nonce = str(fresh["nonce"])
            mac = hmac.new(self.registration_shared_secret.encode(), digestmod=hashlib.sha1)
            mac.update(b"\0".join([nonce.encode(), localpart.encode(), password.encode()]))
            mac.update(b"\0admin" if admin else b"\0notadmin")
            reply = await _request(
                session,
                self.base_url,
                "POST",
                "/_synapse/admin/v1/register",
                json_body={
                    "nonce": nonce,
                    "username": localpart,
                    "password": password,
                    "admin": admin,
                    "mac": mac.hexdigest(),
                },
            )
        return MatrixUser(
            user_id=str(reply["user_id"]),
            access_token=keep_secret(str(reply["access_token"])),
            device_id=str(reply["device_id"]),
            password=password,  # chosen by the test: maybe too common a string to flag in logs
        )

    async def admin(self) -> MatrixUser:
        """A server admin, registered the first time it is asked for."""
        if self._admin is None:
            self._admin = await self.register(
                f"taskbot-admin-{secrets.token_hex(3)}", secrets.token_hex(16), admin=True
            )
        return self._admin

    async def admin_request(self, method: str, path: str, json_body: Any = None) -> dict[str, Any]:
        """``method`` on ``/_synapse/admin`` + ``path`` (already encoded), as the admin."""
        admin = await self.admin()
        async with self._session() as session:
            return await _request(
                session,
                self.base_url,
                method,
                "/_synapse/admin" + path,
                json_body=json_body,
                access_token=admin.access_token,
            )

    async def unlimit(self, user: MatrixUser) -> None:
        """Exempt ``user`` from rate limiting (the admin API's override with
        messages_per_second 0, which Synapse reads as "not limited at all")."""
        await self.admin_request(
            "POST",
            f"/v1/users/{_path(user.user_id)}/override_ratelimit",
            {"messages_per_second": 0, "burst_count": 0},
        )

    def logs(self) -> str:
        """The tail of Synapse's log and of its stdout/stderr, for error messages."""
        if self.state_dir is None:
            return "(no state directory)"
        names = ("homeserver.out", "homeserver.log")
        return "\n".join(tail(self.state_dir / name) for name in names)

    # --- internals ---

    def _session(self) -> aiohttp.ClientSession:
        # One per call: nothing bound to an event loop outlives a call, so a server started
        # in one loop (a module-scoped fixture) serves tests running in others.
        return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))

    def _write_config(self) -> None:
        assert self.state_dir is not None
        state = self.state_dir
        log_config = {
            "version": 1,
            "formatters": {
                "precise": {
                    "format": "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - "
                    "%(request)s - %(message)s"
                }
            },
            "handlers": {
                "file": {
                    "class": "logging.FileHandler",
                    "formatter": "precise",
                    "filename": str(state / "homeserver.log"),
                    "encoding": "utf8",
                }
            },
            "root": {"level": "INFO", "handlers": ["file"]},
            "disable_existing_loggers": False,
        }
        config = {
            "server_name": self.server_name,
            "public_baseurl": self.base_url + "/",
            "pid_file": str(state / "homeserver.pid"),
            "listeners": [
                {
                    "port": self.port,
                    "bind_addresses": [self.host],
                    "type": "http",
                    "tls": False,
                    "x_forwarded": False,
                    "resources": [{"names": ["client"], "compress": False}],
                }
            ],
            "database": {"name": "sqlite3", "args": {"database": str(state / "homeserver.db")}},
            "log_config": str(state / "log.config"),
            "media_store_path": str(state / "media_store"),
            "signing_key_path": str(state / "signing.key"),
            "registration_shared_secret": self.registration_shared_secret,
            "enable_registration": False,
            "report_stats": False,
            "enable_metrics": False,
            "suppress_key_server_warning": True,
            "trusted_key_servers": [],
            "federation_domain_whitelist": [],
            "url_preview_enabled": False,
            "presence": {"enabled": False},
            "bcrypt_rounds": 4,  # the minimum: registering takes milliseconds, not a second
            "rc_message": {
                "per_second": self.messages_per_second,
                "burst_count": self.message_burst,
            },
            "rc_registration": _relaxed(),
            "rc_login": {
                "address": _relaxed(),
                "account": _relaxed(),
                "failed_attempts": _relaxed(),
            },
            "rc_joins": {"local": _relaxed(), "remote": _relaxed()},
            "rc_joins_per_room": _relaxed(),
            "rc_invites": {
                "per_room": _relaxed(),
                "per_user": _relaxed(),
                "per_issuer": _relaxed(),
            },
            "rc_room_creation": _relaxed(),
        }
        (state / "log.config").write_text(yaml.safe_dump(log_config), encoding="utf-8")
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")

    async def _spawn(self, *args: str) -> asyncio.subprocess.Process:
        assert self.python is not None
        assert self.state_dir is not None
        with open(self.state_dir / "homeserver.out", "ab") as out:
            return await asyncio.create_subprocess_exec(
                self.python,
                "-m",
                "synapse.app.homeserver",
                *args,
                cwd=self.state_dir,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # its own process group, killed as one by stop()
                preexec_fn=die_with_parent,
            )

    async def _ensure_signing_key(self, deadline: float) -> None:
        """The signing key homeserver.yaml names: the first homeserver of the test run has
        Synapse generate one (``--generate-keys``, a second and more), the others reuse it.
        Nothing federates, so sharing it costs nothing."""
        global _signing_key
        assert self.state_dir is not None
        path = self.state_dir / "signing.key"
        if path.exists():
            return
        if _signing_key is None:
            await self._generate_keys(deadline)
            _signing_key = path.read_bytes()
        else:
            path.write_bytes(_signing_key)
            path.chmod(0o600)

    async def _generate_keys(self, deadline: float) -> None:
        """``--generate-keys``: write the signing key homeserver.yaml names, then exit."""
        process = await self._spawn("--config-path", str(self.config_path), "--generate-keys")
        try:
            status = await asyncio.wait_for(process.wait(), max(deadline - time.monotonic(), 1))
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
            raise SynapseError("--generate-keys did not finish") from None
        if status != 0:
            raise SynapseError(f"--generate-keys exited with status {status}")

    async def _wait_until_up(self, deadline: float) -> None:
        url = self.base_url + "/_matrix/client/versions"
        async with self._session() as session:
            while True:
                if self._process is not None and self._process.returncode is not None:
                    raise SynapseError(f"Synapse exited with status {self._process.returncode}")
                with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                    async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as reply:
                        if reply.status == 200 and "versions" in await reply.json():
                            return
                if time.monotonic() > deadline:
                    raise SynapseError(f"{url} did not answer within {self.startup_timeout}s")
                await asyncio.sleep(0.1)


# --- the fixtures -------------------------------------------------------------------------


def require_synapse() -> str:
    """Synapse's python; skips the test when Synapse is missing, fails it when CI=true."""
    python = find_synapse()
    if python is None:
        reason = f"Synapse not installed (no {synapse_venv()}/bin/python importing it); "
        reason += INSTALL_HINT
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return python


@pytest_asyncio.fixture
async def synapse(tmp_path: Path) -> AsyncIterator[SynapseServer]:
    """A fresh Synapse for one test, stopped afterwards.

    Skipped when Synapse is not installed, but a failure when CI=true.
    """
    server = SynapseServer(state_dir=tmp_path / "synapse", python=require_synapse())
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def synapse_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[SynapseServer]:
    """One Synapse for all the tests of a module. They share its users, rooms and rate
    limits, so each should register users of its own. Skipped or failed as ``synapse`` is.
    (It runs in the module's event loop; the tests need no mark, since
    :class:`SynapseServer` keeps nothing tied to a loop between calls.)"""
    python = require_synapse()
    server = SynapseServer(state_dir=tmp_path_factory.mktemp("synapse"), python=python)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
