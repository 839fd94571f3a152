"""Sheriffs on a real IRC network (InspIRCd + Atheme on loopback) schedule and follow jobs
through the bot on the local Taskcluster; a second real client (jaraco's irc) plays them."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from irc.client_aio import AioReactor

from bot.adapters.api import CollectingReplier
from bot.adapters.irc.accounts import AccountLists
from bot.adapters.irc.adapter import IrcAdapter, IrcReplier
from bot.adapters.irc.outbox import TokenBucket
from bot.adapters.irc.settings import IrcSettings
from bot.core.settings import ProjectSettings
from bot.embedded import Embedded, embedded
from bot.store import SqliteStore
from tests.conftest import keep_secret
from tests.ircserver import FLOOD_BURST, FLOOD_COMMANDS_PER_SECOND, IrcServer, irc_server

__all__ = ["irc_server"]
CHANNEL = "#sheriffs"
BOT_PASSWORD = keep_secret("bot-secret-1")
SHERIFF_PASSWORD = keep_secret("sheriff-secret-1")


class Person:
    """Someone on IRC, on jaraco's asyncio client: what they receive, and saying things."""

    def __init__(self, nick: str) -> None:
        self.nick = nick
        self.reactor = AioReactor(loop=asyncio.get_running_loop())
        self.connection = self.reactor.server()
        self.raw: list[str] = []  # every line as received, for byte counts
        self.said: list[tuple[str, str, str]] = []  # (nick, target, text)
        self.notices: list[str] = []
        self.changed = asyncio.Event()
        self.connection.add_global_handler("all_raw_messages", self._raw)
        for kind in ("pubmsg", "privmsg"):
            self.connection.add_global_handler(kind, self._message)
        self.connection.add_global_handler("privnotice", self._notice)

    def _raw(self, connection: Any, event: Any) -> None:
        self.raw.append(event.arguments[0])
        self.changed.set()

    def _message(self, connection: Any, event: Any) -> None:
        self.said.append((event.source.nick, event.target, event.arguments[0]))

    def _notice(self, connection: Any, event: Any) -> None:
        self.notices.append(event.arguments[0])

    async def wait_for(self, found: Callable[[], Any], timeout: float = 20.0) -> Any:
        async with asyncio.timeout(timeout):
            while not (result := found()):
                self.changed.clear()
                await self.changed.wait()
        return result

    async def connect(self, server: IrcServer) -> None:
        await self.connection.connect(server.host, server.port, self.nick)
        await self.wait_for(lambda: any(" 001 " in line for line in self.raw))

    async def identify(self, password: str) -> None:
        self.connection.privmsg("NickServ", f"IDENTIFY {self.nick} {password}")
        await self.wait_for(lambda: any("identified" in n.lower() for n in self.notices))

    async def join(self, channel: str) -> None:
        self.connection.join(channel)
        await self.wait_for(
            lambda: any(re.search(rf" 366 \S+ {re.escape(channel)} ", x) for x in self.raw)
        )

    def say(self, text: str, target: str = CHANNEL) -> None:
        self.connection.privmsg(target, text)

    def replies(self, contains: str = "") -> list[str]:
        """What the bot said to this person (``nick: ...`` lines, ``nick: `` removed)."""
        lead = f"{self.nick}: "
        return [
            text.removeprefix(lead)
            for who, _, text in self.said
            if who.startswith("taskbot") and (text.startswith(lead) or _ == self.nick)
            if contains in text
        ]

    def close(self) -> None:
        if self.connection.is_connected():
            self.connection.disconnect("bye")


@dataclass
class Network:
    server: IrcServer
    env: Embedded
    adapter: IrcAdapter
    people: list[Person]

    async def person(self, nick: str, *, password: str | None = None) -> Person:
        someone = Person(nick)
        self.people.append(someone)
        await someone.connect(self.server)
        if password:
            await someone.identify(password)
        await someone.join(CHANNEL)
        return someone


@pytest.fixture
def worker_seconds() -> float:
    """How long the simulated worker runs each task; a test may parametrize it."""
    return 0.3


@pytest.fixture
def server_commands_per_second() -> int:
    """The network's flood limit (lines a second); a test may parametrize it."""
    return FLOOD_COMMANDS_PER_SECOND


@pytest_asyncio.fixture
async def network(
    irc_server: IrcServer, tmp_path: Path, worker_seconds: float, server_commands_per_second: int
) -> AsyncIterator[Network]:
    if server_commands_per_second != irc_server.commands_per_second:
        irc_server.commands_per_second = server_commands_per_second
        await irc_server.restart()
    await irc_server.register_account("taskbot", BOT_PASSWORD)
    await irc_server.register_account("sheriff", SHERIFF_PASSWORD)
    store = SqliteStore(tmp_path / "store.sqlite3")
    async with embedded(store=store, tasks=1500, worker_seconds=worker_seconds) as env:
        env.bot.settings = replace(env.bot.settings, poll_interval=0.1)
        settings = IrcSettings(
            server=irc_server.host,
            port=irc_server.port,
            nick="taskbot",
            channels=(CHANNEL,),
            sasl_username="taskbot",
            sasl_password=BOT_PASSWORD,
            accounts=AccountLists.of(["sheriff", "aryx"], ["*"]),
            reconnect_base=0.2,  # burst and rate: the defaults (4 lines, then 1 a second)
        )
        adapter = IrcAdapter(env.bot, settings)
        await adapter.start()
        net = Network(irc_server, env, adapter, [])
        try:
            async with asyncio.timeout(20):
                while adapter.mask is None:  # the bot's own JOIN came back: it is in
                    await asyncio.sleep(0.05)
            yield net
        finally:
            for someone in net.people:
                someone.close()
            await adapter.stop()
    await store.close()


def unscheduled_test(env: Embedded, skip: int = 0) -> str:
    ran = env.push.push.label_to_taskid
    return [x for x in env.push.push.graph if x.startswith("test-") and x not in ran][skip]


async def test_a_sheriff_schedules_and_hears_every_change(network: Network) -> None:
    assert "account-tag" in network.adapter.caps
    assert "sasl" in network.adapter.caps
    assert network.adapter.account == "taskbot"  # logged in with SASL PLAIN
    # The channel names the project: the bot-wide default is some other one.
    env = network.env
    project = env.push.project
    env.bot.settings = replace(
        env.bot.settings,
        default_project="elsewhere",
        projects={project: ProjectSettings(project, irc_channels=(CHANNEL,))},
    )
    sheriff = await network.person("sheriff", password=SHERIFF_PASSWORD)
    label = unscheduled_test(network.env)
    sheriff.say(f"taskbot: schedule {label}")
    done = await sheriff.wait_for(lambda: sheriff.replies("finished: 1 ok"), timeout=30)
    request_id = re.match(r"\[(r[0-9a-f]+)\]", done[0])
    assert request_id, done
    said = sheriff.replies()
    assert any(f"[{request_id[1]}]" in line and "1 new task" in line for line in said), said
    assert f"[{request_id[1]}] 1/1 done: 1 ok" in said
    assert len(network.env.tc.queue.tasks) > 0
    (record,) = await network.env.store.recent_requests()
    assert (record.source, record.actor, record.place) == ("irc", "sheriff", CHANNEL)
    assert record.project == project
    sheriff.say("status", target="taskbot")  # a private message: every line is a command
    (private,) = await sheriff.wait_for(
        lambda: [text for who, to, text in sheriff.said if to == "sheriff" and "[r" in text]
    )
    assert private.startswith(f"[{request_id[1]}] schedule {label}")  # no "sheriff: " lead


async def test_notify_sends_a_private_message_and_quiet_says_no_progress(network: Network) -> None:
    sheriff = await network.person("sheriff", password=SHERIFF_PASSWORD)
    label = unscheduled_test(network.env)
    sheriff.say(f"taskbot: schedule {label} --notify --quiet")
    (told,) = await sheriff.wait_for(
        lambda: [text for who, to, text in sheriff.said if to == "sheriff" and "finished" in text],
        timeout=30,
    )
    assert re.match(
        rf"\[r[0-9a-f]+\] schedule {re.escape(label)} --notify --quiet: finished: 1 ok$", told
    )
    await sheriff.wait_for(  # how it ended, in the channel too
        lambda: [text for who, to, text in sheriff.said if to == CHANNEL and "finished" in text]
    )
    in_channel = [text for who, to, text in sheriff.said if to == CHANNEL]
    assert any("1 new task" in text for text in in_channel), in_channel  # what was scheduled
    assert not [text for text in in_channel if "1/1 done" in text], in_channel


async def test_an_unidentified_nick_is_denied_and_nothing_is_scheduled(network: Network) -> None:
    visitor = await network.person("visitor")
    before = len(network.env.tc.queue.tasks)
    visitor.say("!retrigger failed")
    (denial,) = await visitor.wait_for(lambda: visitor.replies("You may not"))
    assert denial == (
        "You may not `retrigger` here: visitor is not logged in to a services account, and "
        "`retrigger` needs an account with write access: identify to NickServ (or log in "
        "with SASL) and ask again."
    )
    visitor.say("taskbot: status")  # reading is open to everyone
    await visitor.wait_for(lambda: visitor.replies("No requests yet"))
    assert len(network.env.tc.queue.tasks) == before


async def test_a_nick_impersonating_an_allowed_account_is_denied(network: Network) -> None:
    impostor = await network.person("aryx")  # aryx is on the write list; this is not aryx
    before = len(network.env.tc.queue.tasks)
    impostor.say(f"taskbot, schedule {unscheduled_test(network.env)}")
    (denial,) = await impostor.wait_for(lambda: impostor.replies("You may not"))
    assert "the nick aryx is not logged in, not the account aryx" in denial
    assert "access goes by account, not by nick" in denial
    assert len(network.env.tc.queue.tasks) == before


@pytest.mark.parametrize("server_commands_per_second", [4])
async def test_a_hundred_line_reply_is_paced_below_the_flood_limit(network: Network) -> None:
    """100 lines of multi-byte text and long links, on a network that quits a client
    sending more than 4 lines a second after a burst of 10: all arrive, each relayed line
    within 512 bytes, and the server never drops the bot for flooding."""
    sheriff = await network.person("sheriff", password=SHERIFF_PASSWORD)
    adapter = network.adapter
    adapter.settings = replace(adapter.settings, page_lines=1000)
    adapter.outbox.bucket = TokenBucket(burst=FLOOD_BURST // 2, rate=3.0)
    link = "https://firefox-ci-tc.services.mozilla.com/tasks/groups/" + "Ab9_" * 110
    lines = [
        f"{n:03d} ✓ mochitest-browser-chrome-{n} — Größe 🦊" + (f" {link}" if n % 10 == 9 else "")
        for n in range(100)
    ]
    await IrcReplier(adapter, CHANNEL, "sheriff").post("\n".join(lines))
    # everything the bot sent went to this channel: wait until all of it has arrived
    received = await sheriff.wait_for(
        lambda: (
            adapter.outbox.pending() == 0
            and len(heard := sheriff.replies()) == adapter.outbox.sent
            and heard
        ),
        timeout=90,
    )
    assert len(received) == 120  # 100 lines, 10 of them with a link continued on 2 more
    relayed = [raw for raw in sheriff.raw if " PRIVMSG #sheriffs :sheriff: " in raw]
    assert all(len(raw.encode()) + 2 <= 512 for raw in relayed)
    numbers = [text[:3] for text in received if text[:3].isdigit()]
    assert numbers == [f"{n:03d}" for n in range(100)]  # every line, in order
    links = [text for text in received if text.startswith(link[:40])]
    assert len(links) == 10  # each long link starts its own line and goes on in the next
    assert any(text.endswith("Ab9_") for text in received if not text[:3].isdigit())
    assert adapter.connections == 1  # never disconnected (no Excess Flood)
    assert adapter.outbox.sent >= len(received)


async def test_a_long_list_is_paged_with_more(network: Network) -> None:
    sheriff = await network.person("sheriff", password=SHERIFF_PASSWORD)
    sheriff.say("taskbot: help")
    first = await sheriff.wait_for(lambda: sheriff.replies("more line"))
    count = int(re.search(r"… (\d+) more line", first[0])[1])  # type: ignore[index]
    before = len(sheriff.replies())
    assert before == network.adapter.settings.page_lines
    sheriff.say("taskbot: more")
    await sheriff.wait_for(lambda: len(sheriff.replies()) >= before + min(count, 5))
    # Page after page, however long the help has grown, until nothing is held.
    for _ in range(count // (network.adapter.settings.page_lines - 1) + 2):
        if sheriff.replies("Nothing more to show."):
            break
        heard = len(sheriff.replies())
        sheriff.say("!more")
        await sheriff.wait_for(lambda heard=heard: len(sheriff.replies()) > heard)
    await sheriff.wait_for(lambda: sheriff.replies("Nothing more to show."))


@pytest.mark.parametrize("worker_seconds", [8.0])
async def test_after_a_server_restart_the_bot_rejoins_and_keeps_reporting(
    network: Network,
) -> None:
    sheriff = await network.person("sheriff", password=SHERIFF_PASSWORD)
    sheriff.say(f"taskbot: schedule {unscheduled_test(network.env)}")
    (accepted,) = await sheriff.wait_for(lambda: sheriff.replies("1 new task"))
    request_id = re.match(r"\[(r[0-9a-f]+)\]", accepted)
    assert request_id
    await network.server.restart()  # every connection drops; the task runs on meanwhile
    back = await network.person("sheriff", password=SHERIFF_PASSWORD)
    async with asyncio.timeout(30):
        while network.adapter.connections < 2 or not network.adapter.ready.is_set():
            await asyncio.sleep(0.05)
    done = await back.wait_for(lambda: back.replies(f"[{request_id[1]}] finished"), timeout=30)
    assert done == [f"[{request_id[1]}] finished: 1 ok"]
    back.say("taskbot: status")  # and it still answers
    (status,) = await back.wait_for(lambda: back.replies(f"[{request_id[1]}] schedule "))
    assert status.endswith(": finished (1 completed)")


async def fresh_bot(network: Network, *, caps: tuple[str, ...] | None = None) -> IrcAdapter:
    """The bot leaves and connects again as a new adapter (optionally asking for fewer
    capabilities); returns once it is in the channel."""
    await network.adapter.stop()
    adapter = IrcAdapter(network.env.bot, network.adapter.settings)
    if caps is not None:
        adapter.wanted_caps = caps
    network.adapter = adapter
    await adapter.start()
    async with asyncio.timeout(20):
        while adapter.mask is None:
            await asyncio.sleep(0.05)
    return adapter


async def test_without_account_tags_accounts_come_from_whox_joins_and_account_notify(
    network: Network,
) -> None:
    sheriff = await network.person("sheriff", password=SHERIFF_PASSWORD)  # before the bot
    adapter = await fresh_bot(network, caps=("extended-join", "account-notify"))
    assert "account-tag" not in adapter.caps
    assert adapter.whox
    label = unscheduled_test(network.env)
    sheriff.say(f"taskbot: schedule {label} --dry-run")  # known from the WHOX reply
    await sheriff.wait_for(lambda: sheriff.replies("1 new task"))
    impostor = await network.person("aryx")  # joins after the bot: extended-join says "*"
    impostor.say(f"taskbot: schedule {label} --dry-run")
    (denial,) = await impostor.wait_for(lambda: impostor.replies("You may not"))
    assert "the nick aryx is not logged in, not the account aryx" in denial
    newcomer = await network.person("newcomer")
    newcomer.say(f"!schedule {label} --dry-run")
    await newcomer.wait_for(lambda: newcomer.replies("is not logged in to a services account"))
    newcomer.connection.privmsg("NickServ", f"IDENTIFY sheriff {SHERIFF_PASSWORD}")
    await newcomer.wait_for(lambda: any("identified" in n.lower() for n in newcomer.notices))
    async with asyncio.timeout(10):  # account-notify tells the bot
        while adapter.accounts.account("newcomer") != "sheriff":
            await asyncio.sleep(0.05)
    newcomer.say(f"!schedule {label} --dry-run")
    await newcomer.wait_for(lambda: newcomer.replies("1 new task"))


async def test_a_taken_nick_gets_an_underscore_and_still_answers(network: Network) -> None:
    squatter = Person("taskbot")
    network.people.append(squatter)
    await network.adapter.stop()
    await squatter.connect(network.server)
    adapter = await fresh_bot(network)
    assert adapter.mask is not None
    assert adapter.mask.startswith("taskbot_!")
    sheriff = await network.person("sheriff", password=SHERIFF_PASSWORD)
    sheriff.say("taskbot_: status")  # addressed by the nick it has now
    await sheriff.wait_for(lambda: sheriff.replies("No requests yet."))


async def test_over_tls_the_server_certificate_is_checked(network: Network) -> None:
    server = network.server
    tls = replace(network.adapter.settings, tls=True, port=server.tls_port)
    untrusting = IrcAdapter(network.env.bot, tls)  # the system's CAs do not know this one
    await untrusting.start()
    await asyncio.sleep(1.5)
    assert untrusting.connections == 0
    assert not untrusting.ready.is_set()
    await untrusting.stop()
    network.adapter.settings = replace(tls, tls_ca_file=str(server.ca_file))
    adapter = await fresh_bot(network)
    assert adapter.connections == 1
    assert "sasl" in adapter.caps
    sheriff = await network.person("sheriff", password=SHERIFF_PASSWORD)
    sheriff.say("taskbot: status")
    await sheriff.wait_for(lambda: sheriff.replies("No requests yet."))


@pytest.mark.parametrize("worker_seconds", [2.0])
async def test_a_request_taken_up_after_a_restart_reports_in_its_channel(
    network: Network,
) -> None:
    sheriff = await network.person("sheriff", password=SHERIFF_PASSWORD)
    sheriff.say(f"taskbot: schedule {unscheduled_test(network.env)}")
    (accepted,) = await sheriff.wait_for(lambda: sheriff.replies("1 new task"))
    found = re.match(r"\[(r[0-9a-f]+)\]", accepted)
    assert found
    request_id = found[1]
    # The bot stops following it (as a process that died would) and comes back.
    bot = network.env.bot
    for task in list(bot.background):
        task.cancel()
    assert await bot.idle(5)
    (record,) = await network.env.store.recent_requests()
    assert record.state == "submitted"
    await fresh_bot(network)
    elsewhere = CollectingReplier()
    assert await bot.resume(elsewhere) == [request_id]
    done = await sheriff.wait_for(lambda: sheriff.replies(f"[{request_id}] finished"), timeout=30)
    assert done == [f"[{request_id}] finished: 1 ok"]
    assert elsewhere.replies == []  # in the channel, not in the log


async def test_colours_broken_utf8_and_a_typo_are_read_as_typed(network: Network) -> None:
    """Formatting codes are not part of a command and are never echoed; a line cut inside a
    character shows a replacement character, not Latin-1 mojibake; a parse error's caret
    stands under the typo."""
    someone = await network.person("someone")
    someone.say("\x0304\x02taskbot: jobs xpcshell\x0f")
    (listing,) = await someone.wait_for(lambda: someone.replies(" jobs on "))
    assert re.match(r"\d+ jobs? on ", listing), listing
    someone.connection.transport.write(
        f"PRIVMSG {CHANNEL} :taskbot: jobs caf\xc3\r\n".encode("latin-1")
    )
    (answer,) = await someone.wait_for(lambda: someone.replies("caf"))
    assert "caf\ufffd" in answer
    assert "Ã" not in answer
    someone.say("taskbot: shedule xpcshell")
    await someone.wait_for(lambda: someone.replies("^^^^^^^"))
    lines = someone.replies()
    echoed = next(line for line in lines if line.strip().startswith("taskbot: shedule"))
    caret = next(line for line in lines if line.strip().startswith("^^^^^^^"))
    assert caret.index("^") == echoed.index("shedule"), (echoed, caret)
    assert not any(c in "".join(lines) for c in "\x02\x03\x0f")


async def test_a_line_cut_at_the_length_limit_is_never_run(network: Network) -> None:
    """An IRC client splits a long input line in two, and the server cuts a raw line past
    512 bytes: the first part (without its `for linux64 --dry-run`) is not run as it came."""
    sheriff = await network.person("sheriff", password=SHERIFF_PASSWORD)
    env = network.env
    before = len(env.tc.queue.tasks)
    ran = env.push.push.label_to_taskid
    labels = [x for x in env.push.push.graph if x.startswith("test-") and x not in ran]
    head = "taskbot: schedule " + " ".join(labels)
    line = f"PRIVMSG {CHANNEL} :{head}"[:600]  # the server keeps 510 bytes of it
    sheriff.connection.transport.write(line.encode() + b"\r\n")
    sheriff.say("for linux64 --dry-run")  # the rest, as the client sends it
    (told,) = await sheriff.wait_for(lambda: sheriff.replies("length limit"))
    assert told == (
        "That line reached IRC's length limit (500 bytes), so its end may have been cut off: "
        "I did not run it. Shorten it, or split it into several commands."
    )
    await asyncio.sleep(1.5)
    assert len(sheriff.replies()) == 1  # the rest was not taken for a command either
    assert len(env.tc.queue.tasks) == before
    sheriff.say("taskbot: status")  # and the next line is read as usual
    await sheriff.wait_for(lambda: sheriff.replies("No requests yet."))


async def test_services_that_link_after_the_bot_log_it_in_when_they_come(
    network: Network,
) -> None:
    """The server restarts and the bot is back before services: it is in without its
    account, says so to whoever asks for a change, and logs in when services link."""
    settings = replace(network.adapter.settings, sasl_required=True)
    network.adapter.settings = settings
    server = network.server
    await server.stop()
    await server.start(services=False)
    adapter = network.adapter
    async with asyncio.timeout(30):
        while not adapter.ready.is_set() or adapter.connections < 2:
            await asyncio.sleep(0.05)
    assert adapter.account is None
    someone = await network.person("someone")
    someone.say(f"taskbot: schedule {unscheduled_test(network.env)} --dry-run")
    (refused,) = await someone.wait_for(lambda: someone.replies("You may not"))
    assert "I am not logged in to my services account (taskbot) yet" in refused
    await server.start_services()
    async with asyncio.timeout(30):
        while adapter.account is None:
            await asyncio.sleep(0.05)
    assert adapter.account == "taskbot"
    assert adapter.connections == 2  # logged in on the same connection, not at a reconnect


@pytest.mark.parametrize("services_late", [False, True])
async def test_a_restart_with_replies_waiting_draws_no_excess_flood(
    network: Network, services_late: bool
) -> None:
    """Back after a server restart with replies queued and three channels to join: the
    JOINs, WHOs (and, when services link after the bot, the SASL login) count against the
    same allowance as the replies, so the server's flood limit (10 commands at once) is
    never reached, and every reply arrives."""
    channels = (CHANNEL, "#two", "#three")
    network.adapter.settings = replace(network.adapter.settings, channels=channels)
    adapter = await fresh_bot(network)
    assert adapter.whox
    server = network.server
    await server.stop()
    for n in range(12):
        adapter.say(CHANNEL, "sheriff", f"queued line {n:02d}")
    if services_late:
        await server.start(services=False)
        async with asyncio.timeout(30):
            while not adapter.ready.is_set():
                await asyncio.sleep(0.05)
        await server.start_services()
    else:
        await server.start()
    sheriff = await network.person("sheriff", password=SHERIFF_PASSWORD)
    got = await sheriff.wait_for(
        lambda: len(sheriff.replies("queued line")) == 12 and sheriff.replies("queued line"),
        timeout=60,
    )
    assert got == [f"queued line {n:02d}" for n in range(12)]
    assert "Excess Flood" not in server.logs()
    assert adapter.connections == 2  # one reconnect: the restart's, none for a flood


async def test_one_person_flooding_never_holds_up_anothers_first_reply(network: Network) -> None:
    flooder = await network.person("flooder")
    other = await network.person("other")
    for word in ("xpcshell", "mochitest", "reftest", "crashtest", "marionette", "gtest"):
        flooder.say(f"taskbot: jobs {word}")  # five lines each: thirty at one a second
    await flooder.wait_for(lambda: flooder.replies(" jobs on "))
    loop = asyncio.get_running_loop()
    asked = loop.time()
    other.say("taskbot: status")
    await other.wait_for(lambda: other.replies("No requests yet."), timeout=30)
    waited = loop.time() - asked
    assert waited < 5.0, waited
    assert len(flooder.replies()) < 25  # the flood was still being answered


async def test_a_sheriff_finds_the_culprit_in_a_line_per_round(network: Network) -> None:
    """`bisect` on IRC: its header, one line per round (never a flood of task lines), then
    the answer, paced like any reply."""
    from bot.localtc.chain import Breakage, seed_chain

    job = "test-linux1804-64-shippable-qr/opt-xpcshell-spi-nw-1"
    env = network.env
    chain = seed_chain(
        env.tc, 16, tasks=300, project="mozilla-central", breakage=Breakage((job,), break_at=6)
    )
    assert env.worker is not None
    env.worker.decide = chain.outcome
    sheriff = await network.person("sheriff", password=SHERIFF_PASSWORD)
    tip = chain.pushes[-1].revision[:12]
    sheriff.say(f"taskbot: bisect {job} on mozilla-central@{tip}")
    try:
        answer = await sheriff.wait_for(lambda: sheriff.replies("found:"), timeout=120)
    except TimeoutError:
        pytest.fail(f"no answer: {sheriff.said}")
    assert f"found: #6 {chain.pushes[5].revision[:12]}" in answer[0], answer
    try:
        await sheriff.wait_for(
            lambda: [text for who, _, text in sheriff.said if " rounds, " in text], timeout=30
        )
    except TimeoutError:
        pytest.fail("\n".join(text for _, _, text in sheriff.said))
    said = [text for who, _, text in sheriff.said if who.startswith("taskbot")]
    rounds = [line for line in said if re.search(r"\] round \d+:", line)]
    assert 1 <= len(rounds) <= 6, said
    assert not [line for line in said if " done: " in line]  # no round's own progress
    assert not [line for line in said if "`taskbot: more`" in line]  # the answer fits a page
    assert len(said) <= 1 + len(rounds) + 6, said
