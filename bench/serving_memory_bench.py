"""The serving bot's memory over many pushes, through its own interfaces.

Run: .venv/bin/python bench/serving_memory_bench.py [--pushes 10] [--tasks 20000] [--json PATH]

``python -m bot localtc --seed-pushes 10 --tasks 20000`` seeds a chain of pushes (each
graph naming its own revision, indented and gzipped as a decision task writes it), and
``python -m bot`` serves against it. The bench asks the bot's HTTP API for the runnable
jobs of every push, waits for the graphs to be packed, and reads the bot's resident memory
(/proc, not estimates) before and after. Goal: it grew by at most 0.25x the graphs' total
size. Then a second pass over the pushes: served from the graph cache (the bot's
``taskbot_graph_loads`` metric does not move), with its time against the first pass's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results import Measure, add_json_option, write_json
from bot.localtc.process import PROJECT_ROOT, Running, bot_ready, free_port, local_taskcluster

TOKEN = "bench-reader-token-0123456789"


def resident(pid: int) -> int:
    """Resident memory of process ``pid``, in bytes."""
    text = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"VmRSS:\s+(\d+) kB", text)
    assert found, text
    return int(found[1]) * 1024


async def metric(session: aiohttp.ClientSession, url: str, name: str) -> float:
    async with session.get(f"{url}/metrics") as response:
        text = await response.text()
    found = re.search(rf"^{name}(?:_total)? ([0-9.e+]+)$", text, re.MULTILINE)
    return float(found[1]) if found else 0.0


async def graph_size(session: aiohttp.ClientSession, tc: Running, decision: str) -> int:
    """The push's full-task-graph.json, decoded (what the bot reads)."""
    url = f"{tc.root_url}/api/queue/v1/task/{decision}/artifacts/public/full-task-graph.json"
    async with session.get(url) as response:
        return len(await response.read())


async def measure(tc: Running, url: str, pid: int) -> dict[str, Any]:
    pushes = tc.info["pushes"]
    project = tc.info["project"]
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
        sizes = [await graph_size(session, tc, p["decisionTaskId"]) for p in pushes]
        before = resident(pid)

        async def one_pass() -> float:
            started = time.perf_counter()
            for push in pushes:
                runnable = (
                    f"{url}/api/v1/projects/{project}/pushes/{push['revision']}/runnable-jobs"
                )
                async with session.get(runnable, headers=headers) as response:
                    assert response.status == 200, await response.text()
                    body = await response.json()
                    assert body["count"] > 0
            return time.perf_counter() - started

        first = await one_pass()
        loads = await metric(session, url, "taskbot_graph_loads")
        # The graphs are packed in a thread after each load: wait for the cache to settle.
        settled, last = time.monotonic() + 120, -1.0
        while time.monotonic() < settled:
            held = await metric(session, url, "taskbot_graph_cache_bytes")
            if held == last:
                break
            last = held
            await asyncio.sleep(2)
        after = resident(pid)
        second = await one_pass()
        loads_after = await metric(session, url, "taskbot_graph_loads")
        hits = await metric(session, url, "taskbot_graph_cache_hits")
    return {
        "sizes": sizes,
        "before": before,
        "after": after,
        "first": first,
        "second": second,
        "loads": loads,
        "loads_after": loads_after,
        "hits": hits,
        "held": last,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pushes", type=int, default=10)
    parser.add_argument("--tasks", type=int, default=20_000)
    add_json_option(parser)
    args = parser.parse_args()
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory() as folder,
        local_taskcluster("--seed-pushes", str(args.pushes), "--tasks", str(args.tasks)) as tc,
    ):
        port = free_port()
        env = {
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", "/tmp"),
            **tc.environment(),
            "PORT": str(port),
            "TASKBOT_API_TOKENS": f"bench:read:{TOKEN}",
            "TASKBOT_DATA_DIR": folder,
        }
        log = (Path(folder) / "bot.log").open("ab")
        bot = subprocess.Popen(
            [sys.executable, "-m", "bot"], cwd=PROJECT_ROOT, env=env, stdout=log, stderr=log
        )
        url = f"http://127.0.0.1:{port}"
        try:
            asyncio.run(bot_ready(url, bot))
            result = asyncio.run(measure(tc, url, bot.pid))
        finally:
            bot.terminate()
            bot.wait()
    total = sum(result["sizes"])
    grew = result["after"] - result["before"]
    ratio = grew / total
    cached = result["loads_after"] == result["loads"] == args.pushes
    print(
        f"{args.pushes} pushes of {args.tasks:,} tasks: {total / 1e6:,.0f} MB of graphs; "
        f"{time.perf_counter() - started:.0f} s in all"
    )
    print(
        f"bot's resident memory: {result['before'] / 1e6:.0f} MB before, "
        f"{result['after'] / 1e6:.0f} MB after runnable-jobs of every push: grew "
        f"{grew / 1e6:.0f} MB, {ratio:.3f}x the graphs (goal <= 0.25); the cache counts "
        f"{result['held'] / 1e6:.0f} MB"
    )
    print(
        f"first pass {result['first']:.1f} s ({result['loads']:.0f} graphs loaded); second "
        f"pass {result['second']:.2f} s, {'all' if cached else 'NOT all'} from the cache "
        f"({result['loads_after']:.0f} loads, {result['hits']:.0f} cache hits)"
    )
    write_json(
        args.json,
        "serving_memory_bench",
        args,
        [
            Measure(
                f"serving bot's memory growth, {args.pushes} pushes",
                grew / 1e6,
                "MB",
                "the graphs' total size",
                total / 1e6,
                ratio,
                "x",
                "<= 0.25",
            ),
            Measure(
                "second pass over the pushes",
                result["second"],
                "s",
                "the first pass (graphs loaded)",
                result["first"],
                result["first"] / result["second"],
                "x faster",
            ),
            Measure(
                "second pass served from the cache", 1.0 if cached else 0.0, "yes", goal=">= 1"
            ),
        ],
    )


if __name__ == "__main__":
    main()
