"""Upload-time check that a Python grader's imports exist in the sandbox image it will run in.

`check_imports(source, image_tag)` reads the source's import statements (without running it),
then asks a sandbox worker of that image which of the imported top-level modules it cannot find
(`importlib.util.find_spec`, which imports nothing but parent packages). Imports inside a `try`
that catches ImportError are optional and not reported.
"""

from __future__ import annotations

import ast
import sys
from typing import Any

from . import paths

_OPTIONAL = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}
CHECKER_SOURCE = """\
import importlib.util


def grade(sample, item):
    missing = []
    for name in item["modules"]:
        try:
            if importlib.util.find_spec(name) is None:
                missing.append(name)
        except (ImportError, ValueError):
            missing.append(name)
    return missing
"""


def _catches_import_errors(node: ast.Try) -> bool:
    for handler in node.handlers:
        if handler.type is None:
            return True
        kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        if any(isinstance(kind, ast.Name) and kind.id in _OPTIONAL for kind in kinds):
            return True
    return False


def imported_modules(source: str) -> dict[str, int]:
    """Top-level module -> first line importing it, for the non-optional, non-stdlib imports."""
    tree = ast.parse(source)
    optional: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and _catches_import_errors(node):
            optional.update(id(inner) for stmt in node.body for inner in ast.walk(stmt))
    found: dict[str, int] = {}
    for node in ast.walk(tree):
        if id(node) in optional:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.partition(".")[0]
            if top not in sys.stdlib_module_names and top not in found:
                found[top] = node.lineno
    return dict(sorted(found.items(), key=lambda kv: kv[1]))


def check_imports(
    source: str, image_tag: str | None = None, *, backend: str = "auto"
) -> tuple[list[str], list[str]]:
    """(errors, warnings): an error per imported module the tag's image lacks; a warning when it
    could not be checked (no sandbox here, or the image is not built)."""
    try:
        modules = imported_modules(source)
    except SyntaxError:
        return [], []  # the upload policy reports syntax errors
    try:
        tag = paths.resolve_tag(image_tag)
    except paths.UnknownImageTag as exc:
        return [str(exc)], []
    if not modules:
        return [], []
    if backend != "process" and not paths.venv_ready(tag):
        return [], [
            f"the imports ({', '.join(modules)}) were not checked: the sandbox image {tag!r} is not "
            f"built here (run `rft sandbox build --image-tag {tag}`)"
        ]
    try:
        missing = _missing_in_sandbox(list(modules), tag, backend)
    except Exception as exc:  # no sandbox, an image not built: say so, do not refuse the upload
        return [], [f"the imports ({', '.join(modules)}) were not checked in the sandbox: {exc}"]
    errors = [
        f"line {modules[name]}: `import {name}`: the sandbox image {tag!r} has no module {name!r}. "
        "Set the grader's image_tag to an image that has it (`rft sandbox status` lists them), or "
        "build your own: `rft sandbox build --requirements FILE --image-tag NAME`"
        for name in missing
    ]
    return errors, []


def _missing_in_sandbox(modules: list[str], tag: str, backend: str) -> list[str]:
    from .pools import get_pool

    pool = get_pool(
        tenant="rftkit-upload-check",
        grader_id="imports",
        version=tag,
        source=CHECKER_SOURCE,
        backend=backend,
        limits={"image_tag": tag, "workers": 1},
    )
    try:
        outcome: Any = pool.grade([({}, {"modules": modules})])[0]
    finally:
        pool.close()
    if outcome.error is not None or not isinstance(outcome.value, list):
        raise RuntimeError(outcome.details or f"the sandbox answered {outcome.value!r}")
    return [name for name in outcome.value if isinstance(name, str)]
