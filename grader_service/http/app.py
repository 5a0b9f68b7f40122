"""The FastAPI app: OpenAI's paths under /v1, every error as OpenAI's error object."""

from __future__ import annotations

from fastapi import FastAPI

from . import chat, errors, evals, files, graders, jobs, models
from .context import HttpContext
from .dashboard import router as dashboard_router


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
    for module in (graders, files, jobs, models, chat, evals):
        app.include_router(module.router, prefix="/v1")
    app.include_router(dashboard_router)  # the live dashboard at / (issue 17)
    return app
