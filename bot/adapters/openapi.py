"""The API's OpenAPI 3.0 description, served at /api/v1/openapi.json."""

from __future__ import annotations

from typing import Any

from bot.store.base import STATES

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string", "description": "what went wrong, for people"}},
}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _ok(description: str, schema: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


_NULLABLE_STRING = {"type": "string", "nullable": True}

_RUNNABLE_JOB = {
    "type": "object",
    "description": "A job as in Treeherder's runnable jobs (Gecko's runnable-jobs.json).",
    "required": ["symbol", "alreadyRan"],
    "properties": {
        "symbol": {"type": "string"},
        "groupSymbol": {"type": "string"},
        "groupName": {"type": "string"},
        "platform": {"type": "string", "description": "Treeherder's machine platform"},
        "collection": {"type": "object", "additionalProperties": True},
        "alreadyRan": {"type": "boolean", "description": "the push already has this task"},
    },
}

_REQUEST_SUMMARY = {
    "type": "object",
    "required": [
        "id",
        "state",
        "source",
        "actor",
        "place",
        "command",
        "createdAt",
        "updatedAt",
        "taskCount",
        "counts",
    ],
    "properties": {
        "id": {"type": "string", "example": "r7f3a2c"},
        "state": {
            "type": "string",
            "enum": list(STATES),
        },
        "source": {"type": "string", "enum": ["console", "github", "irc", "http"]},
        "actor": {"type": "string"},
        "place": {"type": "string"},
        "project": _NULLABLE_STRING,
        "revision": _NULLABLE_STRING,
        "command": {"type": "string"},
        "createdAt": {"type": "string", "format": "date-time"},
        "updatedAt": {"type": "string", "format": "date-time"},
        "error": _NULLABLE_STRING,
        "taskCount": {"type": "integer", "minimum": 0},
        "counts": {
            "type": "object",
            "additionalProperties": {"type": "integer", "minimum": 0},
            "description": "tasks by state",
        },
    },
}

OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "taskbot",
        "version": "1",
        "description": (
            "Runnable jobs of a push, the bot's command language over HTTP, and the requests "
            "it made. Runnable jobs and projects need no credentials; requests need a bearer "
            "token unless TASKBOT_PUBLIC_READS is set; commands need a bearer token "
            "(TASKBOT_API_TOKENS) or a call signed with TASKBOT_API_SECRET."
        ),
        "license": {"name": "MPL-2.0", "url": "https://mozilla.org/MPL/2.0/"},
    },
    "paths": {
        "/api/v1/projects": {
            "get": {
                "operationId": "listProjects",
                "summary": "The projects the bot knows, and the default one",
                "responses": {"200": _ok("the projects", "Projects")},
            }
        },
        "/api/v1/projects/{project}/pushes/{revision}/runnable-jobs": {
            "get": {
                "operationId": "runnableJobs",
                "summary": "The jobs a push can run, as Treeherder lists them",
                "parameters": [
                    {
                        "name": "project",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "example": "autoland"},
                    },
                    {
                        "name": "revision",
                        "in": "path",
                        "required": True,
                        "description": "7 to 40 hex digits, or latest",
                        "schema": {"type": "string", "example": "latest"},
                    },
                    {
                        "name": "q",
                        "in": "query",
                        "description": "an fzf-style query, e.g. `mochitest !asan 'linux64`",
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "platform",
                        "in": "query",
                        "description": "platform filters: linux64, debug, linux64/debug",
                        "schema": {"type": "array", "items": {"type": "string"}},
                        "style": "form",
                        "explode": True,
                    },
                ],
                "responses": {
                    "200": _ok("the runnable jobs, by label", "RunnableJobs"),
                    "400": _error("a malformed project, revision, or platform filter"),
                    "404": _error("no decision task is indexed for the push"),
                    "502": _error("the push's task graph could not be read"),
                    "503": _error("Taskcluster did not answer"),
                },
            }
        },
        "/api/v1/commands": {
            "post": {
                "operationId": "runCommand",
                "summary": "Run commands of the chat language (one per line)",
                "security": [{"bearer": []}, {"signedBody": []}],
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "description": (
                            "a retried call with the same key makes nothing new: it reports "
                            "(or carries on with) what the first attempt made"
                        ),
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "X-Taskbot-Actor",
                        "in": "header",
                        "description": "who sends a signed body",
                        "schema": {"type": "string"},
                    },
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Command"}}
                    },
                },
                "responses": {
                    "200": {
                        **_ok("what the bot answered, and the requests it made", "Replies"),
                        "links": {
                            "MadeRequest": {
                                "operationId": "getRequest",
                                "parameters": {"request_id": "$response.body#/requestIds/0"},
                            }
                        },
                    },
                    "400": _error("the body is not a command"),
                    "401": _error("no valid token or signature"),
                    "413": _error("the body is too large"),
                    "422": _error("an Idempotency-Key used before with another body"),
                    "429": _ok(
                        "over the caller's commands a minute: some were not run; retry after "
                        "Retry-After seconds",
                        "Replies",
                    ),
                    "503": _ok(
                        "a command failed on the bot's side (Taskcluster did not answer, "
                        "or a fault): the replies say which; retry with the same "
                        "Idempotency-Key",
                        "Replies",
                    ),
                },
            }
        },
        "/api/v1/requests": {
            "get": {
                "operationId": "listRequests",
                "summary": "The newest requests",
                "parameters": [
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 20},
                    }
                ],
                "responses": {
                    "200": {
                        **_ok("the requests, newest first", "Requests"),
                        "links": {
                            "NewestRequest": {
                                "operationId": "getRequest",
                                "parameters": {"request_id": "$response.body#/requests/0/id"},
                            }
                        },
                    },
                    "400": _error("a malformed limit"),
                    "401": _error("no token, and requests are not public"),
                },
                "security": [{}, {"bearer": []}],
            }
        },
        "/api/v1/requests/{request_id}": {
            "get": {
                "operationId": "getRequest",
                "summary": "One request with its tasks",
                "parameters": [
                    {
                        "name": "request_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "example": "r7f3a2c"},
                    }
                ],
                "responses": {
                    "200": _ok("the request", "RequestDetail"),
                    "401": _error("no token, and requests are not public"),
                    "404": _error("no such request"),
                },
                "security": [{}, {"bearer": []}],
            }
        },
        "/api/v1/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This description",
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.0",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
    },
    "components": {
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "signedBody": {
                "type": "apiKey",
                "in": "header",
                "name": "X-Taskbot-Signature-256",
                "description": (
                    "sha256=HEX: HMAC-SHA256 with TASKBOT_API_SECRET of X-Taskbot-Timestamp, "
                    "a line break, X-Taskbot-Actor, a line break and the body"
                ),
            },
        },
        "schemas": {
            "Error": _ERROR,
            "Projects": {
                "type": "object",
                "required": ["default", "projects"],
                "properties": {
                    "default": {"type": "string"},
                    "projects": {"type": "array", "items": {"type": "string"}},
                },
            },
            "RunnableJob": _RUNNABLE_JOB,
            "RunnableJobs": {
                "type": "object",
                "required": [
                    "project",
                    "revision",
                    "latest",
                    "decisionTaskId",
                    "total",
                    "count",
                    "jobs",
                ],
                "properties": {
                    "project": {"type": "string"},
                    "revision": {
                        "type": "string",
                        "description": "the push's full revision; `latest` only when the "
                        "decision task names none",
                    },
                    "latest": {"type": "boolean", "description": "asked for as `latest`"},
                    "decisionTaskId": {"type": "string"},
                    "total": {"type": "integer", "minimum": 0},
                    "count": {"type": "integer", "minimum": 0},
                    "note": {"type": "string", "description": "why nothing matched"},
                    "jobs": {
                        "type": "object",
                        "additionalProperties": {"$ref": "#/components/schemas/RunnableJob"},
                    },
                },
            },
            "Command": {
                "type": "object",
                "required": ["text"],
                "properties": {
                    "text": {
                        "type": "string",
                        "minLength": 1,
                        "example": "schedule mochitest-browser-chrome-3 for linux64 --dry-run",
                    },
                    "project": {"type": "string", "description": "when the text names none"},
                },
            },
            "Replies": {
                "type": "object",
                "required": ["replies", "requestIds"],
                "properties": {
                    "replies": {"type": "array", "items": {"type": "string"}},
                    "requestIds": {"type": "array", "items": {"type": "string"}},
                },
            },
            "RequestSummary": _REQUEST_SUMMARY,
            "Requests": {
                "type": "object",
                "required": ["requests"],
                "properties": {
                    "requests": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/RequestSummary"},
                    }
                },
            },
            "RequestDetail": {
                "allOf": [
                    {"$ref": "#/components/schemas/RequestSummary"},
                    {
                        "type": "object",
                        "required": ["tasks", "links"],
                        "properties": {
                            "tasks": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["taskId", "label", "state", "requested", "url"],
                                    "properties": {
                                        "taskId": {"type": "string"},
                                        "label": {"type": "string"},
                                        "state": {"type": "string"},
                                        "requested": {"type": "boolean"},
                                        "url": {"type": "string"},
                                    },
                                },
                            },
                            "links": {
                                "type": "object",
                                "properties": {
                                    "taskGroup": _NULLABLE_STRING,
                                    "treeherder": _NULLABLE_STRING,
                                },
                            },
                        },
                    },
                ]
            },
        },
    },
}
