"""The FastAPI app: OpenAI's paths under /v1, every error as OpenAI's error object."""

from __future__ import annotations

from fastapi import FastAPI

from . import errors, files, graders, models
from .context import HttpContext


def create_app(ctx: HttpContext) -> FastAPI:
    """The app over one server's context (`app.state.ctx`)."""
    app = FastAPI(
        title="rftkit",
        summary="OpenAI's files, fine-tuning, graders, evals and models APIs on your own machines.",
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.ctx = ctx
    errors.install(app)
    for module in (graders, files, models):
        app.include_router(module.router, prefix="/v1")
    try:
        from . import jobs
    except ImportError:  # pragma: no cover - built step by step
        jobs = None  # type: ignore[assignment]
    if jobs is not None:
        app.include_router(jobs.router, prefix="/v1")
    return app
