"""Upload-time import check: which imports a grader needs, and asking a sandbox for them."""

from __future__ import annotations

import pytest
from rftkit.sandbox.imports import check_imports, imported_modules

SOURCE = """
import os, json
import numpy as np
from ast_grep_py import SgRoot
from . import sibling
import rdkit.Chem
try:
    import optional_accel
except ImportError:
    optional_accel = None


def grade(sample, item):
    import sqlparse
    return 1.0
"""


def test_imported_modules_skip_stdlib_relative_and_optional() -> None:
    assert imported_modules(SOURCE) == {"numpy": 3, "ast_grep_py": 4, "rdkit": 6, "sqlparse": 14}


def test_unknown_image_tag_is_an_error() -> None:
    errors, warnings = check_imports("import numpy\n", "2099-01-01")
    assert len(errors) == 1 and "unknown sandbox image tag '2099-01-01'" in errors[0] and not warnings


def test_missing_modules_are_errors_naming_the_image() -> None:
    # the process backend runs this interpreter: it has numpy and no module called like this
    errors, warnings = check_imports(
        "import numpy\nimport surely_not_a_module_xyz\n", "2025-05-08", backend="process"
    )
    assert not warnings
    assert len(errors) == 1 and errors[0].startswith("line 2: `import surely_not_a_module_xyz`")
    assert "sandbox image '2025-05-08'" in errors[0] and "--requirements" in errors[0]


def test_no_sandbox_means_a_warning_not_a_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    errors, warnings = check_imports("import numpy\n", backend="no-such-backend")
    assert not errors and len(warnings) == 1 and "not checked" in warnings[0]
    assert check_imports("x = 1\n") == ([], [])
