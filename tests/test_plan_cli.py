"""``python -m bot plan`` on the real task graph: exit codes 0, 2 and 3 and the JSON keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from tests.conftest import reference_path


@pytest.fixture
def graph() -> Path:
    return reference_path("taskgraph", "translations-full-task-graph.json")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["plan", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_json_plan_with_reuse(
    graph: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    l2t = tmp_path / "label-to-taskid.json"
    l2t.write_text(json.dumps({"build-docker-image-base": "DOCKERBASEXXXXXXXXXXXX"}))
    later = tmp_path / "label-to-taskid-action.json"
    later.write_text(json.dumps({"build-docker-image-base": "Dockerbase0QxC2xxxxxxA"}))
    code, out, err = run(
        capsys,
        "--graph",
        str(graph),
        "--label-to-taskid",
        str(l2t),
        "--label-to-taskid",
        str(later),
        "--json",
        "schedule build-docker-image-toolchain-build x2",
    )
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert data["requested"] == ["build-docker-image-toolchain-build"]
    assert data["reuse"] == {"build-docker-image-base": "Dockerbase0QxC2xxxxxxA"}
    assert list(data["create"]) == ["build-docker-image-toolchain-build"]
    assert len(data["copies"]["build-docker-image-toolchain-build"]) == 2
    assert data["new_tasks"] == 2


def test_text_plan(graph: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--graph", str(graph), "schedule", "Fetch(cuda)")
    assert code == 0
    assert out.splitlines()[:2] == ["requested: fetch-cuda", "2 new task(s), 0 reused"]
    assert "build-docker-image-base" in out  # its dependency


def test_unknown_job_exits_2_with_suggestions(
    graph: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "--graph", str(graph), "schedule bicleanr")
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        "`bicleanr` matches no job.",
        "Did you mean: `bicleaner`, `bicleaner-model`, `clean-corpus`?",
    ]


def test_ambiguous_exits_3_with_a_shortlist(
    graph: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "--graph", str(graph), "schedule bicleaner")
    assert code == 3
    lines = err.splitlines()
    assert lines[0].startswith("`bicleaner` matches 84 jobs")
    assert lines[1].startswith("  1. bicleaner-")
    assert lines[-1] == "  … and 74 more"
    code, _, _ = run(
        capsys, "--graph", str(graph), "--shortlist-limit", "100", "schedule bicleaner"
    )
    assert code == 0


@pytest.mark.parametrize(
    ("text", "words"),
    [("shedule x", "not a command"), ("status", "`status` makes no plan")],
)
def test_commands_that_cannot_plan(
    graph: Path, capsys: pytest.CaptureFixture[str], text: str, words: str
) -> None:
    code, _, err = run(capsys, "--graph", str(graph), text)
    assert code == 2
    assert words in err


def test_broken_graph_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "full-task-graph.json"
    broken.write_bytes(b'{"a": {"label": "a", "task": {')
    code, _, err = run(capsys, "--graph", str(broken), "schedule a")
    assert code == 2
    assert err.startswith("full-task-graph.json is truncated")
    code, _, err = run(capsys, "--graph", str(tmp_path / "missing.json"), "schedule a")
    assert code == 2
    assert "cannot read" in err
    assert "No such file" in err
