"""Shared fixtures: synthetic samples are generated once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from ldm.synthetic.config import SampleConfig
from ldm.synthetic.generate import generate

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def medium_sample(tmp_path_factory) -> Path:
    """20,000 people: enough rows to check planted rates and gradients."""
    folder = tmp_path_factory.mktemp("medium_sample")
    generate(SampleConfig(persons=20_000, seed=7), folder)
    return folder
