"""`rft train CONFIG --check`: everything a run needs, checked without starting an engine.

The config validates (done by `load_config`), the grader file loads and its spec passes the
same checks as `rft graders validate` (for a type installed here), both datasets load with no
bad line and share no answers; the resolved plan (steps, batch size, samples per prompt) is
reported. Nothing is trained, no model is loaded, no service is started.
"""

from __future__ import annotations

from typing import Any

from ..grading.session import check_spec
from ..plugins.registry import grader_types, parse_spec
from .config import RunConfig
from .data.run_data import load_run_data
from .grader import load_spec
from .resolve import resolve


class CheckFailed(ValueError):
    """The run could not start; the message says what to fix."""


def check_run(config: RunConfig) -> dict[str, Any]:
    """A report of what the run would use; CheckFailed (or the loaders' own errors) when it cannot run."""
    spec = load_spec(config.grader)
    remote = config.grader.address is not None
    check_spec(spec, remote=remote)
    warnings: list[str] = []
    if spec.get("type") in grader_types():
        parsed = parse_spec(spec)
        errors, warnings = grader_types()[parsed.type].review(parsed)
        if errors:
            raise CheckFailed(f"grader {parsed.name!r}: " + "; ".join(errors))
    train, valid = load_run_data(config.data, config.eval)
    plan = resolve(config, len(train))
    return {
        "grader": {"type": spec.get("type"), "name": spec.get("name"), "warnings": warnings},
        "train_lines": len(train),
        "valid_lines": len(valid),
        "plan": plan.model_dump(),
    }
