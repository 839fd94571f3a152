"""GitHub deliveries: signatures checked on real payload bytes; comments turned into requests."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from typing import Any

import pytest
from gidgethub import sansio

from bot.adapters.github.events import GitHubOrigin, comment_request
from bot.adapters.github.webhook import receiver, verify
from bot.adapters.receiving import DeliveryRejectedError
from tests.conftest import keep_secret, load_reference_json, reference_path

SECRET = keep_secret("It's a Secret to Everybody")


def signed(body: bytes, event: str, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "X-Hub-Signature-256": f"sha256={digest}",
    }


def comment_event(
    body: str, *, name: str = "issue_comment.created.0.json", **changes: Any
) -> sansio.Event:
    data = copy.deepcopy(load_reference_json("github", "webhook-examples", name))
    data["comment"]["body"] = body
    data.update(changes)
    raw = json.dumps(data).encode()
    return verify(signed(raw, name.split(".")[0]), raw, SECRET)


def test_real_payload_bytes_verify() -> None:
    raw = reference_path("github", "webhook-examples", "pull_request.opened.0.json").read_bytes()
    event = verify(signed(raw, "pull_request"), raw, SECRET)
    assert (event.event, event.data["action"]) == ("pull_request", "opened")


@pytest.mark.parametrize(
    ("mutate", "status", "words"),
    [
        (
            lambda h, b: ({k: v for k, v in h.items() if k != "X-Hub-Signature-256"}, b),
            401,
            "not signed",
        ),
        (lambda h, b: (h, b + b" "), 401, "does not match"),
        (lambda h, b: (signed(b, "ping", secret="wrong"), b), 401, "does not match"),
        (lambda h, b: ({**h, "X-Hub-Signature-256": "sha1=abc"}, b), 401, "does not match"),
        (
            lambda h, b: ({k: v for k, v in h.items() if k != "X-GitHub-Event"}, b),
            400,
            "x-github-event",
        ),
        (lambda h, b: (signed(b"{not json", "ping"), b"{not json"), 400, "JSON"),
        # not hex at all: hmac cannot even compare it (it raised TypeError: a 500)
        (lambda h, b: ({**h, "X-Hub-Signature-256": "sha256=\xe9\xe9"}, b), 401, "does not match"),
    ],
)
def test_forged_or_malformed_deliveries_are_rejected(mutate: Any, status: int, words: str) -> None:
    raw = reference_path("github", "webhook-examples", "ping.none.0.json").read_bytes()
    headers, body = mutate(signed(raw, "ping"), raw)
    with pytest.raises(DeliveryRejectedError) as caught:
        verify(headers, body, SECRET)
    assert caught.value.status == status
    assert words in caught.value.reason


def test_a_sha1_only_delivery_is_not_enough() -> None:
    raw = reference_path("github", "webhook-examples", "ping.none.1.json").read_bytes()
    headers = signed(raw, "ping")
    sha1 = hmac.new(SECRET.encode(), raw, hashlib.sha1).hexdigest()
    headers = {
        **{k: v for k, v in headers.items() if k != "X-Hub-Signature-256"},
        "X-Hub-Signature": f"sha1={sha1}",
    }
    with pytest.raises(DeliveryRejectedError, match="not signed"):
        verify(headers, raw, SECRET)


def test_a_delivery_in_another_charset_is_kept_as_the_json_it_says() -> None:
    body = '{"zen": "caf\u00e9", "hook_id": 1}'.encode("latin-1")
    headers = {
        **signed(body, "issue_comment"),
        "Content-Type": "application/json; charset=latin-1",
    }
    received = receiver(SECRET).read(headers, body)
    assert json.loads(received.payload) == {"zen": "caf\u00e9", "hook_id": 1}


def test_a_comment_with_commands_becomes_a_request() -> None:
    event = comment_event(
        "Looks flaky.\n\n@taskbot retrigger failed x3\n> @taskbot schedule everything\n"
    )
    request = comment_request(event, bot_login="taskbot")
    assert request is not None
    data = event.data
    assert request.text == "@taskbot retrigger failed x3"
    assert request.actor == data["comment"]["user"]["login"]
    assert request.place == f"{data['repository']['full_name']}#{data['issue']['number']}"
    assert request.delivery_id == "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    assert isinstance(request.origin, GitHubOrigin)
    assert request.origin.comment_id == data["comment"]["id"]


def test_comments_without_commands_and_by_bots_make_none() -> None:
    assert comment_request(comment_event("Thanks!"), bot_login="taskbot") is None
    event = comment_event("@taskbot status")
    event.data["comment"]["user"]["type"] = "Bot"
    assert comment_request(event, bot_login="taskbot") is None
    event = comment_event("@taskbot status")
    event.data["comment"]["user"] = {
        **event.data["comment"]["user"],
        "login": "taskbot[bot]",
        "type": "User",
    }
    assert comment_request(event, bot_login="taskbot") is None
    deleted = comment_event("@taskbot status", name="issue_comment.deleted.5.json")
    assert comment_request(deleted, bot_login="taskbot") is None


def test_an_edit_runs_only_new_command_lines() -> None:
    unchanged = comment_event(
        "@taskbot schedule a-1\nfixed a typo here",
        name="issue_comment.edited.7.json",
        changes={"body": {"from": "@taskbot schedule a-1\nfixed a typo hree"}},
    )
    assert comment_request(unchanged, bot_login="taskbot") is None
    added = comment_event(
        "@taskbot schedule a-1\n@taskbot schedule b-2",
        name="issue_comment.edited.8.json",
        changes={"body": {"from": "@taskbot schedule a-1"}},
    )
    request = comment_request(added, bot_login="taskbot")
    assert request is not None
    assert request.text == "@taskbot schedule b-2"


def test_a_comment_on_a_line_of_the_diff_is_a_pull_request_command() -> None:
    name = "pull_request_review_comment.created.0.json"
    event = comment_event("nit, and:\n@taskbot schedule xpcshell-2", name=name)
    request = comment_request(event, bot_login="taskbot")
    assert request is not None
    pull = event.data["pull_request"]
    assert request.place == f"{event.data['repository']['full_name']}#{pull['number']}"
    assert isinstance(request.origin, GitHubOrigin)
    assert (request.origin.pull_request, request.origin.comment_kind) == (True, "pulls")
    assert not request.needs_revision  # the pull request's head is the push
    edited = comment_event(
        "@taskbot schedule xpcshell-2",
        name="pull_request_review_comment.edited.4.json",
        changes={"body": {"from": "@taskbot schedule xpcshell-2"}},
    )
    assert comment_request(edited, bot_login="taskbot") is None
    deleted = comment_event("@taskbot status", name="pull_request_review_comment.deleted.3.json")
    assert comment_request(deleted, bot_login="taskbot") is None


def test_on_an_issue_commands_must_name_a_push() -> None:
    event = comment_event("@taskbot jobs xpcshell")
    assert "pull_request" not in event.data["issue"]  # the real payload is an issue
    request = comment_request(event, bot_login="taskbot")
    assert request is not None
    assert request.needs_revision
    assert isinstance(request.origin, GitHubOrigin)
    assert (request.origin.pull_request, request.origin.comment_kind) == (False, "issues")
