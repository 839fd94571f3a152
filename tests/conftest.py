"""Shared test fixtures: where the reference data lives, and loaders for it."""

from __future__ import annotations

import json
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
