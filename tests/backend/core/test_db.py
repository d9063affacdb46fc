"""The engine a long-running component builds knows every table its writes may refer to."""

from __future__ import annotations

import subprocess
import sys

import pytest

from backend.core.config import PROJECT_ROOT

# Each component runs in a process of its own and imports only what it uses.
COMPONENTS = [
    "backend.market.matching",
    "backend.workers.app",
    "backend.meters.mqtt",
    "indexer.base",
    "backend.openadr.vtn",
    "scripts.vens.fleet",
]

PROBE = """
import importlib, sys
importlib.import_module(sys.argv[1])
from sqlmodel import SQLModel
from backend.core.db import make_engine
make_engine("sqlite://")
print(len(SQLModel.metadata.sorted_tables))  # resolves every foreign key, as a flush does
"""


@pytest.mark.parametrize("module", COMPONENTS)
def test_a_component_engine_resolves_every_foreign_key(module):
    result = subprocess.run(
        [sys.executable, "-c", PROBE, module],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert int(result.stdout.strip()) >= 30
