"""What the tests' real servers (IRC, Matrix) share: a free port, children that die with the
test process, and the end of a log for an error message."""

from __future__ import annotations

import contextlib
import ctypes
import signal
import socket
from collections.abc import Collection
from pathlib import Path


def free_port(host: str, taken: Collection[int] = ()) -> int:
    """A port nothing listens on now, and none of ``taken``: the kernel may hand out a port it
    has just handed out, and two of one server's listeners on one port make it fail to start."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if port not in taken:
            return port


def die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the test process dies (Linux only)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"--- {path.name}: (none)"
    return f"--- {path.name}:\n" + "\n".join(text.splitlines()[-lines:])
