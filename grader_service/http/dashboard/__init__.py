"""The live dashboard `rft serve --http-port` serves at `/`: jobs and their curves, eval comparisons,
the sample browser and the graders, for a tenant signed in with its token.

Server-rendered Jinja2 templates (autoescaped) with htmx (vendored in `static/`, served by rftkit
itself; nothing is fetched from anywhere) and one server-sent events stream per job page. The charts
are the static report's own (`rftkit.evals.report.charts`).

    app.include_router(dashboard.router)
"""

from __future__ import annotations

from .views import router

__all__ = ["router"]
