"""A graph decoded while it downloads is the graph decoded whole, whatever the chunks."""

from __future__ import annotations

import json
import random

import msgspec
import pytest

from bot.graph import GraphError, TaskGraphIndex
from bot.graph import stream as stream_module
from bot.graph.stream import GraphStream
from tests.graphs import gecko_push, translations_bytes


def fed(data: bytes, rng: random.Random, largest: int) -> TaskGraphIndex:
    stream = GraphStream()
    at = 0
    while at < len(data):
        size = rng.randint(1, largest)
        stream.feed(data[at : at + size])
        at += size
    return stream.finish()


def same(ours: TaskGraphIndex, whole: TaskGraphIndex) -> None:
    assert ours.labels == whole.labels
    assert ours.entries == whole.entries
    assert ours.symbols == whole.symbols
    assert ours.by_platform == whole.by_platform
    assert ours.nbytes == whole.nbytes
    assert [ours.body(label) for label in ours.labels] == [
        whole.body(label) for label in whole.labels
    ]


@pytest.mark.parametrize("seed", range(4))
def test_the_real_indented_graph_in_random_chunks(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream_module, "BATCH", 1 + seed * 20_000)  # many batches
    data = translations_bytes()
    assert data.startswith(b'{\n  "')  # as taskgraph writes it
    same(fed(data, random.Random(seed), 50_000), TaskGraphIndex(data))


def test_a_gecko_graph_indented_as_taskgraph_writes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream_module, "BATCH", 100_000)
    data = json.dumps(gecko_push(1500, 1).graph, sort_keys=True, indent=2).encode()
    same(fed(data, random.Random(1), 70_000), TaskGraphIndex(data))


def test_a_compact_document_is_decoded_whole_at_the_end() -> None:
    data = msgspec.json.encode(gecko_push(1500, 1).graph)
    same(fed(data, random.Random(2), 30_000), TaskGraphIndex(data))


@pytest.mark.parametrize("cut", [0.0, 0.5, 0.999])
def test_a_truncated_download_is_a_graph_error(cut: float, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream_module, "BATCH", 50_000)
    data = translations_bytes()
    with pytest.raises(GraphError, match=r"truncated|not what taskgraph writes"):
        fed(data[: int(len(data) * cut)], random.Random(3), 40_000)


def test_a_task_that_is_not_an_object_is_refused_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream_module, "BATCH", 10)
    data = json.dumps({"a": {"task": {}}, "b": 7, "c": {"task": {}}}, indent=2).encode()
    with pytest.raises(GraphError, match="not what taskgraph writes"):
        fed(data, random.Random(4), 5)
