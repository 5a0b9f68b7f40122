"""The module every sandbox environment carries: a missing import names the package and the image."""

from __future__ import annotations

import builtins
import contextlib
import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from rftkit.sandbox import paths

INFO = {"image_tag": "2025-05-08", "packages": {"numpy": "2.2.4"}, "modules": {"numpy": "numpy"}}


@pytest.fixture
def env(tmp_path: Path) -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("env_under_test", paths.PACKAGE_DIR / "env_module.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    info = tmp_path / "info.json"
    info.write_text(json.dumps(INFO))
    module.INFO_FILE = info
    original = builtins.__import__
    module.install()
    try:
        yield module
    finally:
        builtins.__import__ = original


def test_missing_import_names_the_module_the_image_and_the_fix(env: ModuleType) -> None:
    with pytest.raises(ModuleNotFoundError) as info:
        import ast_grep_py_not_here  # noqa: F401
    message = str(info.value)
    assert info.value.name == "ast_grep_py_not_here"
    assert "'ast_grep_py_not_here'" in message and "'2025-05-08'" in message
    assert "numpy==2.2.4" in message and "rft sandbox build --requirements" in message


def test_optional_imports_and_find_spec_behave_as_before(env: ModuleType) -> None:
    with contextlib.suppress(ImportError):
        import not_installed_optional  # noqa: F401
    assert importlib.util.find_spec("not_installed_optional") is None
    with pytest.raises(ModuleNotFoundError) as info:  # a missing submodule is not the package's absence
        import json.not_a_submodule  # noqa: F401
    assert "sandbox image" not in str(info.value)
    assert env.missing(["json", "not_installed_optional"]) == ["not_installed_optional"]
