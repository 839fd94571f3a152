"""The task-graph engine: load a push's graph, resolve job names, plan, and materialise tasks."""

from bot.graph.cache import GraphCache
from bot.graph.errors import GraphError, Problem, ResolveError
from bot.graph.index import TaskGraphIndex, load_label_to_taskid
from bot.graph.materialize import Materializer, NewTask
from bot.graph.plan import Plan, cached_elsewhere, plan, task_id_for
from bot.graph.resolve import Resolution, Resolver, by_suite
from bot.graph.trysel import select_try

__all__ = [
    "GraphCache",
    "GraphError",
    "Materializer",
    "NewTask",
    "Plan",
    "Problem",
    "Resolution",
    "ResolveError",
    "Resolver",
    "TaskGraphIndex",
    "by_suite",
    "cached_elsewhere",
    "load_label_to_taskid",
    "plan",
    "select_try",
    "task_id_for",
]
