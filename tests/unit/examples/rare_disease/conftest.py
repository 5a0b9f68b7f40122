"""Fixtures for the rare-disease example tests: the build script as a module, the shared cases."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[4]
BUILD_SCRIPT = REPO / "examples" / "rare_disease" / "build.py"
CASES = REPO / ".." / "shared" / "data" / "phenopackets.jsonl"


@pytest.fixture(scope="session")
def build_script() -> Path:
    return BUILD_SCRIPT


def load_example_script(name: str) -> ModuleType:
    """Import examples/rare_disease/NAME.py (a script, not a package module)."""
    spec = importlib.util.spec_from_file_location(
        f"rare_disease_{name}", BUILD_SCRIPT.with_name(f"{name}.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def example_script() -> Callable[[str], ModuleType]:
    return load_example_script


@pytest.fixture(scope="session")
def build_module() -> ModuleType:
    return load_example_script("build")


@pytest.fixture(scope="session")
def cases_path() -> Path:
    if not CASES.is_file():
        pytest.skip(f"the shared phenopacket cases are not at {CASES}")
    return CASES
