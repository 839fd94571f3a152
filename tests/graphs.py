"""Task graphs for tests: the real one in ../shared, generated Gecko-shaped ones, tiny ones."""

from __future__ import annotations

import functools
import json
from typing import Any

import msgspec

from bot.graph import TaskGraphIndex
from bot.localtc.synthetic import SyntheticPush, generate
from tests.conftest import reference_path


@functools.cache
def translations_bytes() -> bytes:
    return reference_path("taskgraph", "translations-full-task-graph.json").read_bytes()


def translations_graph() -> dict[str, Any]:
    return json.loads(translations_bytes())


@functools.cache
def translations_index() -> TaskGraphIndex:
    """Packed, as the bot keeps a graph: the tests read bodies from zlib blocks."""
    return packed(TaskGraphIndex(translations_bytes(), name="translations-full-task-graph.json"))


@functools.cache
def gecko_push(tasks: int = 3000, seed: int = 7) -> SyntheticPush:
    return generate(tasks, seed=seed)


@functools.cache
def gecko_index(tasks: int = 3000, seed: int = 7) -> TaskGraphIndex:
    return packed(TaskGraphIndex(msgspec.json.encode(gecko_push(tasks, seed).graph)))


def packed(index: TaskGraphIndex) -> TaskGraphIndex:
    index.pack()
    return index


def tiny_graph(edges: dict[str, dict[str, str]], **bodies: dict[str, Any]) -> dict[str, Any]:
    """A graph of ``{label: {edge: dependency}}``, each task a small valid body."""
    graph = {}
    for label, deps in edges.items():
        body = {
            "created": {"relative-datestamp": "0 seconds"},
            "deadline": {"relative-datestamp": "1 day"},
            "expires": {"relative-datestamp": "30 days"},
            "metadata": {
                "name": label,
                "description": f"the {label} task",
                "owner": "someone@example.com",
                "source": "https://example.com/taskcluster",
            },
            "payload": {"command": ["true"]},
            "provisionerId": "proj-test",
            "workerType": "linux",
            **bodies.get(label.replace("-", "_"), {}),
        }
        graph[label] = {
            "kind": label.split("-")[0],
            "label": label,
            "attributes": {"kind": label.split("-")[0]},
            "dependencies": deps,
            "soft_dependencies": [],
            "if_dependencies": [],
            "optimization": None,
            "description": "",
            "task": body,
        }
    return graph


def index_of(graph: dict[str, Any]) -> TaskGraphIndex:
    return TaskGraphIndex(json.dumps(graph).encode())
