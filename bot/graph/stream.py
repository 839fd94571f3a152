"""Decode a full task graph while it downloads, a batch of whole tasks at a time.

taskgraph writes its artifacts indented by two spaces (``json.dump(..., indent=2)``), so
every task of a graph starts on a line that begins with exactly two spaces and a quote:
deeper keys are indented further, and a JSON string holds no raw newline. That makes the
bytes received so far splittable into complete tasks, each batch decoded as soon as it
arrived. A document in another layout is decoded whole at the end, as before.
"""

from __future__ import annotations

import msgspec

from bot.graph.index import GRAPH_DECODER, GraphLoader, TaskGraphIndex, decode_error

_TASK_LINE = b'\n  "'  # where a top-level key (a task's label) starts
_INDENTED_START = b'{\n  "'
BATCH = 4 * 1024 * 1024  # bytes gathered before decoding the complete tasks among them


class GraphStream:
    """A graph document fed in chunks (``feed``), indexed at the end (``finish``)."""

    def __init__(self, name: str = "full-task-graph.json") -> None:
        self.name = name
        self.size = 0
        self._pending = bytearray()  # received, not yet decoded
        self._loader = GraphLoader(name)
        self._indented: bool | None = None  # unknown until the first bytes
        self._first = True  # the pending bytes start the document (with its `{`)

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self._pending += chunk
        if self._indented is None:
            if len(self._pending) < len(_INDENTED_START):
                return
            self._indented = self._pending.startswith(_INDENTED_START)
        if not self._indented or len(self._pending) < BATCH:
            return
        cut = self._pending.rfind(_TASK_LINE)
        if cut <= 1:  # no task complete yet: the first starts at offset 1
            return
        end = cut
        while self._pending[end - 1] in b" \n\r\t,":  # the last task's trailing comma
            end -= 1
        with memoryview(self._pending) as view:  # one copy: the batch as a document
            document = b"".join((b"" if self._first else b"{", view[:end], b"}"))
        del self._pending[:cut]
        self._decode(document)
        self._first = False

    def finish(self) -> TaskGraphIndex:
        """The index of the whole document; ``GraphError`` when it is not a graph."""
        rest = bytes(self._pending)
        self._pending = bytearray()
        if self._first:  # one piece, or not indented: the document as it is
            return TaskGraphIndex(rest, name=self.name)
        self._decode(b"{" + rest)
        return self._loader.finish(self.size)

    def _decode(self, document: bytes) -> None:
        try:
            entries = GRAPH_DECODER.decode(document)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            raise decode_error(self.name, document, error) from None
        self._loader.add(entries)
