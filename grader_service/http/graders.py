"""`POST /v1/fine_tuning/alpha/graders/run` and `/validate`, as OpenAI's Graders API.

Built-in graders run in the service process; Python graders run in the service's sandbox pools.
Both go through the same `LoadedGraders` (warm per tenant and spec version) and the same grading
queue (`Admission`) as the gRPC API, so the HTTP API adds no second path to the graders.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from ...core.records import GraderResult, Sample
from ...plugins.registry import GraderSpecError, grader_types, parse_spec
from ...sandbox.api import SandboxUnavailable
from ..runtime import Expired, QueueFull, ShuttingDown, safe_grade_batch
from ..store import content_version
from .context import Ctx, HttpContext, Tenant
from .errors import APIError, invalid

router = APIRouter()


class GraderRunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grader: dict[str, Any]
    model_sample: str
    item: Any = None


class GraderValidateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grader: dict[str, Any]


def checked_spec(
    spec: Any, *, strict: bool = False, param: str = "grader"
) -> tuple[dict[str, Any], list[str]]:
    """A grader spec validated for its type and reviewed (upload policy); 400 naming what is wrong."""
    try:
        parsed = parse_spec(spec)
        errors, warnings = grader_types()[parsed.type].review(parsed, strict=strict)
    except GraderSpecError as exc:
        raise invalid(str(exc), param=param, code="invalid_grader") from None
    if errors:
        raise invalid("; ".join(errors), param=param, code="invalid_grader")
    return spec, list(warnings)


def grade(
    ctx: HttpContext, tenant: str, spec: dict[str, Any], pairs: list[tuple[Sample, Any]]
) -> list[GraderResult]:
    """Grade `pairs` with `spec` for `tenant` through the shared queue and warm graders."""
    version = content_version(spec)
    try:
        with (
            ctx.admission.slot(ctx.settings.grade_timeout_s, tenant=tenant),
            ctx.graders.use(tenant, "http", version, spec) as grader,
        ):
            return safe_grade_batch(grader, pairs).to_results()
    except QueueFull as exc:
        raise APIError(429, str(exc), code="rate_limit_exceeded") from None
    except ShuttingDown as exc:
        raise APIError(503, str(exc), code="server_shutting_down") from None
    except Expired as exc:
        raise APIError(504, str(exc), code="timeout") from None
    except SandboxUnavailable as exc:
        raise APIError(
            503, f"Python graders cannot run on this server: {exc}", code="sandbox_unavailable"
        ) from None
    except GraderSpecError as exc:
        raise invalid(str(exc), param="grader", code="invalid_grader") from None


def run_result(result: GraderResult) -> dict[str, Any]:
    """OpenAI's grader run result (every error flag present) plus rftkit's `metadata.valid` and `passes`."""
    plain = result.to_plain()
    meta = plain["metadata"]
    usage = meta.get("token_usage")
    per_model: dict[str, Any] = {}
    if isinstance(usage, dict):
        per_model = {meta.get("sampled_model_name") or meta["name"]: usage}
        meta["token_usage"] = usage.get("total_tokens", sum(v for v in usage.values() if isinstance(v, int)))
    if meta.get("execution_time") != meta.get("execution_time"):  # NaN: not JSON
        meta["execution_time"] = 0.0
    meta["scores"] = {k: (None if v != v else v) for k, v in (meta.get("scores") or {}).items()}
    plain["sub_rewards"] = {k: (None if v != v else v) for k, v in plain["sub_rewards"].items()}
    plain["model_grader_token_usage_per_model"] = per_model
    return plain


@router.post("/fine_tuning/alpha/graders/run")
def run_grader(body: GraderRunRequest, ctx: Ctx, tenant: Tenant) -> dict[str, Any]:
    spec, _ = checked_spec(body.grader, strict=ctx.settings.strict_uploads)
    item = {} if body.item is None else body.item
    if not isinstance(item, dict):
        raise invalid(f"item must be a JSON object, got {type(item).__name__}", param="item")
    return run_result(grade(ctx, tenant, spec, [(Sample.from_text(body.model_sample), item)])[0])


@router.post("/fine_tuning/alpha/graders/validate")
def validate_grader(body: GraderValidateRequest, ctx: Ctx, tenant: Tenant) -> dict[str, Any]:
    spec, warnings = checked_spec(body.grader, strict=ctx.settings.strict_uploads)
    answer: dict[str, Any] = {"grader": spec}
    if warnings:
        answer["warnings"] = warnings
    return answer
