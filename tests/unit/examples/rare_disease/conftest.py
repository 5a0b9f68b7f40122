"""Fixtures for the rare-disease example tests: the build script as a module, the shared cases."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[4]
BUILD_SCRIPT = REPO / "examples" / "rare_disease" / "build.py"
CASES = REPO / ".." / "shared" / "data" / "phenopackets.jsonl"


@pytest.fixture(scope="session")
def build_script() -> Path:
    return BUILD_SCRIPT


@pytest.fixture(scope="session")
def build_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rare_disease_build", BUILD_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def cases_path() -> Path:
    if not CASES.is_file():
        pytest.skip(f"the shared phenopacket cases are not at {CASES}")
    return CASES
