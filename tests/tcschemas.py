"""Validators for the real Taskcluster JSON schemas in ../shared/reference/taskcluster."""

from __future__ import annotations

import functools
import json
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT6

from tests.conftest import reference_path

BASE = "https://taskcluster.invalid"


@functools.cache
def _registry() -> Registry:
    root = reference_path("taskcluster", "schemas")
    resources = []
    for path in sorted(root.rglob("*.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        uri = BASE + schema["$id"].rstrip("#")
        schema["$id"] = uri  # absolute, so relative $refs resolve beside it
        resources.append((uri, Resource.from_contents(schema, default_specification=DRAFT6)))
    return Registry().with_resources(resources)


@functools.cache
def validator(schema_id: str) -> jsonschema.Draft6Validator:
    """A validator for e.g. ``/schemas/queue/v1/create-task-request.json``."""
    registry = _registry()
    schema = registry.contents(BASE + schema_id)
    return jsonschema.Draft6Validator(
        schema, registry=registry, format_checker=jsonschema.Draft6Validator.FORMAT_CHECKER
    )


def errors(schema_id: str, document: Any) -> list[str]:
    """Every way ``document`` breaks the schema, as readable lines (empty when valid)."""
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator(schema_id).iter_errors(document)
    ]
