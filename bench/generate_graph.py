"""Write a deterministic Gecko-shaped push: full-task-graph.json and label-to-taskid.json.

Run: .venv/bin/python bench/generate_graph.py --tasks 40000 --seed 1 --out /tmp/push
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.localtc.synthetic import generate


def write(out: Path, tasks: int, seed: int) -> tuple[Path, Path]:
    """Write the two artifacts into ``out`` (created if needed); return their paths."""
    push = generate(tasks, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    graph = out / "full-task-graph.json"
    label_to_taskid = out / "label-to-taskid.json"
    graph.write_bytes(msgspec.json.encode(push.graph))
    label_to_taskid.write_bytes(msgspec.json.encode(push.label_to_taskid))
    return graph, label_to_taskid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=40_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    graph, label_to_taskid = write(args.out, args.tasks, args.seed)
    print(f"{graph} ({graph.stat().st_size:,} bytes), {label_to_taskid}")


if __name__ == "__main__":
    main()
