"""Shared test fixtures: where the reference data lives, and loaders for it."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference"

settings.register_profile("ci", max_examples=400, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=150)
settings.load_profile("ci" if os.environ.get("CI") == "true" else "dev")


def reference_path(*parts: str) -> Path:
    """A file of ../shared/reference; skipped locally when absent, a failure in CI."""
    path = REFERENCE.joinpath(*parts)
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"reference data missing in CI: {path}")
        pytest.skip(f"reference data not found at {path}")
    return path


def load_reference_json(*parts: str) -> Any:
    return json.loads(reference_path(*parts).read_text(encoding="utf-8"))


# --- no secret in any log ------------------------------------------------------------------------

# The tokens, secrets and passwords the tests configure: none may appear in a log line.
SECRETS: set[str] = set()


def keep_secret(value: str) -> str:
    """``value``, registered as a secret the logs of the whole run must never show."""
    SECRETS.add(value)
    return value


class _Everything(logging.Handler):
    """Every log line of the run, formatted with its traceback, to look for secrets in."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self.lines.append(logging.Formatter().format(record))


_LOGGED = _Everything()


def pytest_configure(config: pytest.Config) -> None:
    logging.getLogger().addHandler(_LOGGED)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    leaks = sorted(
        {
            f"{secret[:4]}… in: {line[:160]!r}"
            for line in _LOGGED.lines
            for secret in SECRETS
            if secret in line
        }
    )
    if leaks:
        print(f"\n{len(leaks)} log lines hold a configured secret:", *leaks[:10], sep="\n  ")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
