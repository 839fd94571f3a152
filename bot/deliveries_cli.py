"""``python -m bot deliveries list|retry|drop``: the deliveries the bot gave up on, for
operators, on the store the bot uses (DATABASE_URL, or the SQLite file)."""

from __future__ import annotations

import argparse

from bot.config import Config
from bot.store import open_store

EXIT_NOT_FOUND = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=("list", "retry", "drop"), help="what to do")
    parser.add_argument("ids", nargs="*", metavar="DELIVERY", help="delivery ids (retry, drop)")
    parser.add_argument("--source", default="github", help="whose deliveries (default github)")


async def run(args: argparse.Namespace, config: Config, sqlite_path: str) -> tuple[str, int]:
    """What to print, and the exit code (1 when a delivery named is not parked)."""
    store = await open_store(config.database_url, sqlite_path)
    try:
        if args.what == "list":
            rows = await store.parked_deliveries(args.source)
            if not rows:
                return f"no parked {args.source} deliveries", 0
            lines = [f"{len(rows)} parked {args.source} deliveries:"]
            for row in rows:
                lines.append(
                    f"  {row['delivery_id']}  {row['event']}  received {row['received_at']}"
                    f"  parked {row['parked_at']} after {row['attempts']} tries:"
                    f" {row['last_error']}"
                )
            return "\n".join(lines), 0
        if not args.ids:
            return f"name the deliveries to {args.what}: `deliveries {args.what} ID ...`", 2
        act = store.retry_delivery if args.what == "retry" else store.drop_delivery
        done = (
            "retried (a running bot takes it within a minute)"
            if args.what == "retry"
            else ("dropped")
        )
        lines, code = [], 0
        for delivery in args.ids:
            if await act(args.source, delivery):
                lines.append(f"{delivery}: {done}")
            else:
                lines.append(f"{delivery}: no parked {args.source} delivery has this id")
                code = EXIT_NOT_FOUND
        return "\n".join(lines), code
    finally:
        await store.close()
