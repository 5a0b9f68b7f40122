"""Installed into every sandbox environment as `rftkit_sandbox_env` (with a .pth that installs it).

It knows the environment's image tag and packages (`rftkit_sandbox_env.json`, written beside it
by `rft sandbox build`) and makes a failed import say so: `import ast_grep_py` in an image that
lacks it raises ModuleNotFoundError("No module named 'ast_grep_py': the sandbox image
'2025-05-08' has no package that provides it ..."), same type and `name`, so code that catches
ImportError behaves as before. `importlib.util.find_spec` is untouched (it returns None as usual).

`python3 -m rftkit_sandbox_env` imports every package of the environment (the build's check);
`missing(names)` lists the top-level modules that cannot be found (the upload check).

This file is standalone: it runs inside the sandbox, where rftkit is not installed.
"""

from __future__ import annotations

import builtins
import importlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

INFO_FILE = Path(__file__).with_name("rftkit_sandbox_env.json")
_info: dict[str, Any] | None = None
_original_import = builtins.__import__


def info() -> dict[str, Any]:
    """{"image_tag": ..., "packages": {dist: version}, "modules": {module: dist}, "corpora": {...}}."""
    global _info
    if _info is None:
        try:
            _info = json.loads(INFO_FILE.read_text())
        except (OSError, ValueError):
            _info = {"image_tag": "unknown", "packages": {}, "modules": {}, "corpora": {}}
    return _info


def explain(module: str) -> str:
    """Why `module` cannot be imported here, and what to do about it."""
    data = info()
    tag = data.get("image_tag", "unknown")
    packages = ", ".join(f"{name}=={version}" for name, version in sorted(data.get("packages", {}).items()))
    return (
        f"No module named {module!r}: the sandbox image {tag!r} has no package that provides it "
        f"(its packages: {packages or 'none listed'}). Set the grader's image_tag to an image that "
        "has it, or build your own: `rft sandbox build --requirements FILE --image-tag NAME` "
        'and "image_tag": "NAME" in the grader'
    )


def _import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
    try:
        return _original_import(name, globals, locals, fromlist, level)
    except ModuleNotFoundError as exc:
        top = name.partition(".")[0]
        if level != 0 or exc.name != top or getattr(exc, "_rftkit_explained", False):
            raise
        better = ModuleNotFoundError(explain(top), name=exc.name, path=exc.path)
        better._rftkit_explained = True  # type: ignore[attr-defined]
        raise better.with_traceback(exc.__traceback__) from None


def install() -> None:
    """Route `import` through the explaining wrapper (once)."""
    if builtins.__import__ is not _import:
        builtins.__import__ = _import


def missing(names: list[str]) -> list[str]:
    """The top-level modules among `names` that this environment cannot import."""
    absent = []
    for name in names:
        try:
            if importlib.util.find_spec(name.partition(".")[0]) is None:
                absent.append(name)
        except (ImportError, ValueError):
            absent.append(name)
    return absent


def check() -> int:
    """Import every package's modules; print what failed. The exit status is the failure count."""
    failed = 0
    for module, dist in sorted(info().get("modules", {}).items()):
        try:
            importlib.import_module(module)
        except Exception as exc:  # a broken package, not a missing one: report it whole
            failed += 1
            print(f"{module} ({dist}): {type(exc).__name__}: {exc}", file=sys.stderr)
    corpora = info().get("corpora", {})
    print(f"image {info().get('image_tag')}: {len(info().get('modules', {}))} modules, corpora {corpora}")
    return failed


if __name__ == "__main__":
    sys.exit(min(check(), 100))
