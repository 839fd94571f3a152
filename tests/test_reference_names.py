"""Real labels, Treeherder symbols, platforms and revisions from ../shared all parse as meant."""

from __future__ import annotations

import re
from typing import Any

import pytest

from grammar import Label, Name, PlatformFilter, Revision, Schedule, Symbol, parse_command
from tests.conftest import load_reference_json, reference_path


def gecko_tasks() -> list[dict[str, Any]]:
    tasks = load_reference_json("taskgraph", "gecko-autoland-task-definitions-2019.json")
    return [t for t in tasks.values() if not t["metadata"]["name"].startswith("Action:")]


def schedule(text: str) -> Schedule:
    command = parse_command(text)
    assert isinstance(command, Schedule)
    return command


def test_every_label_of_a_real_full_task_graph_is_one_selector() -> None:
    graph = load_reference_json("taskgraph", "translations-full-task-graph.json")
    assert len(graph) == 551
    for label in graph:
        (selector,) = schedule(f"schedule {label}").selectors
        assert selector.text == label
        assert isinstance(selector, Label if "/" in label else Name)


def test_every_label_of_real_gecko_tasks_is_a_label() -> None:
    labels = [t["metadata"]["name"] for t in gecko_tasks()]
    assert len(labels) == 83
    command = schedule("schedule " + ", ".join(labels))
    assert command.selectors == tuple(dict.fromkeys(Label(label) for label in labels))


def test_every_real_treeherder_symbol_parses_to_its_group_and_symbol() -> None:
    seen = 0
    for task in gecko_tasks():
        treeherder = task["extra"]["treeherder"]
        group, symbol = treeherder.get("groupSymbol"), treeherder["symbol"]
        if group and group != "?":
            (selector,) = schedule(f"schedule {group}({symbol})").selectors
            assert selector == Symbol(group, symbol)
            seen += 1
        else:
            (selector,) = schedule(f"schedule {symbol}").selectors
            assert selector == Name(symbol)
    assert seen > 60


def test_every_real_platform_and_collection_is_a_filter() -> None:
    for task in gecko_tasks():
        treeherder = task["extra"]["treeherder"]
        platform = treeherder["machine"]["platform"]
        for collection in treeherder["collection"]:
            command = schedule(f"schedule a-1 for {platform}/{collection}")
            assert command.filters == (PlatformFilter(platform, collection),)
            command = schedule(f"schedule a-1 for {platform} {collection}")
            assert command.filters == (PlatformFilter(platform, collection),)


def test_revision_of_a_real_decision_task_index_route() -> None:
    decision = load_reference_json("taskgraph", "gecko-try-decision-task.json")
    routes = [r for r in decision["routes"] if ".revision." in r]
    assert routes
    for route in routes:
        match = re.search(r"\.v2\.(?P<project>[^.]+)\.revision\.(?P<node>[0-9a-f]{40})\.", route)
        assert match, route
        command = schedule(f"schedule a-1 on {match['project']}@{match['node']}")
        assert command.revision == Revision(match["node"], match["project"])


def test_revision_of_real_parameters() -> None:
    text = reference_path("taskgraph", "gecko-try-parameters.yml").read_text()
    fields = dict(re.findall(r"^(\w+): '?([^'\n]*)'?$", text, re.MULTILINE))
    command = schedule(f"schedule a-1 on {fields['project']}:{fields['head_rev']}")
    assert command.revision == Revision(fields["head_rev"], fields["project"])


@pytest.mark.parametrize("short", [7, 12])
def test_short_forms_of_a_real_revision(short: int) -> None:
    decision = load_reference_json("taskgraph", "gecko-try-decision-task.json")
    node = re.search(r"\.revision\.([0-9a-f]{40})\.", " ".join(decision["routes"]))
    assert node
    command = schedule(f"schedule a-1 on {node[1][:short]}")
    assert command.revision == Revision(node[1][:short])
