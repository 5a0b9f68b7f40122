"""Upload policy for Python graders: checks that run before any uploaded code is executed.

`check_source` looks at the text only (it never runs it): size, syntax, a top-level
`grade(sample, item)`, and a RestrictedPython pass plus an import scan that report risky
constructs (risky imports, dunder access, exec/eval, ...) as warnings, or as errors in strict mode.
"""

from __future__ import annotations

import ast
import re

from pydantic import BaseModel, Field
from RestrictedPython import compile_restricted_exec

from .api import SandboxLimits

RISKY_MODULES = frozenset(
    {
        "os",
        "sys",
        "subprocess",
        "socket",
        "ctypes",
        "cffi",
        "shutil",
        "signal",
        "multiprocessing",
        "threading",
        "_thread",
        "pty",
        "fcntl",
        "resource",
        "mmap",
        "importlib",
        "builtins",
        "marshal",
        "pickle",
        "gc",
        "inspect",
        "code",
        "urllib",
        "http",
        "ftplib",
        "smtplib",
        "telnetlib",
        "requests",
        "httpx",
        "asyncio",
        "ssl",
        "select",
        "selectors",
    }
)
RISKY_CALLS = frozenset({"exec", "eval", "compile", "__import__", "globals", "vars", "breakpoint", "open"})
# RestrictedPython messages about these are risky; its other findings (e.g. `_private` names,
# augmented item assignment) are reported as notes only, never refused.
_RP_RISKY = re.compile(r'"__\w*"|Exec calls|Eval calls|exec|eval', re.IGNORECASE)


class PolicyReport(BaseModel):
    """What the upload policy found; `ok` is False when any error was found."""

    ok: bool
    errors: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


def _check_grade_def(tree: ast.Module) -> str | None:
    for node in tree.body:
        if isinstance(node, ast.AsyncFunctionDef) and node.name == "grade":
            return "`grade` must be a plain function, not async"
        if isinstance(node, ast.FunctionDef) and node.name == "grade":
            positional = [*node.args.posonlyargs, *node.args.args]
            required_kwonly = [
                a.arg
                for a, default in zip(node.args.kwonlyargs, node.args.kw_defaults, strict=True)
                if default is None
            ]
            if len(positional) != 2:
                names = ", ".join(a.arg for a in positional) or "none"
                return f"`grade` must take exactly two positional arguments (sample, item); it takes: {names}"
            if required_kwonly:
                return f"`grade` has required keyword-only arguments: {', '.join(required_kwonly)}"
            return None
    return "the source defines no top-level function `grade(sample, item)`"


def _scan_risky(tree: ast.Module) -> list[str]:
    found: list[str] = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", "?")
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in RISKY_MODULES:
                    found.append(f"Line {line}: imports {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 0 and module.split(".")[0] in RISKY_MODULES:
                found.append(f"Line {line}: imports from {module}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in RISKY_CALLS:
            found.append(f"Line {line}: calls {node.func.id}()")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and re.fullmatch(r"__\w+__", node.value)
        ):
            found.append(f"Line {line}: dunder name in a string ({node.value!r})")
    return found


def _restricted_python_findings(source: str) -> tuple[list[str], list[str]]:
    """RestrictedPython's findings, split into (risky, notes)."""
    result = compile_restricted_exec(source, filename="grader.py")
    risky, notes = [], []
    for message in result.errors:
        (risky if _RP_RISKY.search(message) else notes).append(f"RestrictedPython: {message}")
    notes.extend(f"RestrictedPython: {message}" for message in result.warnings)
    return risky, notes


def check_source(source: str, *, strict: bool = False, limits: SandboxLimits | None = None) -> PolicyReport:
    """Check a grader's source without running it; strict mode refuses risky constructs."""
    limits = limits or SandboxLimits()
    size = len(source.encode("utf-8", "surrogatepass"))
    if size > limits.source_max_bytes:
        return PolicyReport(
            ok=False, errors=[f"source is {size} bytes; the limit is {limits.source_max_bytes} bytes"]
        )
    try:
        tree = ast.parse(source, filename="grader.py")
    except SyntaxError as exc:
        return PolicyReport(ok=False, errors=[f"syntax error at line {exc.lineno}: {exc.msg}"])
    except ValueError as exc:  # e.g. null bytes
        return PolicyReport(ok=False, errors=[f"source cannot be parsed: {exc}"])
    errors: list[str] = []
    grade_problem = _check_grade_def(tree)
    if grade_problem:
        errors.append(grade_problem)
    risky = _scan_risky(tree)
    rp_risky, notes = _restricted_python_findings(source)
    risky = list(dict.fromkeys([*risky, *rp_risky]))
    warnings = list(notes)
    if strict:
        errors.extend(f"refused in strict mode: {message}" for message in risky)
    else:
        warnings = risky + warnings
    return PolicyReport(ok=not errors, errors=errors, warnings=warnings)
