"""`/v1/fine_tuning/jobs`: reinforcement jobs (create, list, retrieve, cancel, pause, resume), their
events and checkpoints, as OpenAI's fine-tuning API. The runner (runner.py) trains them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from .context import Ctx, HttpContext, Tenant
from .db import CheckpointRow, EventRow, JobRow, list_object, new_id, now, page
from .errors import APIError, invalid, not_found
from .files import owned_file
from .graders import checked_spec
from .jobconfig import answer_fields, base_defaults, build_config, check_overlap, write_data

router = APIRouter()
ACTIVE = ("validating_files", "queued", "running", "paused")
FINISHED = ("succeeded", "failed", "cancelled")


class Reinforcement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grader: dict[str, Any]
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    response_format: dict[str, Any] | None = None


class Method(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: Literal["supervised", "dpo", "reinforcement"]
    reinforcement: Reinforcement | None = None


class RftkitOptions(BaseModel):
    """rftkit's own extension of the request (`extra_body={"rftkit": {...}}`)."""

    model_config = ConfigDict(extra="forbid")

    overrides: dict[str, Any] = Field(default_factory=dict)  # e.g. {"trainer.max_steps": 4}


class JobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    training_file: str
    validation_file: str | None = None
    method: Method | None = None
    hyperparameters: dict[str, Any] | None = None  # deprecated top-level form; not for reinforcement
    seed: int | None = None
    suffix: str | None = Field(None, max_length=64, pattern=r"^[A-Za-z0-9_-]*$")
    metadata: dict[str, str] | None = None
    integrations: list[dict[str, Any]] | None = None
    rftkit: RftkitOptions = Field(default_factory=RftkitOptions)


def job_object(job: JobRow) -> dict[str, Any]:
    """OpenAI's fine_tuning.job object."""
    reinforcement = job.method.get("reinforcement") or {}
    hp = reinforcement.get("hyperparameters") or {}
    return {
        "id": job.id,
        "object": "fine_tuning.job",
        "created_at": job.created_at,
        "error": job.error,
        "fine_tuned_model": job.fine_tuned_model,
        "finished_at": job.finished_at,
        "hyperparameters": {
            k: hp.get(k, "auto") for k in ("batch_size", "learning_rate_multiplier", "n_epochs")
        },
        "model": job.model,
        "organization_id": job.tenant,
        "result_files": [],
        "seed": job.seed,
        "status": job.status,
        "trained_tokens": job.trained_tokens,
        "training_file": job.training_file,
        "validation_file": job.validation_file,
        "estimated_finish": None,
        "integrations": [],
        "metadata": job.job_metadata,
        "method": job.method,
        "user_provided_suffix": job.suffix,
    }


def add_event(session: Any, job_id: str, message: str, *, level: str = "info", **extra: Any) -> None:
    session.add(
        EventRow(
            id=new_id("ftevent-"), job_id=job_id, created_at=now(), level=level, message=message, **extra
        )
    )


def _job(ctx: HttpContext, tenant: str, job_id: str) -> JobRow:
    with ctx.db.session() as session:
        job = session.scalar(select(JobRow).where(JobRow.id == job_id, JobRow.tenant == tenant))
    if job is None:
        raise not_found("fine-tuning job", job_id, param="fine_tuning_job_id")
    return job


def _wake(ctx: HttpContext) -> None:
    if ctx.runner is not None:
        ctx.runner.wake()


@router.post("/fine_tuning/jobs")
def create_job(body: JobCreate, ctx: Ctx, tenant: Tenant) -> dict[str, Any]:
    method = body.method
    if method is None or method.type != "reinforcement":
        kind = method.type if method else "supervised"
        raise invalid(
            f"method.type {kind!r} is not supported: rftkit fine-tunes with reinforcement only; send "
            'method={"type": "reinforcement", "reinforcement": {"grader": {...}}}',
            param="method.type",
            code="unsupported_method",
        )
    if method.reinforcement is None:
        raise invalid("method.reinforcement (with a grader) is required", param="method.reinforcement")
    if body.hyperparameters:
        raise invalid(
            "top-level hyperparameters are for supervised jobs; "
            "put them in method.reinforcement.hyperparameters",
            param="hyperparameters",
        )
    source = ctx.settings.base_models.get(body.model)
    if source is None:
        known = (
            ", ".join(sorted(ctx.settings.base_models))
            or "none (start rft serve with --base-model NAME=SOURCE)"
        )
        message = f"model {body.model!r} is not a base model of this server; available: {known}"
        raise invalid(message, param="model", code="model_not_found")
    if body.validation_file is None:
        raise invalid(
            "validation_file is required: a reinforcement job validates on held-out items whose answers "
            "are not in the training file",
            param="validation_file",
        )
    grader, _ = checked_spec(method.reinforcement.grader, strict=ctx.settings.strict_uploads,
                             param="method.reinforcement.grader")  # fmt: skip
    train_row = owned_file(ctx, tenant, body.training_file, "training_file")
    valid_row = owned_file(ctx, tenant, body.validation_file, "validation_file")
    for row, param in ((train_row, "training_file"), (valid_row, "validation_file")):
        if row.purpose != "fine-tune":
            raise invalid(
                f"file {row.id} has purpose {row.purpose!r}; upload it with purpose 'fine-tune'", param=param
            )
    with ctx.db.session() as session:
        active = session.scalar(
            select(func.count()).select_from(JobRow).where(JobRow.tenant == tenant, JobRow.status.in_(ACTIVE))
        )
    limit = ctx.settings.max_active_jobs_per_tenant
    if active >= limit:
        raise APIError(429, f"this tenant already has {active} active jobs (the limit is {limit}); "
                       "wait for one to finish or cancel one", code="rate_limit_exceeded")  # fmt: skip
    try:
        defaults = base_defaults(source)
    except (OSError, ValueError) as exc:
        raise APIError(500, f"base model {body.model!r} cannot be used: {exc}", type="server_error") from None
    check_overlap(ctx.files.path(train_row.sha256), ctx.files.path(valid_row.sha256),
                  answer_fields(grader, defaults, body.metadata))  # fmt: skip
    job_id = new_id("ftjob-")
    run_dir = ctx.settings.root / "jobs" / job_id
    train, valid = run_dir / "data" / "train.jsonl", run_dir / "data" / "valid.jsonl"
    seed = body.seed if body.seed is not None else 42
    config = build_config(
        defaults, train_file=train, valid_file=valid, grader=grader,
        hyperparameters=method.reinforcement.hyperparameters, seed=seed, sandbox=ctx.settings.sandbox,
        overrides=body.rftkit.overrides,
    )  # fmt: skip
    response_format = method.reinforcement.response_format
    write_data(ctx.files.path(train_row.sha256), train, response_format)
    write_data(ctx.files.path(valid_row.sha256), valid, response_format)
    _write_yaml(run_dir / "config.yaml", config)
    method_json = method.model_dump(mode="json", exclude_none=True)
    job = JobRow(
        id=job_id, tenant=tenant, model=body.model, status="queued", training_file=train_row.id,
        validation_file=valid_row.id, method=method_json, seed=seed, suffix=body.suffix or None,
        job_metadata=body.metadata, overrides=body.rftkit.overrides, created_at=now(), run_dir=str(run_dir),
        last_step=-1,
    )  # fmt: skip
    with ctx.db.session() as session:
        session.add(job)
        session.flush()
        add_event(session, job_id, f"Created fine-tuning job: {job_id}")
        add_event(session, job_id, "Validating training file and validation file: files are valid")
        add_event(session, job_id, "Job queued")
    _wake(ctx)
    return job_object(job)


def _write_yaml(path: Path, data: dict[str, Any]) -> None:
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


@router.get("/fine_tuning/jobs")
def list_jobs(
    ctx: Ctx, tenant: Tenant, after: str | None = None, limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:  # fmt: skip
    with ctx.db.session() as session:
        rows, more = page(
            session, JobRow, [JobRow.tenant == tenant], after=after, limit=limit, newest_first=True
        )
        return list_object([job_object(r) for r in rows], more)


@router.get("/fine_tuning/jobs/{job_id}")
def retrieve_job(job_id: str, ctx: Ctx, tenant: Tenant) -> dict[str, Any]:
    return job_object(_job(ctx, tenant, job_id))


def _transition(ctx: HttpContext, tenant: str, job_id: str, action: str) -> dict[str, Any]:
    with ctx.db.session() as session:
        job = session.scalar(
            select(JobRow).where(JobRow.id == job_id, JobRow.tenant == tenant).with_for_update()
        )
        if job is None:
            raise not_found("fine-tuning job", job_id, param="fine_tuning_job_id")
        status = job.status
        if action == "cancel":
            if status in FINISHED:
                raise invalid(
                    f"job {job_id} is already {status} and cannot be cancelled", param="fine_tuning_job_id"
                )
            job.status, job.requested, job.finished_at = "cancelled", "cancel", now()
            add_event(session, job_id, "Job cancelled")
        elif action == "pause":
            if status == "running":
                job.requested = "pause"
                add_event(session, job_id, "Pause requested: the job stops after its next checkpoint")
            elif status == "queued":
                job.status = "paused"
                add_event(session, job_id, "Job paused")
            elif status != "paused":
                raise invalid(f"job {job_id} is {status} and cannot be paused", param="fine_tuning_job_id")
        elif action == "resume":
            if status == "paused":
                job.status, job.requested = "queued", None
                add_event(session, job_id, "Job resumed: queued to continue from its last checkpoint")
            elif status == "running" and job.requested == "pause":
                job.requested = None
                add_event(session, job_id, "Pause withdrawn: the job keeps running")
            else:
                raise invalid(f"job {job_id} is {status}, not paused", param="fine_tuning_job_id")
        answer = job_object(job)
    _wake(ctx)
    return answer


@router.post("/fine_tuning/jobs/{job_id}/cancel")
def cancel_job(job_id: str, ctx: Ctx, tenant: Tenant) -> dict[str, Any]:
    return _transition(ctx, tenant, job_id, "cancel")


@router.post("/fine_tuning/jobs/{job_id}/pause")
def pause_job(job_id: str, ctx: Ctx, tenant: Tenant) -> dict[str, Any]:
    return _transition(ctx, tenant, job_id, "pause")


@router.post("/fine_tuning/jobs/{job_id}/resume")
def resume_job(job_id: str, ctx: Ctx, tenant: Tenant) -> dict[str, Any]:
    return _transition(ctx, tenant, job_id, "resume")


@router.get("/fine_tuning/jobs/{job_id}/events")
def list_events(
    job_id: str, ctx: Ctx, tenant: Tenant, after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 20,
) -> dict[str, Any]:  # fmt: skip
    _job(ctx, tenant, job_id)
    with ctx.db.session() as session:
        rows, more = page(
            session, EventRow, [EventRow.job_id == job_id], after=after, limit=limit, newest_first=True
        )
        return list_object([r.to_api() for r in rows], more)


@router.get("/fine_tuning/jobs/{job_id}/checkpoints")
def list_checkpoints(
    job_id: str, ctx: Ctx, tenant: Tenant, after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> dict[str, Any]:  # fmt: skip
    _job(ctx, tenant, job_id)
    where = [CheckpointRow.job_id == job_id, CheckpointRow.deleted.is_(False)]
    with ctx.db.session() as session:
        rows, more = page(session, CheckpointRow, where, after=after, limit=limit, newest_first=True)
        return list_object([r.to_api() for r in rows], more)
