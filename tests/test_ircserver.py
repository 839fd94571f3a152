"""The IRC test network (InspIRCd + Atheme) with real clients over raw sockets.

These check what the bot's IRC tests rely on: services accounts, SASL PLAIN, the account
shown to other clients (extended-join, account-tag, account-notify, WHOX), flood kills,
and a restart on the same port.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

import tests.ircserver as ircserver
from tests.ircserver import (
    FLOOD_BURST,
    IrcClient,
    IrcServer,
    IrcServerError,
    Message,
    irc_server,
)

__all__ = ["irc_server"]  # the fixture, imported so that pytest finds it

ACCOUNT_CAPS = ["account-tag", "extended-join", "account-notify", "message-tags", "server-time"]


def privmsg_from(nick: str, text: str) -> Callable[[Message], bool]:
    return lambda m: m.command == "PRIVMSG" and m.nick == nick and m.params[-1] == text


async def test_register_then_sasl_plain(irc_server: IrcServer) -> None:
    await irc_server.register_account("alice", "correct-horse")
    # The other way to register: a real client messaging NickServ (it ends up logged in).
    registering = asyncio.create_task(
        irc_server.register_account("bob", "battery-staple", via="nickserv")
    )
    alice = await IrcClient.connect(
        irc_server, "alice_bot", caps=ACCOUNT_CAPS, sasl=("alice", "correct-horse")
    )
    await registering
    try:
        for cap in ["sasl", *ACCOUNT_CAPS]:
            assert cap in alice.caps_available, alice.caps_available
        assert "PLAIN" in alice.caps_available["sasl"].split(",")
        assert set(ACCOUNT_CAPS) | {"sasl"} <= alice.caps_enabled
        assert any(m.command == "903" for m in alice.lines)
        assert alice.account == "alice"
        assert any(m.command == "005" and "WHOX" in m.params for m in alice.lines)

        with pytest.raises(IrcServerError, match="already registered"):
            await irc_server.register_account("alice", "another-password")
        with pytest.raises(IrcServerError, match="SASL PLAIN failed"):
            await IrcClient.connect(irc_server, "mallory", sasl=("alice", "wrong-password"))
    finally:
        await alice.close()
    bob = await IrcClient.connect(irc_server, "bob_bot", sasl=("bob", "battery-staple"))
    assert bob.account == "bob"
    await bob.close()


async def test_others_see_the_account(irc_server: IrcServer) -> None:
    await asyncio.gather(
        irc_server.register_account("alice", "correct-horse"),
        irc_server.register_account("carol", "carol-secret"),
    )
    watcher, alice, anon = await asyncio.gather(
        IrcClient.connect(irc_server, "watcher", caps=ACCOUNT_CAPS),
        IrcClient.connect(irc_server, "alice", caps=ACCOUNT_CAPS, sasl=("alice", "correct-horse")),
        IrcClient.connect(irc_server, "anon"),
    )
    try:
        await watcher.send("JOIN #taskbot")
        await watcher.expect("366")
        for client in (alice, anon):
            await client.send("JOIN #taskbot")
            await client.expect("366")

        # extended-join: JOIN <channel> <account or *> :<realname>
        joined = await watcher.expect(lambda m: m.command == "JOIN" and m.nick == "alice")
        assert joined.params[:2] == ["#taskbot", "alice"]
        joined = await watcher.expect(lambda m: m.command == "JOIN" and m.nick == "anon")
        assert joined.params[:2] == ["#taskbot", "*"]

        # account-tag on messages: present for an identified sender, absent otherwise.
        await alice.send("PRIVMSG #taskbot :!status from alice")
        said = await watcher.expect(privmsg_from("alice", "!status from alice"))
        assert said.tags.get("account") == "alice"
        assert "time" in said.tags
        await anon.send("PRIVMSG #taskbot :!status from anon")
        said = await watcher.expect(privmsg_from("anon", "!status from anon"))
        assert "account" not in said.tags
        await alice.send("PRIVMSG watcher :privately")
        said = await watcher.expect(privmsg_from("alice", "privately"))
        assert said.tags.get("account") == "alice"

        # WHOX: the account of every member ("0" when not logged in).
        await watcher.send("WHO #taskbot %tna,7")
        rows: dict[str, str] = {}
        while (
            reply := await watcher.expect(lambda m: m.command in ("354", "315"))
        ).command == "354":
            token, nick, account = reply.params[1:4]
            assert token == "7"
            rows[nick] = account
        assert rows == {"watcher": "0", "alice": "alice", "anon": "0"}

        # account-notify: logging in and out later is announced to channel members.
        await anon.send("PRIVMSG NickServ :IDENTIFY carol carol-secret")
        change = await watcher.expect(lambda m: m.command == "ACCOUNT" and m.nick == "anon")
        assert change.params == ["carol"]
        await anon.send("PRIVMSG #taskbot :now identified")
        said = await watcher.expect(privmsg_from("anon", "now identified"))
        assert said.tags.get("account") == "carol"
        await anon.send("PRIVMSG NickServ :LOGOUT")
        change = await watcher.expect(lambda m: m.command == "ACCOUNT" and m.nick == "anon")
        assert change.params == ["*"]
    finally:
        await asyncio.gather(*(c.close() for c in (watcher, alice, anon)))


async def test_flooding_gets_the_client_disconnected(irc_server: IrcServer) -> None:
    polite, flooder = await asyncio.gather(
        IrcClient.connect(irc_server, "polite"), IrcClient.connect(irc_server, "flooder")
    )
    try:
        # One command short of the threshold, all at once: still connected.
        await polite.send(*(f"PRIVMSG polite :line {n}" for n in range(FLOOD_BURST - 1)))
        await polite.send("PING :still-here")
        await polite.expect(lambda m: m.command == "PONG" and m.params[-1] == "still-here")

        # The threshold itself, written in one go from a raw socket: the server hangs up.
        flooder.writer.write(
            b"".join(b"PRIVMSG flooder :spam %d\r\n" % n for n in range(FLOOD_BURST))
        )
        await flooder.writer.drain()
        after_flood = await flooder.read_until_closed()
        assert after_flood, "the server hung up without a word"
        assert after_flood[-1].command == "ERROR"
        assert "Excess Flood" in after_flood[-1].params[-1]
    finally:
        await asyncio.gather(polite.close(), flooder.close())


async def test_restart_on_the_same_port_keeps_accounts(irc_server: IrcServer) -> None:
    await irc_server.register_account("alice", "correct-horse")
    port = irc_server.port
    before = await IrcClient.connect(irc_server, "alice", sasl=("alice", "correct-horse"))

    await irc_server.restart()

    assert irc_server.port == port
    dropped = await before.read_until_closed()
    assert not dropped or dropped[-1].command == "ERROR"
    await before.close()
    after = await IrcClient.connect(irc_server, "alice", sasl=("alice", "correct-horse"))
    assert after.account == "alice"
    await after.close()


def test_message_parsing() -> None:
    line = r"@account=alice;time=2024-01-01T00:00:00Z;x=a\sb\:c :alice!a@h PRIVMSG #c :hi there"
    message = Message.parse(line)
    assert message.tags == {"account": "alice", "time": "2024-01-01T00:00:00Z", "x": "a b;c"}
    assert (message.nick, message.command, message.params) == (
        "alice",
        "PRIVMSG",
        ["#c", "hi there"],
    )
    assert Message.parse("PING :abc").params == ["abc"]


@pytest.mark.parametrize("ci", ["true", ""])
def test_missing_daemons_skip_locally_and_fail_on_ci(
    ci: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ircserver, "find_binaries", lambda: {"inspircd": None})
    monkeypatch.setenv("CI", ci)
    expected = pytest.fail.Exception if ci == "true" else pytest.skip.Exception
    with pytest.raises(expected, match="scripts/install-irc-server"):
        ircserver.require_daemons()
