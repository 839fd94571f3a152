"""Taskcluster scope satisfaction and scope expressions, as the real services evaluate them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# A scope expression: a scope, {"AllOf": [...]}, {"AnyOf": [...]}, or in an API table the
# template {"each": "queue:route:<route>", "for": "route", "in": "routes"}.
Expression = str | dict[str, Any]


def satisfies(have: str, need: str) -> bool:
    """Whether the scope ``have`` grants ``need`` (a trailing ``*`` matches any suffix)."""
    if have.endswith("*"):
        return need.startswith(have[:-1])
    return have == need


def has_scope(scopes: Iterable[str], need: str) -> bool:
    return any(satisfies(have, need) for have in scopes)


def _assumes(scope: str, role_id: str) -> bool:
    """Whether ``scope`` grants the role: it satisfies ``assume:<role>``, or the role id
    ends in ``*`` and the scope assumes something under it."""
    if satisfies(scope, f"assume:{role_id}"):
        return True
    return role_id.endswith("*") and scope.startswith(f"assume:{role_id[:-1]}")


def expand_roles(scopes: Iterable[str], roles: Mapping[str, Sequence[str]]) -> set[str]:
    """The scopes plus those of every role they assume, transitively."""
    expanded = set(scopes)
    pending = list(expanded)
    while pending:
        scope = pending.pop()
        for role_id, role_scopes in roles.items():
            if _assumes(scope, role_id):
                for granted in role_scopes:
                    if granted not in expanded:
                        expanded.add(granted)
                        pending.append(granted)
    return expanded


def _render(template: str, params: Mapping[str, Any]) -> str:
    out = template
    for key, value in params.items():
        out = out.replace(f"<{key}>", str(value))
    return out


def instantiate(expression: Expression, params: Mapping[str, Any]) -> Expression:
    """Fill an API table's template (``<taskId>``, ``each``/``for``/``in``) from ``params``.

    An ``each`` template expands into the list that holds it, as the real services do:
    inside ``AnyOf`` its instances are alternatives, inside ``AllOf`` all are required.
    """
    if isinstance(expression, str):
        return _render(expression, params)
    if "each" in expression:
        return {"AllOf": _expand(expression, params)}
    if "if" in expression:
        return (
            instantiate(expression["then"], params)
            if params.get(expression["if"])
            else {"AllOf": []}
        )
    key = "AllOf" if "AllOf" in expression else "AnyOf"
    items: list[Expression] = []
    for element in expression[key]:
        if isinstance(element, dict) and "each" in element:
            items.extend(_expand(element, params))
        else:
            items.append(instantiate(element, params))
    return {key: items}


def _expand(template: dict[str, Any], params: Mapping[str, Any]) -> list[Expression]:
    values = params.get(template["in"], [])
    return [_render(template["each"], {**params, template["for"]: v}) for v in values]


def evaluate(expression: Expression, scopes: Iterable[str]) -> bool:
    scopes = list(scopes)
    if isinstance(expression, str):
        return has_scope(scopes, expression)
    if "AllOf" in expression:
        return all(evaluate(e, scopes) for e in expression["AllOf"])
    return any(evaluate(e, scopes) for e in expression["AnyOf"])


def missing(expression: Expression, scopes: Iterable[str]) -> Expression | None:
    """The part of ``expression`` the scopes do not satisfy, or None when they all are."""
    scopes = list(scopes)
    if isinstance(expression, str):
        return None if has_scope(scopes, expression) else expression
    if "AllOf" in expression:
        unmet = [m for e in expression["AllOf"] if (m := missing(e, scopes)) is not None]
        if not unmet:
            return None
        return unmet[0] if len(unmet) == 1 else {"AllOf": unmet}
    if any(evaluate(e, scopes) for e in expression["AnyOf"]):
        return None
    return expression


def describe(expression: Expression) -> str:
    """An expression in words: ``a``, ``a and b``, ``a or b``."""
    if isinstance(expression, str):
        return f"`{expression}`"
    key = "AllOf" if "AllOf" in expression else "AnyOf"
    parts = [describe(e) for e in expression[key]]
    parts = [p for p in parts if p]
    if key == "AllOf":
        return " and ".join(parts)
    return parts[0] if len(parts) == 1 else "(" + " or ".join(parts) + ")"
