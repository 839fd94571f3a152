"""A graph's task definitions as JSON bytes, packed into zlib blocks once the graph is kept.

Right after loading, each body is a view into the downloaded document (no copy, so the
first command on a push waits for nothing more). ``compact`` then packs the bodies into
zlib blocks of a few consecutive tasks, which look alike (a platform's chunks of a suite)
and so compress ~10x, and lets the document go: a kept push costs a tenth of its size.
A body read afterwards costs one block's decompression (a tenth of a millisecond); the
last blocks read (of any graph: some 20 MB in all) are kept decompressed, as a plan
reads neighbouring tasks, and a task and its dependencies more than once.
"""

from __future__ import annotations

import itertools
import zlib
from array import array
from collections.abc import Sequence

import msgspec

BLOCK = 16  # tasks per zlib block
LEVEL = 6  # zlib's default: 25 % smaller than level 1 for twice the (background) time
RECENT_BLOCKS = 256  # for the whole process: about 20 MB of Gecko-sized blocks

Body = bytes | memoryview | msgspec.Raw


class _RecentBlocks:
    """The last blocks decompressed, of every graph: (graph's serial, block) -> bytes.

    Read from several threads (plans run off the event loop) without a lock: each dict
    operation is atomic, and a race at worst drops a block, which is decompressed again.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._blocks: dict[tuple[int, int], bytes] = {}

    def get(self, key: tuple[int, int]) -> bytes | None:
        block = self._blocks.pop(key, None)
        if block is not None:
            self._blocks[key] = block  # the most recent now
        return block

    def put(self, key: tuple[int, int], block: bytes) -> None:
        self._blocks[key] = block
        while len(self._blocks) > self.size:
            try:
                del self._blocks[next(iter(self._blocks))]
            except (KeyError, RuntimeError, StopIteration):  # another thread was at it
                break

    def forget(self, serial: int) -> None:
        for key in [k for k in list(self._blocks) if k[0] == serial]:
            self._blocks.pop(key, None)


_RECENT = _RecentBlocks(RECENT_BLOCKS)
_SERIALS = itertools.count()


class Bodies:
    """The task bodies of one graph, by position."""

    def __init__(self, views: Sequence[Body], document_size: int) -> None:
        self._views: Sequence[Body] | None = views
        self._document_size = document_size
        self._blocks: list[bytes] = []
        self._starts = array("I")  # each body's offset in its block
        self._serial = next(_SERIALS)
        self._count = len(views)

    def __len__(self) -> int:
        return self._count

    @property
    def compact(self) -> bool:
        return self._views is None

    @property
    def nbytes(self) -> int:
        """Bytes held: the whole document while views into it are kept, else the blocks."""
        if self._views is not None:
            return self._document_size
        return sum(len(block) for block in self._blocks) + self._starts.itemsize * self._count

    def __getitem__(self, i: int) -> Body:
        views = self._views
        if views is not None:
            return views[i]
        if not 0 <= i < self._count:
            raise IndexError(i)
        block = self._block(i // BLOCK)
        start = self._starts[i]
        last = i + 1 == self._count or (i + 1) % BLOCK == 0
        return block[start : len(block) if last else self._starts[i + 1]]

    def _block(self, number: int) -> bytes:
        key = (self._serial, number)
        block = _RECENT.get(key)
        if block is None:
            block = zlib.decompress(self._blocks[number])
            _RECENT.put(key, block)
        return block

    def forget(self) -> None:
        """Drop this graph's blocks kept decompressed."""
        _RECENT.forget(self._serial)

    def pack(self, level: int = LEVEL) -> None:
        """Pack the bodies into zlib blocks and drop the views (and so the document). Safe
        to call from another thread while bodies are read: readers see one form or the
        other. zlib releases the GIL while it compresses."""
        views = self._views
        if views is None:
            return
        blocks: list[bytes] = []
        starts = array("I")
        for first in range(0, len(views), BLOCK):
            pieces = views[first : first + BLOCK]
            offset = 0
            for piece in pieces:
                starts.append(offset)
                offset += len(piece)
            blocks.append(zlib.compress(b"".join(pieces), level))
        self._blocks, self._starts = blocks, starts
        self._views = None
