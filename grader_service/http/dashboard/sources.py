"""Every eval the dashboard shows, from both sources: the Evals API's tables and eval run folders."""

from __future__ import annotations

from ..context import HttpContext
from .apidata import ApiEvals
from .evaldata import EvalRuns, EvalView, FolderEval


class EvalSources:
    """The API's evals first (newest first), then the run folders; `get` by eval id or folder name."""

    def __init__(self, ctx: HttpContext) -> None:
        self.api = ApiEvals(ctx.db)
        self.folders = EvalRuns(ctx)

    def list(self, tenant: str) -> list[EvalView]:
        views: list[EvalView] = list(self.api.list(tenant))
        for name in self.folders.names(tenant):
            run = self.folders.get(tenant, name)
            if run is not None:
                views.append(FolderEval(run))
        return views

    def get(self, tenant: str, name: str) -> EvalView | None:
        found = self.api.get(tenant, name)
        if found is not None:
            return found
        run = self.folders.get(tenant, name)
        return FolderEval(run) if run is not None else None
