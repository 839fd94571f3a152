"""Prometheus metrics of the bot, served at /metrics: what it was asked, what it created."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

COMMANDS = Counter(
    "taskbot_commands",
    "Commands handled, by source, verb and outcome (ok, denied, parse_error, unavailable, error)",
    ["source", "verb", "outcome"],
    registry=REGISTRY,
)
TASKS_CREATED = Counter(
    "taskbot_tasks_created", "Tasks the bot created in Taskcluster", registry=REGISTRY
)
SCHEDULE_SECONDS = Histogram(
    "taskbot_schedule_seconds",
    "From a request's plan to all its tasks created",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=REGISTRY,
)
ERRORS = Counter(
    "taskbot_errors",
    "Errors talking to the services the bot depends on",
    ["service"],  # github, irc, taskcluster, store
    registry=REGISTRY,
)


GRAPH_LOADS = Counter(
    "taskbot_graph_loads",
    "Task graphs downloaded and indexed (a push not cached)",
    registry=REGISTRY,
)
GRAPH_CACHE_HITS = Counter(
    "taskbot_graph_cache_hits", "Task graphs served from the graph cache", registry=REGISTRY
)
GRAPH_CACHE_BYTES = Gauge(
    "taskbot_graph_cache_bytes",
    "Bytes the kept task graphs hold, as the graph cache counts them (bound: 1 GiB)",
    registry=REGISTRY,
)
DELIVERIES_PARKED = Counter(
    "taskbot_deliveries_parked",
    "Deliveries given up on after their retries, waiting for an operator, by source",
    ["source"],
    registry=REGISTRY,
)


def exposition() -> bytes:
    """The metrics in Prometheus' text format."""
    return bytes(generate_latest(REGISTRY))
