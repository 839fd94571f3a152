"""A real IRC network on loopback for tests: InspIRCd 3 with Atheme 7.2 services linked to it.

The daemons are Debian's ``inspircd`` and ``atheme-services`` (``scripts/install-irc-server``
installs them). Everything they write -- configuration, pid files, logs, the services
database -- lives in one state directory, by default the test's ``tmp_path``.

Use the ``irc_server`` fixture and talk to it with :class:`IrcClient` (or any real client)::

    from tests.ircserver import IrcClient, IrcServer, irc_server

    async def test_identified(irc_server: IrcServer) -> None:
        await irc_server.register_account("alice", "correct-horse")
        alice = await IrcClient.connect(irc_server, "alice", sasl=("alice", "correct-horse"))
        assert alice.account == "alice"
        await alice.close()

InspIRCd refuses to start as root unless given ``--runasroot``; :class:`IrcServer` passes that
flag only when the test run itself is root (as it is on CI) and needs no privileges otherwise.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from tests.daemons import die_with_parent, free_port, tail

TEMPLATES = Path(__file__).resolve().parent / "irc"
INSTALL_HINT = "run scripts/install-irc-server (installs Debian's inspircd and atheme-services)"

# Flood control as irc/inspircd.conf sets it (<connect threshold="10" commandrate="1000"
# fakelag="no">): a command adds 1 to a client's penalty (a few commands add more), the
# penalty drops by 1 once a second, and a client whose penalty reaches 10 is disconnected
# with "ERROR :Closing link: (...) [Excess Flood]". So FLOOD_BURST commands sent at once
# get a client killed, one fewer does not, and about one command a second is sustainable.
FLOOD_BURST = 10
FLOOD_COMMANDS_PER_SECOND = 1

# The names both configuration files agree on.
SERVICES_SERVER = "services.taskbot.test"
IRC_SERVER = "irc.taskbot.test"


def find_binaries() -> dict[str, str | None]:
    """The daemons' paths, or None for each one that is not installed."""
    return {
        "inspircd": shutil.which("inspircd") or _executable("/usr/sbin/inspircd"),
        "atheme-services": shutil.which("atheme-services")
        or _executable("/usr/bin/atheme-services"),
    }


def _executable(path: str) -> str | None:
    return path if os.access(path, os.X_OK) else None


class IrcServerError(RuntimeError):
    """The servers did not start, or services refused a request."""


# --- a small raw IRC client -------------------------------------------------------------

# Replies that end a registration attempt: erroneous nick, nick in use, nick collision.
_NICK_ERRORS = ("432", "433", "436")
_TAG_ESCAPES = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}


@dataclass
class Message:
    """One line from the server, split into IRCv3 tags, source, command and parameters."""

    raw: str
    tags: dict[str, str]
    source: str | None
    command: str
    params: list[str]

    @classmethod
    def parse(cls, line: str) -> Message:
        rest = line
        tags: dict[str, str] = {}
        if rest.startswith("@"):
            tag_text, _, rest = rest[1:].partition(" ")
            for item in tag_text.split(";"):
                key, _, value = item.partition("=")
                tags[key] = re.sub(
                    r"\\(.)?", lambda m: _TAG_ESCAPES.get(m[1] or "", m[1] or ""), value
                )
            rest = rest.lstrip(" ")
        source = None
        if rest.startswith(":"):
            source, _, rest = rest[1:].partition(" ")
            rest = rest.lstrip(" ")
        trailing = None
        if " :" in rest:
            rest, _, trailing = rest.partition(" :")
        words = rest.split()
        params = words[1:] + ([trailing] if trailing is not None else [])
        return cls(line, tags, source, words[0].upper() if words else "", params)

    @property
    def nick(self) -> str | None:
        """The nick of the source (None for a message without a source)."""
        return self.source.split("!", 1)[0] if self.source else None

    def __str__(self) -> str:
        return self.raw


class IrcClient:
    """A bare-bones client on asyncio streams, for driving the server from a test.

    ``lines`` keeps every line read so far, for assertions and for error messages.
    PINGs are answered while reading.
    """

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, nick: str
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.nick = nick
        self.lines: list[Message] = []
        self.caps_available: dict[str, str] = {}
        self.caps_enabled: set[str] = set()
        self.account: str | None = None

    @classmethod
    async def connect(
        cls,
        server: IrcServer,
        nick: str,
        *,
        caps: Iterable[str] = (),
        sasl: tuple[str, str] | None = None,
        timeout: float = 5.0,
    ) -> IrcClient:
        """Connect and register as ``nick``; with ``caps``/``sasl``, negotiate them first.

        ``sasl`` is ``(account, password)`` for SASL PLAIN; it must succeed (903).
        Returns once the server has sent the end of its MOTD.
        """
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(server.host, server.port), timeout
        )
        client = cls(reader, writer, nick)
        try:
            await client._register(list(caps), sasl, timeout)
        except BaseException:
            await client.close()
            raise
        return client

    async def _register(
        self, caps: list[str], sasl: tuple[str, str] | None, timeout: float
    ) -> None:
        wanted = [*caps, *(["sasl"] if sasl and "sasl" not in caps else [])]
        if wanted:
            await self.send("CAP LS 302")
        await self.send(f"NICK {self.nick}", f"USER {self.nick} 0 * :taskbot test client")
        if wanted:
            while True:
                ls = await self._expect_registering(
                    lambda m: m.command == "CAP" and m.params[1] == "LS", timeout
                )
                for item in ls.params[-1].split():
                    name, _, value = item.partition("=")
                    self.caps_available[name] = value
                if ls.params[2] != "*":  # "CAP * LS * :..." means more lines follow
                    break
            await self.send(f"CAP REQ :{' '.join(wanted)}")
            reply = await self._expect_registering(
                lambda m: m.command == "CAP" and m.params[1] in ("ACK", "NAK"), timeout
            )
            if reply.params[1] == "NAK":
                raise IrcServerError(f"server refused capabilities: {reply}")
            self.caps_enabled.update(reply.params[-1].split())
            if sasl:
                await self.authenticate_plain(*sasl, timeout=timeout)
            await self.send("CAP END")
        await self._expect_registering(lambda m: m.command in ("376", "422"), timeout)

    async def _expect_registering(
        self, predicate: Callable[[Message], bool], timeout: float
    ) -> Message:
        reply = await self.expect(lambda m: predicate(m) or m.command in _NICK_ERRORS, timeout)
        if reply.command in _NICK_ERRORS:
            raise IrcServerError(f"cannot register as {self.nick!r}: {reply}")
        return reply

    async def authenticate_plain(self, account: str, password: str, timeout: float = 5.0) -> None:
        """SASL PLAIN during registration; raises unless the server answers 903."""
        await self.send("AUTHENTICATE PLAIN")
        await self.expect(lambda m: m.command == "AUTHENTICATE" and m.params == ["+"], timeout)
        blob = base64.b64encode(f"{account}\0{account}\0{password}".encode()).decode()
        await self.send(f"AUTHENTICATE {blob}")
        result = await self.expect(lambda m: m.command in ("903", "902", "904", "905"), timeout)
        if result.command != "903":
            raise IrcServerError(f"SASL PLAIN failed for {account!r}: {result}")
        logged_in = [m for m in self.lines if m.command == "900"]
        self.account = logged_in[-1].params[2] if logged_in else account

    async def send(self, *lines: str) -> None:
        for line in lines:
            self.writer.write(line.encode() + b"\r\n")
        await self.writer.drain()

    async def read(self, timeout: float = 5.0) -> Message:
        """The next line; raises EOFError when the server closed the connection."""
        while True:
            raw = await asyncio.wait_for(self.reader.readline(), timeout)
            if not raw:
                raise EOFError(f"{self.nick}: connection closed by the server")
            message = Message.parse(raw.decode("utf-8", "replace").rstrip("\r\n"))
            self.lines.append(message)
            if message.command == "PING":
                await self.send(f"PONG :{message.params[-1] if message.params else ''}")
                continue
            return message

    async def expect(
        self, predicate: str | Callable[[Message], bool], timeout: float = 5.0
    ) -> Message:
        """Read until a line matches (a command name, or a predicate); others are skipped."""
        match = (lambda m: m.command == predicate) if isinstance(predicate, str) else predicate
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                message = await self.read(max(remaining, 0.001))
            except TimeoutError:
                recent = "\n".join(str(m) for m in self.lines[-15:])
                raise TimeoutError(
                    f"{self.nick}: no matching line within {timeout}s; last lines:\n{recent}"
                ) from None
            if message.command == "ERROR" and not match(message):
                raise EOFError(f"{self.nick}: server closed the link: {message}")
            if match(message):
                return message

    async def read_until_closed(self, timeout: float = 5.0) -> list[Message]:
        """Everything the server sends until it hangs up."""
        seen: list[Message] = []
        with contextlib.suppress(EOFError, ConnectionError):
            while True:
                seen.append(await self.read(timeout))
        return seen

    async def close(self, quit_message: str | None = None) -> None:
        if quit_message is not None and not self.writer.is_closing():
            with contextlib.suppress(ConnectionError):
                await self.send(f"QUIT :{quit_message}")
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


# --- the servers ------------------------------------------------------------------------


@dataclass
class IrcServer:
    """InspIRCd plus Atheme on 127.0.0.1, all state under ``state_dir``.

    ``port`` is the plain-text client port; it and the services link port are picked when
    first started and kept by :meth:`restart`. With no ``state_dir`` a temporary directory
    is made (and removed by ``async with``'s exit).
    """

    state_dir: Path | None = None
    host: str = "127.0.0.1"
    port: int = 0
    tls_port: int = 0  # TLS with a certificate for 127.0.0.1 signed by ``ca_file``
    link_port: int = 0
    http_port: int = 0
    commands_per_second: int = FLOOD_COMMANDS_PER_SECOND  # sustained rate before Excess Flood
    startup_timeout: float = 15.0
    link_password: str = field(default_factory=lambda: secrets.token_hex(16))
    startup_seconds: float = field(default=0.0, init=False)
    _inspircd: asyncio.subprocess.Process | None = field(default=None, init=False, repr=False)
    _atheme: asyncio.subprocess.Process | None = field(default=None, init=False, repr=False)
    _owns_state_dir: bool = field(default=False, init=False, repr=False)

    @property
    def running(self) -> bool:
        return any(p is not None and p.returncode is None for p in (self._inspircd, self._atheme))

    async def __aenter__(self) -> IrcServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
        if self._owns_state_dir and self.state_dir is not None:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    async def start(self, *, services: bool = True) -> None:
        """Start both daemons and return once a client can connect and services are linked
        (without ``services``: the IRC daemon alone, as when services link late)."""
        if self.running:
            raise IrcServerError("already running")
        binaries = find_binaries()
        missing = [name for name, path in binaries.items() if path is None]
        if missing:
            raise IrcServerError(f"not installed: {', '.join(missing)}; {INSTALL_HINT}")
        if self.state_dir is None:
            self.state_dir = Path(tempfile.mkdtemp(prefix="taskbot-irc-"))
            self._owns_state_dir = True
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port(self.host)
        self.tls_port = self.tls_port or free_port(self.host, taken={self.port})
        self._make_certificates()
        self.link_port = self.link_port or free_port(self.host, taken={self.port, self.tls_port})
        self.http_port = self.http_port or free_port(
            self.host, taken={self.port, self.tls_port, self.link_port}
        )
        self._write_configs()

        started = time.monotonic()
        deadline = started + self.startup_timeout
        try:
            inspircd_args = ["--config", str(self.state_dir / "inspircd.conf"), "--nofork"]
            if os.geteuid() == 0:
                inspircd_args.append("--runasroot")
            self._inspircd = await self._spawn(binaries["inspircd"], inspircd_args, "inspircd.out")
            await self._wait_for_port(deadline)
            if services:
                await self._start_services(binaries["atheme-services"], deadline)
        except BaseException as error:
            await self.stop()
            if isinstance(error, IrcServerError | TimeoutError | OSError):
                raise IrcServerError(f"IRC server did not start: {error}\n{self.logs()}") from error
            raise
        self.startup_seconds = time.monotonic() - started

    async def start_services(self) -> None:
        """Start the services daemon alone (the IRC daemon runs) and wait until it linked."""
        binary = find_binaries()["atheme-services"]
        assert binary is not None
        await self._start_services(binary, time.monotonic() + self.startup_timeout)

    async def _start_services(self, binary: str, deadline: float) -> None:
        assert self.state_dir is not None
        athemelog = self.state_dir / "atheme.log"
        log_offset = athemelog.stat().st_size if athemelog.exists() else 0
        self._atheme = await self._spawn(
            binary,
            [
                "-n",
                "-c",
                str(self.state_dir / "atheme.conf"),
                "-D",
                str(self.state_dir),
                "-l",
                str(athemelog),
                "-p",
                str(self.state_dir / "atheme.pid"),
            ],
            "atheme.out",
        )
        await self._wait_for_log(athemelog, log_offset, "finished synching with uplink", deadline)
        await self._wait_for_services(deadline)

    async def stop(self) -> None:
        """Stop services, then the IRC daemon (services save their database on the way out)."""
        for attribute in ("_atheme", "_inspircd"):
            process: asyncio.subprocess.Process | None = getattr(self, attribute)
            if process is not None and process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), 5)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
                    await process.wait()
            setattr(self, attribute, None)

    async def restart(self) -> None:
        """Stop, then start again on the same ports with the same accounts."""
        await self.stop()
        await self.start()

    async def register_account(
        self,
        account: str,
        password: str,
        email: str | None = None,
        *,
        via: str = "jsonrpc",
        timeout: float = 10.0,
    ) -> None:
        """Create a services account that can log in (SASL, NickServ IDENTIFY) at once.

        ``via="jsonrpc"`` (the default, a few milliseconds) runs NickServ REGISTER through
        Atheme's JSON-RPC interface. ``via="nickserv"`` does what a person would: connects a
        short-lived client with ``account`` as its nick and messages NickServ (about a second,
        as InspIRCd completes registrations once a second). Atheme's rules apply either way:
        the name must be a valid nick, and the password must not be the name itself.
        """
        email = email or f"{account}@taskbot.test"
        if via == "jsonrpc":
            await self.services_command("NickServ", "REGISTER", account, password, email)
            return
        if via != "nickserv":
            raise ValueError(f"via must be 'jsonrpc' or 'nickserv', not {via!r}")
        client = await IrcClient.connect(self, account, timeout=timeout)
        try:
            await client.send(f"PRIVMSG NickServ :REGISTER {password} {email}")
            notices: list[str] = []

            def done(message: Message) -> bool:
                if message.command == "900":  # logged in to the new account
                    return True
                if message.command == "NOTICE" and message.nick == "NickServ":
                    notices.append(message.params[-1])
                    return "is now registered" not in message.params[-1]
                return False

            reply = await client.expect(done, timeout)
            if reply.command != "900":
                raise IrcServerError(f"NickServ refused to register {account!r}: {notices}")
        finally:
            await client.close("registered")

    async def services_command(self, service: str, command: str, *params: str) -> str:
        """Run a services command anonymously through Atheme's JSON-RPC; returns its text.

        For example ``services_command("NickServ", "INFO", "alice")``. Parameters go one
        per argument, as they would on IRC after the command name.

        Raises :class:`IrcServerError` with Atheme's message when the command fails.
        """
        request = {
            "jsonrpc": "2.0",
            "id": secrets.token_hex(4),
            "method": "atheme.command",
            # authcookie and account "." (no parameter may be empty): run without logging
            # in; then the source "ip" that services log.
            "params": [".", ".", self.host, service, command, *params],
        }
        url = f"http://{self.host}:{self.http_port}/jsonrpc"
        timeout = aiohttp.ClientTimeout(total=10)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(url, json=request) as reply,
        ):
            body = await reply.json(content_type=None)
        if body.get("error"):
            raise IrcServerError(f"{service} {command} failed: {body['error']}")
        return str(body.get("result", ""))

    def logs(self) -> str:
        """The tail of every log, for error messages."""
        if self.state_dir is None:
            return "(no state directory)"
        names = ("inspircd.out", "inspircd.log", "atheme.out", "atheme.log")
        return "\n".join(tail(self.state_dir / name) for name in names)

    # --- internals ---

    @property
    def ca_file(self) -> Path:
        """The certificate of the CA that signed the TLS port's certificate."""
        assert self.state_dir is not None
        return self.state_dir / "ca.pem"

    def _make_certificates(self) -> None:
        """A throwaway CA and a server certificate for 127.0.0.1 and localhost, made once
        per state directory (a restart keeps them)."""
        assert self.state_dir is not None
        if (self.state_dir / "server.pem").exists():
            return
        import datetime as dt
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        now = dt.datetime.now(dt.UTC)

        def certificate(
            subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name | None = None
        ) -> x509.CertificateBuilder:
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
            return (
                x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(issuer or name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=1))
            )

        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = (
            certificate("taskbot test CA", ca_key)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        alt_names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(self.host))]
        server = (
            certificate(IRC_SERVER, key, ca.subject)
            .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        pem = serialization.Encoding.PEM
        self.ca_file.write_bytes(ca.public_bytes(pem))
        (self.state_dir / "server.pem").write_bytes(server.public_bytes(pem))
        (self.state_dir / "server.key").write_bytes(
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )

    def _write_configs(self) -> None:
        assert self.state_dir is not None
        values = {
            "CLIENT_PORT": str(self.port),
            "LINK_PORT": str(self.link_port),
            "HTTP_PORT": str(self.http_port),
            "LINK_PASSWORD": self.link_password,
            "STATE_DIR": str(self.state_dir),
            "COMMAND_RATE": str(1000 * self.commands_per_second),
            "TLS_PORT": str(self.tls_port),
        }
        for name in ("inspircd.conf", "atheme.conf"):
            text = (TEMPLATES / name).read_text(encoding="utf-8")
            text = re.sub(r"@([A-Z_]+)@", lambda m: values[m[1]], text)
            (self.state_dir / name).write_text(text, encoding="utf-8")
        (self.state_dir / "www").mkdir(exist_ok=True)
        (self.state_dir / "inspircd.motd").write_text("taskbot test network\n", encoding="utf-8")

    async def _spawn(
        self, binary: str | None, args: list[str], output: str
    ) -> asyncio.subprocess.Process:
        assert binary is not None
        assert self.state_dir is not None
        with open(self.state_dir / output, "ab") as out:
            return await asyncio.create_subprocess_exec(
                binary,
                *args,
                cwd=self.state_dir,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )

    def _check_alive(self) -> None:
        for name, process in (("inspircd", self._inspircd), ("atheme-services", self._atheme)):
            if process is not None and process.returncode is not None:
                raise IrcServerError(f"{name} exited with status {process.returncode}")

    async def _wait_for_port(self, deadline: float) -> None:
        while True:
            self._check_alive()
            try:
                _, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                if time.monotonic() > deadline:
                    raise IrcServerError(f"nothing listens on {self.host}:{self.port}") from None
                await asyncio.sleep(0.05)
                continue
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            return

    async def _wait_for_log(self, path: Path, offset: int, text: str, deadline: float) -> None:
        while True:
            self._check_alive()
            with contextlib.suppress(OSError), open(path, "rb") as log:
                log.seek(offset)
                if text.encode() in log.read():
                    return
            if time.monotonic() > deadline:
                raise IrcServerError(f"services never logged {text!r}")
            await asyncio.sleep(0.05)

    async def _wait_for_services(self, deadline: float) -> None:
        """As a client sees it: InspIRCd offers ``sasl`` only while services are linked.

        An unregistered connection can ask CAP LS at once, so this costs no wait for
        InspIRCd's once-a-second registration pass. Then JSON-RPC must answer too.
        """
        while True:
            self._check_alive()
            reader, writer = await asyncio.open_connection(self.host, self.port)
            try:
                writer.write(b"CAP LS 302\r\n")
                await writer.drain()
                line = await asyncio.wait_for(reader.readline(), 5)
            finally:
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()
            reply = Message.parse(line.decode("utf-8", "replace").rstrip("\r\n"))
            last = reply.params[-1] if reply.params else ""
            offered = {item.partition("=")[0] for item in last.split()}
            if reply.command == "CAP" and "sasl" in offered:
                break
            if time.monotonic() > deadline:
                raise IrcServerError(f"services never linked; CAP LS said {line!r}")
            await asyncio.sleep(0.05)
        while True:
            try:
                await self.services_command("NickServ", "HELP")
                return
            except (aiohttp.ClientError, OSError) as error:
                if time.monotonic() > deadline:
                    raise IrcServerError(f"services JSON-RPC does not answer: {error}") from error
                await asyncio.sleep(0.05)


# --- the fixture ------------------------------------------------------------------------


def require_daemons() -> None:
    """Skip the test when InspIRCd or Atheme is missing; fail it instead when CI=true."""
    missing = [name for name, path in find_binaries().items() if path is None]
    if missing:
        reason = f"IRC server binaries not found ({', '.join(missing)}); {INSTALL_HINT}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest_asyncio.fixture
async def irc_server(tmp_path: Path) -> AsyncIterator[IrcServer]:
    """A fresh InspIRCd + Atheme for one test, stopped afterwards.

    Skipped when the daemons are not installed, but a failure when CI=true.
    """
    require_daemons()
    server = IrcServer(state_dir=tmp_path / "irc")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
