"""`/v1/evals`: evals (create, list, retrieve, update, delete), their runs and the runs' output items,
as OpenAI's Evals API. The eval runner (evalrunner.py) carries the runs out with `rft eval`'s code.

- `data_source_config`: `custom` (an `item_schema`; `include_sample_schema` when runs generate
  samples) or `stored_completions` / `logs` (accepted; their runs need a jsonl or completions source).
- `testing_criteria`: graders (OpenAI's grader JSON, each with a unique `name`); an output item passes
  when every criterion passes (the grader's own pass rule: `pass_threshold`, else a reward of 1).
- runs: `{"type": "jsonl", "source": ...}` grades the lines' `sample` (or the item alone);
  `{"type": "completions", "source": ..., "input_messages": ..., "model": ...}` has `model` answer
  first: a base or fine-tuned model of this server (by name), a local model directory, or an
  OpenAI-compatible URL (`https://host/v1#model-id`). The items are frozen when the run is created.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from .context import Ctx, HttpContext, Tenant
from .db import EvalRow, EvalRunRow, OutputItemRow, list_object, new_id, now, page
from .errors import APIError, invalid, not_found
from .files import owned_file
from .graders import checked_spec

router = APIRouter()
RUN_ACTIVE = ("queued", "in_progress")
RUN_FINISHED = ("completed", "failed", "canceled")
MAX_INLINE_ITEMS = 10000
SAMPLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "model": {"type": "string"},
        "choices": {"type": "array"},
        "output_text": {"type": "string"},
        "output_json": {"type": "object"},
        "output_tools": {"type": "array"},
    },
    "required": ["model", "choices"],
}


class EvalCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data_source_config: dict[str, Any]
    testing_criteria: list[dict[str, Any]] = Field(min_length=1)
    name: str | None = Field(None, max_length=512)
    metadata: dict[str, str] | None = None


class EvalUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=512)
    metadata: dict[str, str] | None = None


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data_source: dict[str, Any]
    name: str | None = Field(None, max_length=512)
    metadata: dict[str, str] | None = None


# -- evals ------------------------------------------------------------------------------------------


def _config(config: dict[str, Any]) -> dict[str, Any]:
    """The eval's data_source_config as OpenAI answers it (with the JSON schema of a line)."""
    kind = config.get("type")
    if kind == "custom":
        item_schema = config.get("item_schema")
        if not isinstance(item_schema, dict):
            raise invalid("data_source_config.item_schema (a JSON schema object) is required",
                          param="data_source_config.item_schema")  # fmt: skip
        try:
            from jsonschema import Draft202012Validator
            from jsonschema.exceptions import SchemaError

            Draft202012Validator.check_schema(item_schema)
        except SchemaError as exc:
            raise invalid(f"data_source_config.item_schema is not a JSON schema: {exc.message}",
                          param="data_source_config.item_schema") from None  # fmt: skip
        properties: dict[str, Any] = {"item": item_schema}
        if config.get("include_sample_schema"):
            properties["sample"] = SAMPLE_SCHEMA
        schema = {"type": "object", "properties": properties, "required": list(properties)}
        return {"type": "custom", "schema": schema}
    if kind in ("stored_completions", "logs"):
        schema = {"type": "object", "properties": {"item": {"type": "object"}, "sample": SAMPLE_SCHEMA},
                  "required": ["item", "sample"]}  # fmt: skip
        return {"type": kind, "metadata": config.get("metadata"), "schema": schema}
    raise invalid(
        f"data_source_config.type {kind!r} is not supported; use 'custom' (with an item_schema), "
        "'stored_completions' or 'logs'",
        param="data_source_config.type",
    )


def _criteria(ctx: HttpContext, criteria: list[dict[str, Any]]) -> list[dict[str, Any]]:
    names: set[str] = set()
    checked = []
    for index, spec in enumerate(criteria):
        param = f"testing_criteria[{index}]"
        if not isinstance(spec.get("name"), str) or not spec["name"]:
            raise invalid("every testing criterion needs a name", param=f"{param}.name")
        if spec["name"] in names:
            raise invalid(f"testing criterion name {spec['name']!r} is used twice", param=f"{param}.name")
        names.add(spec["name"])
        checked.append(checked_spec(spec, strict=ctx.settings.strict_uploads, param=param)[0])
    return checked


def eval_object(row: EvalRow) -> dict[str, Any]:
    return {
        "object": "eval",
        "id": row.id,
        "name": row.name,
        "data_source_config": row.data_source_config,
        "testing_criteria": row.testing_criteria,
        "created_at": row.created_at,
        "metadata": row.eval_metadata,
    }


def _eval(ctx: HttpContext, tenant: str, eval_id: str) -> EvalRow:
    with ctx.db.session() as session:
        row = session.scalar(
            select(EvalRow).where(EvalRow.id == eval_id, EvalRow.tenant == tenant, EvalRow.deleted.is_(False))
        )
    if row is None:
        raise not_found("eval", eval_id, param="eval_id")
    return row


@router.post("/evals")
def create_eval(body: EvalCreate, ctx: Ctx, tenant: Tenant) -> dict[str, Any]:
    row = EvalRow(
        id=new_id("eval_"),
        tenant=tenant,
        name=body.name or "eval",
        data_source_config=_config(body.data_source_config),
        testing_criteria=_criteria(ctx, body.testing_criteria),
        eval_metadata=body.metadata,
        created_at=now(),
        deleted=False,
    )
    with ctx.db.session() as session:
        session.add(row)
    return eval_object(row)


@router.get("/evals")
def list_evals(
    ctx: Ctx, tenant: Tenant, after: str | None = None, limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Annotated[str, Query(pattern="^(asc|desc)$")] = "asc",
    order_by: Annotated[str, Query(pattern="^(created_at|updated_at)$")] = "created_at",
) -> dict[str, Any]:  # fmt: skip
    with ctx.db.session() as session:
        where = [EvalRow.tenant == tenant, EvalRow.deleted.is_(False)]
        rows, more = page(session, EvalRow, where, after=after, limit=limit, newest_first=order == "desc")
        return list_object([eval_object(r) for r in rows], more)


@router.get("/evals/{eval_id}")
def retrieve_eval(eval_id: str, ctx: Ctx, tenant: Tenant) -> dict[str, Any]:
    return eval_object(_eval(ctx, tenant, eval_id))


@router.post("/evals/{eval_id}")
def update_eval(eval_id: str, body: EvalUpdate, ctx: Ctx, tenant: Tenant) -> dict[str, Any]:
    found = _eval(ctx, tenant, eval_id)
    with ctx.db.session() as session:
        row = session.get(EvalRow, found.seq)
        assert row is not None
        if body.name is not None:
            row.name = body.name
        if body.metadata is not None:
            row.eval_metadata = body.metadata
        return eval_object(row)


@router.delete("/evals/{eval_id}")
def delete_eval(eval_id: str, ctx: Ctx, tenant: Tenant) -> dict[str, Any]:
    found = _eval(ctx, tenant, eval_id)
    with ctx.db.session() as session:
        row = session.get(EvalRow, found.seq)
        assert row is not None
        row.deleted = True
        for run in session.scalars(
            select(EvalRunRow).where(EvalRunRow.eval_id == eval_id, EvalRunRow.status.in_(RUN_ACTIVE))
        ):
            run.status, run.finished_at = "canceled", now()
    _wake(ctx)
    return {"object": "eval.deleted", "deleted": True, "eval_id": eval_id}


# -- runs --------------------------------------------------------------------------------------------


def _lines(ctx: HttpContext, tenant: str, source: dict[str, Any], param: str) -> list[dict[str, Any]]:
    """The run's lines as `{"item": ..., "sample": ...}` from inline content or an uploaded file.

    A file line without `item` is an item itself (so an RFT dataset file can be evaluated as is).
    """
    kind = source.get("type")
    if kind == "file_content":
        content = source.get("content")
        if not isinstance(content, list) or not content:
            raise invalid(
                'source.content must be a non-empty list of {"item": {...}}', param=f"{param}.content"
            )
        raw = content
    elif kind == "file_id":
        row = owned_file(ctx, tenant, str(source.get("id")), f"{param}.id")
        raw = []
        with ctx.files.path(row.sha256).open(encoding="utf-8") as handle:
            for text in handle:
                if text.strip():
                    line = json.loads(text)
                    raw.append(line if isinstance(line.get("item"), dict) else {"item": line})
    elif kind == "stored_completions":
        raise invalid("stored completions are not kept by rftkit; give the items as file_content or file_id",
                      param=f"{param}.type", code="unsupported_source")  # fmt: skip
    else:
        raise invalid(
            f"source.type {kind!r} is not supported; use 'file_content' or 'file_id'", param=f"{param}.type"
        )
    if len(raw) > MAX_INLINE_ITEMS:
        raise invalid(f"a run takes at most {MAX_INLINE_ITEMS} items, got {len(raw)}", param=param)
    lines = []
    for number, line in enumerate(raw):
        if not isinstance(line, dict) or not isinstance(line.get("item"), dict):
            raise invalid(f'line {number}: expected {{"item": {{...}}}}', param=f"{param}.content[{number}]")
        sample = line.get("sample")
        if sample is not None and not isinstance(sample, dict):
            raise invalid(
                f"line {number}: sample must be an object", param=f"{param}.content[{number}].sample"
            )
        lines.append({"item": line["item"], "sample": sample})
    return lines


def _check_items(config: dict[str, Any], lines: list[dict[str, Any]], param: str) -> None:
    if config.get("type") != "custom":
        return
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(config["schema"]["properties"]["item"])
    for number, line in enumerate(lines):
        error = next(iter(validator.iter_errors(line["item"])), None)
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "item"
            raise invalid(f"line {number}: {where}: {error.message} (the eval's item_schema)",
                          param=f"{param}.content[{number}]", code="invalid_item")  # fmt: skip


def model_target(ctx: HttpContext, tenant: str, model: str) -> str | None:
    """What the eval's model answers through (`rft eval --model` form): None for this server's own
    models (their runs call its chat completions), else the URL or the model directory as given."""
    from .chat import model_dir

    if model.startswith(("http://", "https://")):
        return f"model={model}"
    if model in ctx.settings.base_models or model.startswith("ft:"):
        model_dir(ctx, tenant, model)  # 404 for a model this tenant cannot use
        return None
    path = Path(model).expanduser()
    if path.is_absolute() and (path / "config.json").is_file():
        if path.resolve().is_relative_to(ctx.settings.data_dir.resolve()):  # other tenants' runs live there
            raise invalid(
                "a model directory inside the server's data dir is not allowed; name the model instead "
                "(ft:... for a fine-tuned model or checkpoint)",
                param="data_source.model",
            )
        return f"model={path}"
    known = ", ".join(sorted(ctx.settings.base_models)) or "none"
    raise APIError(
        404,
        f"model {model!r} is neither a model of this server (base models: {known}; fine-tuned: ft:...), "
        "an absolute path to a model directory, nor an http(s) URL of an OpenAI-compatible API",
        param="data_source.model",
        code="model_not_found",
    )


def _input_messages(spec: Any) -> dict[str, Any]:
    if not isinstance(spec, dict) or spec.get("type") not in ("template", "item_reference"):
        raise invalid("input_messages must be {\"type\": \"template\", \"template\": [...]} or "
                      "{\"type\": \"item_reference\", \"item_reference\": \"item.messages\"}",
                      param="data_source.input_messages")  # fmt: skip
    if spec["type"] == "template" and not (isinstance(spec.get("template"), list) and spec["template"]):
        raise invalid("input_messages.template must be a non-empty list of messages",
                      param="data_source.input_messages.template")  # fmt: skip
    if spec["type"] == "item_reference" and not str(spec.get("item_reference", "")).startswith("item."):
        raise invalid("input_messages.item_reference must name an item field (item.messages)",
                      param="data_source.input_messages.item_reference")  # fmt: skip
    return spec


SAMPLING_KEYS = ("temperature", "max_completion_tokens", "top_p", "seed")


def run_object(row: EvalRunRow) -> dict[str, Any]:
    return {
        "object": "eval.run",
        "id": row.id,
        "eval_id": row.eval_id,
        "name": row.name,
        "model": row.model or "",
        "status": row.status,
        "created_at": row.created_at,
        "data_source": row.data_source,
        "metadata": row.run_metadata,
        "error": row.error or {"code": "", "message": ""},
        "result_counts": row.result_counts or {"total": 0, "errored": 0, "failed": 0, "passed": 0},
        "per_testing_criteria_results": row.per_testing_criteria_results or [],
        "per_model_usage": row.per_model_usage or [],
        "report_url": f"/evals/{row.eval_id}/runs/{row.id}",
    }


def _wake(ctx: HttpContext) -> None:
    if ctx.eval_runner is not None:
        ctx.eval_runner.wake()


@router.post("/evals/{eval_id}/runs")
def create_run(eval_id: str, body: RunCreate, ctx: Ctx, tenant: Tenant) -> dict[str, Any]:
    found = _eval(ctx, tenant, eval_id)
    source = body.data_source
    kind = source.get("type")
    if kind not in ("jsonl", "completions"):
        raise invalid(f"data_source.type {kind!r} is not supported; use 'jsonl' or 'completions'",
                      param="data_source.type")  # fmt: skip
    if not isinstance(source.get("source"), dict):
        raise invalid("data_source.source is required", param="data_source.source")
    lines = _lines(ctx, tenant, source["source"], "data_source.source")
    _check_items(found.data_source_config, lines, "data_source.source")
    request: dict[str, Any] = {
        "kind": kind,
        "criteria": found.testing_criteria,
        "sandbox": ctx.settings.sandbox,
    }
    model: str | None = None
    if kind == "completions":
        model = source.get("model")
        if not isinstance(model, str) or not model:
            raise invalid("data_source.model is required: the model that answers", param="data_source.model")
        request["model_name"] = model
        request["model_target"] = model_target(ctx, tenant, model)
        if request["model_target"] is None:
            request["server_model"] = model  # the runner points it at this server's chat completions
        request["input_messages"] = _input_messages(
            source.get("input_messages") or {"type": "item_reference", "item_reference": "item.messages"}
        )
        params = source.get("sampling_params") or {}
        if not isinstance(params, dict):
            raise invalid("sampling_params must be an object", param="data_source.sampling_params")
        request["sampling_params"] = {k: params[k] for k in SAMPLING_KEYS if params.get(k) is not None}
        request["chat_engine"] = ctx.settings.chat_engine
    with ctx.db.session() as session:
        active = session.scalar(select(func.count()).select_from(EvalRunRow).where(
            EvalRunRow.tenant == tenant, EvalRunRow.status.in_(RUN_ACTIVE)))  # fmt: skip
    limit = ctx.settings.max_active_evals_per_tenant
    if active >= limit:
        message = (f"this tenant already has {active} eval runs queued or running (the limit is {limit}); "
                   "wait for one to finish or cancel one")  # fmt: skip
        raise APIError(429, message, code="rate_limit_exceeded")
    run_id = new_id("evalrun_")
    run_dir = ctx.settings.root / "evals" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    with (run_dir / "lines.jsonl").open("w", encoding="utf-8") as out:
        out.writelines(json.dumps(line) + "\n" for line in lines)
    (run_dir / "request.json").write_text(json.dumps(request, indent=2), encoding="utf-8")
    row = EvalRunRow(
        id=run_id, eval_id=eval_id, tenant=tenant, name=body.name or f"{kind}-run", model=model,
        status="queued", data_source=source, run_metadata=body.metadata, error=None,
        result_counts={"total": 0, "errored": 0, "failed": 0, "passed": 0}, per_testing_criteria_results=[],
        per_model_usage=[], created_at=now(), run_dir=str(run_dir), deleted=False,
    )  # fmt: skip
    with ctx.db.session() as session:
        session.add(row)
    _wake(ctx)
    return run_object(row)


def _run(ctx: HttpContext, tenant: str, eval_id: str, run_id: str) -> EvalRunRow:
    _eval(ctx, tenant, eval_id)
    with ctx.db.session() as session:
        row = session.scalar(select(EvalRunRow).where(
            EvalRunRow.id == run_id, EvalRunRow.eval_id == eval_id, EvalRunRow.tenant == tenant,
            EvalRunRow.deleted.is_(False)))  # fmt: skip
    if row is None:
        raise not_found("eval run", run_id, param="run_id")
    return row


@router.get("/evals/{eval_id}/runs")
def list_runs(
    eval_id: str, ctx: Ctx, tenant: Tenant, after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Annotated[str, Query(pattern="^(asc|desc)$")] = "asc",
    status: Literal["queued", "in_progress", "completed", "canceled", "failed"] | None = None,
) -> dict[str, Any]:  # fmt: skip
    _eval(ctx, tenant, eval_id)
    where = [EvalRunRow.eval_id == eval_id, EvalRunRow.tenant == tenant, EvalRunRow.deleted.is_(False)]
    if status:
        where.append(EvalRunRow.status == status)
    with ctx.db.session() as session:
        rows, more = page(session, EvalRunRow, where, after=after, limit=limit, newest_first=order == "desc")
        return list_object([run_object(r) for r in rows], more)


@router.get("/evals/{eval_id}/runs/{run_id}")
def retrieve_run(eval_id: str, run_id: str, ctx: Ctx, tenant: Tenant) -> dict[str, Any]:
    return run_object(_run(ctx, tenant, eval_id, run_id))


@router.post("/evals/{eval_id}/runs/{run_id}")
@router.post("/evals/{eval_id}/runs/{run_id}/cancel")
def cancel_run(eval_id: str, run_id: str, ctx: Ctx, tenant: Tenant) -> dict[str, Any]:
    found = _run(ctx, tenant, eval_id, run_id)
    with ctx.db.session() as session:
        row = session.get(EvalRunRow, found.seq)
        assert row is not None
        if row.status in RUN_FINISHED:
            raise invalid(f"run {run_id} is already {row.status} and cannot be canceled", param="run_id")
        row.status, row.finished_at = "canceled", now()
        answer = run_object(row)
    _wake(ctx)
    return answer


@router.delete("/evals/{eval_id}/runs/{run_id}")
def delete_run(eval_id: str, run_id: str, ctx: Ctx, tenant: Tenant) -> dict[str, Any]:
    found = _run(ctx, tenant, eval_id, run_id)
    with ctx.db.session() as session:
        row = session.get(EvalRunRow, found.seq)
        assert row is not None
        row.deleted = True
        if row.status in RUN_ACTIVE:
            row.status, row.finished_at = "canceled", now()
    _wake(ctx)
    return {"object": "eval.run.deleted", "deleted": True, "run_id": run_id}


@router.get("/evals/{eval_id}/runs/{run_id}/output_items")
def list_output_items(
    eval_id: str, run_id: str, ctx: Ctx, tenant: Tenant, after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Annotated[str, Query(pattern="^(asc|desc)$")] = "asc",
    status: Literal["pass", "fail", "error"] | None = None,
) -> dict[str, Any]:  # fmt: skip
    _run(ctx, tenant, eval_id, run_id)
    where = [OutputItemRow.run_id == run_id]
    if status:
        where.append(OutputItemRow.status == status)
    with ctx.db.session() as session:
        rows, more = page(
            session, OutputItemRow, where, after=after, limit=limit, newest_first=order == "desc"
        )
        return list_object([r.to_api() for r in rows], more)


@router.get("/evals/{eval_id}/runs/{run_id}/output_items/{item_id}")
def retrieve_output_item(eval_id: str, run_id: str, item_id: str, ctx: Ctx, tenant: Tenant) -> dict[str, Any]:
    _run(ctx, tenant, eval_id, run_id)
    with ctx.db.session() as session:
        row = session.scalar(
            select(OutputItemRow).where(OutputItemRow.id == item_id, OutputItemRow.run_id == run_id)
        )
    if row is None:
        raise not_found("output item", item_id, param="output_item_id")
    return row.to_api()
