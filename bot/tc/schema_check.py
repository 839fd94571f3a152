"""An action's input checked against its schema in a child process, stopped when it takes too
long: a schema is anyone's on a try push, and one can be made to take hours (references that
double at each level, a backtracking pattern) while holding the interpreter."""

from __future__ import annotations

import asyncio
import json
import resource
import sys
from collections.abc import Mapping
from typing import Any

from bot.tc.actions import ActionError, check_input

MAX_SCHEMA_BYTES = 256 * 1024  # a real Gecko action's schema is at most a few kB
CHECK_SECONDS = 5.0
CHILD_MEMORY = 1024 * 2**20


async def check_input_isolated(
    action: Mapping[str, Any], input: Any, *, seconds: float = CHECK_SECONDS
) -> None:
    """What ``check_input`` says, said by a child process given ``seconds`` at most."""
    name = action.get("name")
    schema = action.get("schema")
    if not isinstance(schema, dict):
        return
    document = json.dumps({"action": {"name": name, "schema": schema}, "input": input})
    if len(document) > MAX_SCHEMA_BYTES:
        raise ActionError(f"the `{name}` action's schema is larger than {MAX_SCHEMA_BYTES:,} bytes")
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.tc.schema_check",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(child.communicate(document.encode()), seconds)
    except TimeoutError:
        raise ActionError(
            f"the `{name}` action's schema took more than {seconds:g} s to check its input, "
            "so the action was not run"
        ) from None
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    try:
        answer = json.loads(out or b"{}")
    except ValueError:
        answer = {}
    if "refused" in answer:
        raise ActionError(str(answer["refused"]))
    if not answer.get("ok"):
        last = err.decode(errors="replace").strip().splitlines()[-1:] or ["no answer"]
        raise ActionError(f"the `{name}` action's schema could not be checked: {last[0][:200]}")


def main() -> int:
    """The child: one JSON document on stdin, one answer on stdout."""
    resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY, CHILD_MEMORY))
    given = json.loads(sys.stdin.buffer.read())
    try:
        check_input(given["action"], given["input"])
    except ActionError as error:
        print(json.dumps({"refused": str(error)}))
        return 0
    print(json.dumps({"ok": True}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
