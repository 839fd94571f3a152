"""The IRC adapter's parts without a server: pacing, accounts and permissions, settings."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import aiohttp
import pytest

from bot.adapters.irc.accounts import AccountLists, Accounts, IrcOrigin
from bot.adapters.irc.adapter import IrcAdapter
from bot.adapters.irc.lines import plain
from bot.adapters.irc.outbox import Line, Outbox, TokenBucket
from bot.adapters.irc.settings import IrcSettings, IrcSettingsError
from bot.core.request import Request
from bot.core.settings import ProjectSettings, Settings
from bot.service import Bot
from bot.store import SqliteStore
from bot.tc.clients import TaskclusterSettings, make_clients
from grammar import Revision


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_bucket_allows_a_burst_then_a_steady_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(burst=4, rate=1.0, clock=clock)
    for _ in range(4):
        assert bucket.wait_time() == 0
        bucket.take()
    assert bucket.wait_time() == pytest.approx(1.0)
    clock.now = 0.5
    assert bucket.wait_time() == pytest.approx(0.5)
    clock.now = 100.0  # a long pause refills only up to the burst
    assert bucket.wait_time() == 0
    assert bucket.tokens == 4


async def sent_by(outbox: Outbox) -> list[str]:
    """The texts the outbox sends, in order, until nothing is pending (a few seconds)."""
    sent: list[str] = []
    connected = asyncio.Event()
    connected.set()

    def send(line: Line) -> bool:
        sent.append(line.text)
        return True

    runner = asyncio.create_task(outbox.run(send, connected))
    for _ in range(300):
        if outbox.pending() == 0:
            break
        await asyncio.sleep(0.01)
    runner.cancel()
    return sent


async def test_targets_take_turns_and_progress_lines_coalesce() -> None:
    outbox = Outbox(TokenBucket(burst=100, rate=100.0))
    for n in range(3):
        outbox.put(Line("#a", f"a{n}"))
    outbox.put(Line("#b", "b0"))
    outbox.put(Line("#b", "[r7f3a] 1/9 done: 1 ok", key="progress:r7f3a"))
    outbox.put(Line("#b", "[r7f3a] 2/9 done: 2 ok", key="progress:r7f3a"))
    sent = await sent_by(outbox)
    assert sent == ["a0", "b0", "a1", "[r7f3a] 2/9 done: 2 ok", "a2"]


def test_lines_sent_outside_the_queue_count_against_the_bucket() -> None:
    """JOIN and WHO at (re)join count like messages: queued replies wait behind them."""
    clock = Clock()
    bucket = TokenBucket(burst=4, rate=1.0, clock=clock)
    bucket.empty()  # registration used the allowance
    bucket.spend(3)  # three JOINs
    assert bucket.wait_time() == pytest.approx(4.0)  # the first reply goes after them
    clock.now = 4.0
    assert bucket.wait_time() == 0


async def test_one_persons_long_answer_never_holds_up_anothers_first_line() -> None:
    outbox = Outbox(TokenBucket(burst=100, rate=100.0))
    for n in range(50):
        outbox.put(Line("#sheriffs", f"flood {n}", to="flooder"))
    outbox.put(Line("#sheriffs", "hello", to="other"))
    sent = await sent_by(outbox)
    assert sent.index("hello") <= 1
    assert len(sent) == 51


def test_formatting_codes_are_not_words() -> None:
    assert plain("\x0304,01\x02taskbot:\x0f jobs\x1d x\x03") == "taskbot: jobs x"
    assert plain("\x04ff0000red\x0f") == "red"


async def test_nothing_is_lost_while_disconnected() -> None:
    outbox = Outbox(TokenBucket(burst=10, rate=100.0))
    connected = asyncio.Event()
    up = False
    sent: list[str] = []

    def send(line: Line) -> bool:
        if not up:
            return False
        sent.append(line.text)
        return True

    outbox.put(Line("#a", "queued while away"))
    runner = asyncio.create_task(outbox.run(send, connected))
    await asyncio.sleep(0.05)
    assert sent == []  # not connected: waits
    connected.set()  # "connected" but the socket is gone: the line stays queued
    await asyncio.sleep(0.05)
    assert sent == []
    assert outbox.pending() == 1
    up = True
    for _ in range(200):
        if sent:
            break
        await asyncio.sleep(0.01)
    runner.cancel()
    assert sent == ["queued while away"]


def test_accounts_follow_joins_renames_and_logouts() -> None:
    accounts = Accounts()
    accounts.seen("Alice", "alice")
    assert accounts.account("ALICE") == "alice"  # nicks compare case-insensitively
    accounts.renamed("alice", "alice_away")
    assert accounts.account("alice_away") == "alice"
    assert not accounts.known("alice")
    accounts.seen("alice_away", "*")  # account-notify: logged out
    assert accounts.known("alice_away")
    assert accounts.account("alice_away") is None
    accounts.gone("alice_away")
    assert not accounts.known("alice_away")


def irc_request(nick: str, account: str | None, *, known: bool = True) -> Request:
    return Request(
        source="irc",
        actor=account or nick,
        place="#sheriffs",
        text="taskbot: retrigger failed",
        origin=IrcOrigin(nick, account, known),
    )


Check = Callable[..., Awaitable[str | None]]


@contextlib.asynccontextmanager
async def account_check(
    lists: AccountLists, levels: dict[str, dict[str, str]] | None = None
) -> AsyncIterator[Check]:
    """The bot's own permission check, with an IRC adapter of these account lists (it never
    connects) and projects of these levels: (request, verb) -> None or why not."""
    projects = {
        name: ProjectSettings(name, permissions=own) for name, own in (levels or {}).items()
    }
    async with aiohttp.ClientSession() as session:
        clients = make_clients(TaskclusterSettings("http://127.0.0.1:9", None, None), session)
        bot = Bot(Settings(projects=projects), SqliteStore(":memory:"), clients)
        adapter = IrcAdapter(bot, IrcSettings("irc.invalid", accounts=lists))

        async def check(request: Request, verb: str, target: str | None = None) -> str | None:
            on = Revision(None, target) if target else None
            return await bot.authorize(adapter, request, bot.commands[verb], on)

        yield check


async def test_the_policy_goes_by_account_and_says_why() -> None:
    async with account_check(AccountLists.of(["aryx", "Sheriff-Bot"], ["*"])) as check:
        await _goes_by_account(check)


async def _goes_by_account(check: Check) -> None:
    assert await check(irc_request("aryx", "aryx"), "retrigger") is None
    assert await check(irc_request("someone_else", "aryx"), "retrigger") is None  # any nick
    assert await check(irc_request("visitor", None), "status") is None  # reading is open
    unidentified = await check(irc_request("visitor", None), "retrigger")
    assert unidentified == (
        "visitor is not logged in to a services account, and `retrigger` needs an account "
        "with write access: identify to NickServ (or log in with SASL) and ask again."
    )
    impersonator = await check(irc_request("Aryx", None), "retrigger")
    assert impersonator is not None
    assert impersonator.startswith("the nick Aryx is not logged in, not the account Aryx")
    other_account = await check(irc_request("aryx", "mallory"), "retrigger")
    assert other_account is not None
    assert "the nick aryx is logged in as mallory, not the account aryx" in other_account
    unlisted = await check(irc_request("mallory", "mallory"), "retrigger")
    assert unlisted == (
        "the account mallory has read access here; `retrigger` needs write "
        "(the operators list accounts in IRC_WRITE_ACCOUNTS)."
    )
    blind = await check(irc_request("aryx", None, known=False), "retrigger")
    assert blind is not None
    assert "does not tell me who is logged in" in blind


async def test_project_levels_and_a_closed_read_list() -> None:
    lists = AccountLists.of(["aryx"], ["reader"])
    async with account_check(lists, {"autoland": {"status": "write"}}) as check:
        await _project_levels(check)


async def _project_levels(check: Check) -> None:
    request = irc_request("reader", "reader")
    assert await check(request, "jobs") is None
    denied = await check(request, "cancel")
    assert denied is not None
    assert "needs write" in denied

    on_autoland = replace(request, project="autoland")
    denied = await check(on_autoland, "status")
    assert denied is not None
    assert "`status` needs write" in denied
    stranger = await check(irc_request("stranger", None), "jobs")
    assert stranger is not None
    assert "needs an account with read access" in stranger


def test_settings_from_the_environment() -> None:
    assert IrcSettings.from_env({}, nick="taskbot") is None
    settings = IrcSettings.from_env(
        {
            "IRC_SERVER": "irc.libera.chat",
            "IRC_TLS": "true",
            "IRC_CHANNELS": "#sheriffs, #firefox-ci",
            "IRC_SASL_USERNAME": "taskbot",
            "IRC_SASL_PASSWORD": "hunter2",
            "IRC_WRITE_ACCOUNTS": "aryx,Sheriff",
        },
        nick="taskbot",
    )
    assert settings is not None
    assert (settings.port, settings.tls, settings.channels) == (
        6697,
        True,
        ("#sheriffs", "#firefox-ci"),
    )
    assert settings.accounts.level("sheriff") == "write"
    assert settings.accounts.level(None) == "read"
    assert "hunter2" not in repr(settings)
    for env, words in [
        ({"IRC_CHANNELS": "sheriffs"}, "not a channel"),
        ({"IRC_SASL_USERNAME": "x"}, "both IRC_SASL_USERNAME and IRC_SASL_PASSWORD"),
        ({"IRC_TLS": "maybe"}, "IRC_TLS must be true or false"),
        ({"IRC_LINES_PER_SECOND": "0"}, "at least 0.1"),
    ]:
        with pytest.raises(IrcSettingsError, match=words):
            IrcSettings.from_env({"IRC_SERVER": "irc.example", **env}, nick="taskbot")
