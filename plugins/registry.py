"""Find grader types through the entry-point group `rftkit.graders` and build graders from specs."""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from typing import Any

from pydantic import ValidationError

from .base import DeclaredMetrics, Grader, GraderContext, GraderSpec

ENTRY_POINT_GROUP = "rftkit.graders"


class GraderSpecError(ValueError):
    """A grader spec that cannot be used; the message says what to fix."""


@cache
def grader_types() -> dict[str, type[Grader]]:
    """Every installed grader type by its type name (built-ins register the same way as add-ons)."""
    found: dict[str, type[Grader]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        cls = ep.load()
        if not (isinstance(cls, type) and issubclass(cls, Grader)):
            raise TypeError(f"entry point {ep.name} = {ep.value} is not a rftkit Grader subclass")
        found[ep.name] = cls
    return found


def explain(exc: ValidationError) -> str:
    """Pydantic's errors as one line each: `field.path: what is wrong`."""
    lines = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "spec"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field (not part of this grader type)"
        lines.append(f"{where}: {message}")
    return "; ".join(lines)


def parse_spec(data: dict[str, Any]) -> GraderSpec:
    """Validate a grader spec (OpenAI's grader JSON) against its type's model."""
    if not isinstance(data, dict):
        raise GraderSpecError(f"a grader spec must be a JSON object, got {type(data).__name__}")
    type_name = data.get("type")
    types = grader_types()
    if type_name not in types:
        known = ", ".join(sorted(types))
        raise GraderSpecError(f"unknown grader type {type_name!r}; installed types: {known}")
    try:
        return types[type_name].spec_model.model_validate(data)
    except ValidationError as exc:
        raise GraderSpecError(f"invalid {type_name} grader spec: {explain(exc)}") from exc


def build_grader(spec: GraderSpec | dict[str, Any], context: GraderContext | None = None) -> Grader:
    """Build a ready grader from a spec (a dict is validated first)."""
    if isinstance(spec, dict):
        spec = parse_spec(spec)
    context = context or GraderContext()
    context.build = build_grader
    return grader_types()[spec.type](spec, context)


def describe_types() -> list[dict[str, Any]]:
    """Every entry point in the group, for `rft graders types`: name, target, distribution, summary.

    A plugin that fails to load is listed with its error instead of breaking the listing.
    """
    described = []
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        entry: dict[str, Any] = {
            "name": ep.name,
            "target": ep.value,
            "distribution": ep.dist.name if ep.dist is not None else None,
        }
        try:
            cls = ep.load()
        except Exception as exc:
            entry["error"] = f"cannot load: {type(exc).__name__}: {exc}"
        else:
            if isinstance(cls, type) and issubclass(cls, Grader):
                entry["summary"] = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
            else:
                entry["error"] = "not a rftkit Grader subclass"
        described.append(entry)
    return described


def declared_metrics(spec: GraderSpec | dict[str, Any]) -> DeclaredMetrics:
    """The scores and pass flags a spec's results carry (evals and the report show these)."""
    if isinstance(spec, dict):
        spec = parse_spec(spec)
    return grader_types()[spec.type].declared_metrics(spec)
