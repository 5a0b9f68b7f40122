"""`GET /v1/models` and `/v1/models/{id}`: the server's base models and the tenant's fine-tuned models."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from .context import Ctx, HttpContext, Tenant
from .errors import not_found

router = APIRouter()
BASE_CREATED = 0


def model_objects(ctx: HttpContext, tenant: str) -> list[dict[str, Any]]:
    """Base models (owned by the server) and this tenant's fine-tuned models and checkpoints."""
    found = [
        {
            "id": name,
            "object": "model",
            "created": ctx.extra.get("started_at", BASE_CREATED),
            "owned_by": "rftkit",
        }
        for name in sorted(ctx.settings.base_models)
    ]
    found.extend(ctx.db.fine_tuned_models(tenant))
    return found


@router.get("/models")
def list_models(ctx: Ctx, tenant: Tenant) -> dict[str, Any]:
    return {"object": "list", "data": model_objects(ctx, tenant)}


@router.get("/models/{model_id:path}")
def retrieve_model(model_id: str, ctx: Ctx, tenant: Tenant) -> dict[str, Any]:
    for model in model_objects(ctx, tenant):
        if model["id"] == model_id:
            return model
    raise not_found("model", model_id, param="model")
