"""The dashboard's routes: server-rendered pages (Jinja2, autoescaped), htmx fragments, and one
server-sent events stream per job page that tells the page when to fetch its live parts again.

Every page is the signed-in tenant's only: each query is filtered by tenant, and another tenant's
job or eval run answers 404 as if it did not exist.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator
from functools import cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response, StreamingResponse
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from ....core.records import Sample
from ....evals.report.charts import (
    BarSeries,
    LineSeries,
    Mark,
    bar_chart,
    color,
    downsample,
    line_chart,
    share_bar,
)
from ..context import HttpContext, context
from ..errors import APIError
from ..graders import checked_spec, grade, run_result
from ..jobs import FINISHED, cancel_job, pause_job, resume_job
from . import evaldata, jobdata
from .auth import COOKIE, MAX_AGE_S, Viewer, csrf_ok, tenant_for_token, viewer
from .sources import EvalSources

router = APIRouter(include_in_schema=False)
STATIC = Path(__file__).with_name("static")
STATIC_FILES = {"htmx.min.js": "text/javascript", "dashboard.js": "text/javascript",
                "dashboard.css": "text/css", "htmx.LICENSE.txt": "text/plain"}  # fmt: skip
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")  # fmt: skip
CURVE_POINTS = 400  # a curve never draws more points than this, however long the run
MARKERS_UP_TO = 120  # valid-reward points drawn as dots (a hover title each) up to this many
STREAM_POLL_S = 0.5
STREAM_LIFETIME_S = 50.0  # EventSource reconnects by itself; no stream outlives a server stop long
ACTIONS = {"pause": pause_job, "resume": resume_job, "cancel": cancel_job}


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader(__package__, "templates"), autoescape=True, undefined=StrictUndefined
    )
    env.filters["num"] = _num
    env.filters["when"] = lambda t: time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "—"
    env.globals["qs"] = lambda **kw: urlencode({k: v for k, v in kw.items() if v not in (None, "")})
    return env


def _num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{value:.{digits}f}"


def _ctx(request: Request) -> HttpContext:
    return context(request)


def render(request: Request, name: str, http_status: int = 200, **values: Any) -> HTMLResponse:
    """A template as a response, with the headers every dashboard page gets."""
    html = environment().get_template(name).render(request=request, **values)
    return HTMLResponse(html, status_code=http_status, headers=_headers())


def _headers() -> dict[str, str]:
    return {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin", "Cache-Control": "no-store"}  # fmt: skip


def _fragment(request: Request) -> bool:
    return (
        request.headers.get("hx-request") == "true"
        and request.headers.get("hx-history-restore-request") != "true"
    )


def _signin(request: Request, message: str | None = None, http_status: int = 200) -> Response:
    if _fragment(request):  # an htmx request of a signed-out page: send the whole window to sign in
        return Response(status_code=401, headers={"HX-Redirect": "/"})
    return render(request, "signin.html", http_status, who=None, message=message, next=request.url.path)


def _not_found(request: Request, who: Viewer, what: str) -> HTMLResponse:
    return render(request, "error.html", 404, who=who, section="", title="Not found",
                  message=f"No {what} of yours has that id.")  # fmt: skip


# -- sign-in and static files ----------------------------------------------------------------------


@router.get("/signin")
def signin_page(request: Request) -> Response:
    return _signin(request)


@router.post("/signin")
async def signin(request: Request) -> Response:
    form = await request.form()
    token = str(form.get("token") or "").strip()
    ctx = _ctx(request)
    if tenant_for_token(ctx, token) is None:
        return _signin(request, "That token is not one of this server's (see its --tokens file).", 401)
    target = str(form.get("next") or "/")
    if not target.startswith("/") or target.startswith("//"):
        target = "/"
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, token, max_age=MAX_AGE_S, httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https")  # fmt: skip
    return response


@router.post("/signout")
async def signout(request: Request) -> Response:
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/static/{name}")
def static(name: str) -> Response:
    if name not in STATIC_FILES:
        return Response(status_code=404)
    return FileResponse(STATIC / name, media_type=STATIC_FILES[name],
                        headers={"Cache-Control": "public, max-age=3600"})  # fmt: skip


# -- jobs -------------------------------------------------------------------------------------------


def _series_cache(ctx: HttpContext) -> jobdata.SeriesCache:
    cached = ctx.extra.get("dashboard_series")
    if cached is None:
        cached = ctx.extra.setdefault("dashboard_series", jobdata.SeriesCache(ctx.db))
    return cached


@router.get("/")
def jobs_page(request: Request) -> Response:
    who = viewer(request)
    if who is None:
        return _signin(request)
    rows = jobdata.job_rows(_ctx(request).db, who.tenant)
    return render(request, "jobs.html", who=who, rows=rows, section="jobs")


@router.get("/jobs")
def jobs_alias() -> Response:
    return RedirectResponse("/", status_code=307)


def curve(series: jobdata.Series) -> dict[str, Any]:
    """The reward curves (downsampled), their legend and the best validation step."""
    train = series.points("train")
    valid = series.points("valid")
    drawn_valid = downsample(valid, CURVE_POINTS)
    lines = [
        LineSeries("train reward", color(0), downsample(train, CURVE_POINTS), dashed=True, markers=False,
                   width=1.8),
        LineSeries("valid reward", color(1), drawn_valid, markers=len(drawn_valid) <= MARKERS_UP_TO),
    ]  # fmt: skip
    best = max(valid, key=lambda p: (p[1], p[0])) if valid else None
    marks = [Mark(best[0], f"best valid · step {int(best[0])}", color(1))] if best else []
    svg = line_chart(lines, "step", "reward", marks=marks) if train or valid else ""
    return {
        "svg": Markup(svg),
        "train_points": len(train),
        "valid_points": len(valid),
        "drawn": len(lines[0].points) + len(drawn_valid),
        "best": best,
        "last_train": train[-1][1] if train else None,
        "last_valid": valid[-1][1] if valid else None,
    }


def _live(ctx: HttpContext, who: Viewer, job_id: str) -> dict[str, Any] | None:
    with ctx.db.session() as session:
        job = jobdata.owned_job(session, who.tenant, job_id)
    if job is None:
        return None
    series = _series_cache(ctx).get(job)
    split = series.time_split()
    total_time = sum(v for _, v in split)
    return {
        "job": job,
        "progress": jobdata.progress(job),
        "curve": curve(series),
        "series": series,
        "errors": series.error_counts(),
        "split": [(label, seconds, seconds / total_time if total_time else 0.0) for label, seconds in split],
        "split_svg": Markup(share_bar(split)) if total_time else None,
        "checkpoints": jobdata.checkpoints(ctx.db, job.id),
        "can": {
            "pause": job.status in ("queued", "running") and job.requested != "pause",
            "resume": job.status == "paused" or job.requested == "pause",
            "cancel": job.status not in FINISHED,
        },
    }


@router.get("/jobs/{job_id}")
def job_page(request: Request, job_id: str, before: int | None = None) -> Response:
    who = viewer(request)
    if who is None:
        return _signin(request)
    ctx = _ctx(request)
    live = _live(ctx, who, job_id)
    if live is None:
        return _not_found(request, who, "fine-tuning job")
    events, older = jobdata.events_page(ctx.db, job_id, before=before)
    newest = events[0].seq if events and before is None else None
    if before is None and not events:
        newest = 0
    return render(request, "job.html", who=who, section="jobs", live=live, events=events, older=older,
                  newest=newest, before=before, message=None)  # fmt: skip


@router.get("/jobs/{job_id}/live")
def job_live(request: Request, job_id: str) -> Response:
    who = viewer(request)
    if who is None:
        return _signin(request)
    live = _live(_ctx(request), who, job_id)
    if live is None:
        return Response(status_code=404)
    return render(request, "_job_live.html", who=who, live=live, message=None)


@router.get("/jobs/{job_id}/events")
def job_events(
    request: Request, job_id: str, before: int | None = None, after: int | None = None
) -> Response:
    who = viewer(request)
    if who is None:
        return _signin(request)
    ctx = _ctx(request)
    with ctx.db.session() as session:
        if jobdata.owned_job(session, who.tenant, job_id) is None:
            return Response(status_code=404)
    limit = 200 if after is not None else jobdata.EVENTS_PAGE
    events, older = jobdata.events_page(ctx.db, job_id, before=before, after=after, limit=limit)
    return render(request, "_events_rows.html", job_id=job_id, events=events,
                  older=older if after is None else None)  # fmt: skip


@router.post("/jobs/{job_id}/{action}")
async def job_action(request: Request, job_id: str, action: str) -> Response:
    """Pause, resume or cancel through the API's own transitions (the same checks and events)."""
    who = viewer(request)
    if who is None:
        return _signin(request)
    form = await request.form()
    if action not in ACTIONS or not csrf_ok(request, who, str(form.get("csrf") or "")):
        return Response("refused: reload the page and try again", status_code=403)
    ctx = _ctx(request)
    message = None
    try:
        await run_in_threadpool(ACTIONS[action], job_id, ctx, who.tenant)
    except APIError as exc:
        if exc.status == 404:
            return Response(status_code=404)
        message = exc.message
    if not _fragment(request):
        return RedirectResponse(f"/jobs/{job_id}", status_code=303)
    live = await run_in_threadpool(_live, ctx, who, job_id)
    if live is None:
        return Response(status_code=404)
    return render(request, "_job_live.html", who=who, live=live, message=message)


@router.get("/jobs/{job_id}/stream")
async def job_stream(request: Request, job_id: str) -> Response:
    """Server-sent events: `update` whenever the job has new events, checkpoints or a new status;
    `done` once it has finished. The page then fetches its live parts (htmx)."""
    who = viewer(request)
    if who is None:
        return Response(status_code=401)
    ctx = _ctx(request)

    def owned() -> bool:
        with ctx.db.session() as session:
            return jobdata.owned_job(session, who.tenant, job_id) is not None

    if not await run_in_threadpool(owned):
        return Response(status_code=404)

    async def events() -> AsyncIterator[str]:
        yield "retry: 1500\n\n"
        last: tuple[Any, ...] | None = None
        quiet = 0.0
        started = time.monotonic()
        while time.monotonic() - started < STREAM_LIFETIME_S:
            if await request.is_disconnected():
                return
            mark = await run_in_threadpool(jobdata.change_mark, ctx.db, job_id)
            if mark != last:
                last, quiet = mark, 0.0
                data = json.dumps({"seq": mark[0], "checkpoints": mark[1], "status": mark[2]})
                yield f"event: update\ndata: {data}\n\n"
                if mark[2] in FINISHED:
                    yield f"event: done\ndata: {data}\n\n"
                    return
            elif (quiet := quiet + STREAM_POLL_S) >= 15:
                quiet = 0.0
                yield ": keep-alive\n\n"
            await asyncio.sleep(STREAM_POLL_S)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})  # fmt: skip


# -- evals ------------------------------------------------------------------------------------------


def _eval_sources(ctx: HttpContext) -> EvalSources:
    cached = ctx.extra.get("dashboard_evals")
    if cached is None:
        cached = ctx.extra.setdefault("dashboard_evals", EvalSources(ctx))
    return cached


@router.get("/evals")
def evals_page(request: Request) -> Response:
    who = viewer(request)
    if who is None:
        return _signin(request)
    views = _eval_sources(_ctx(request)).list(who.tenant)
    return render(request, "evals.html", who=who, section="evals", views=views,
                  root=evaldata.runs_root(_ctx(request), who.tenant))  # fmt: skip


def comparison(views: list[evaldata.EvalView]) -> dict[str, Any]:
    """The views' models (an API eval's runs) side by side: the grouped bar chart and its table."""
    entries: list[evaldata.Entry] = []
    metrics: dict[str, str] = {}
    for view in views:
        found, shown = view.entries()
        metrics.update(shown)
        for e in found:
            label = f"{view.title} / {e.label}" if len(views) > 1 else e.label
            entries.append(evaldata.Entry(e.key, label, e.summary, color(len(entries))))
    series = [
        BarSeries(e.label, e.color, [e.summary.get(m) for m in metrics],
                  [tuple(e.summary[f"{m}_ci"]) if e.summary.get(f"{m}_ci") else None for m in metrics])
        for e in entries
    ]  # fmt: skip
    chart = Markup(bar_chart(list(metrics.values()), series)) if entries else None
    return {"entries": entries, "metrics": list(metrics.items()), "chart": chart}


@router.get("/evals/compare")
def evals_compare(request: Request, run: Annotated[list[str] | None, Query()] = None) -> Response:
    who = viewer(request)
    if who is None:
        return _signin(request)
    sources = _eval_sources(_ctx(request))
    views = [v for v in (sources.get(who.tenant, name) for name in dict.fromkeys(run or [])) if v is not None]
    if not views:
        return _not_found(request, who, "eval or eval run")
    return render(request, "eval.html", who=who, section="evals", views=views, view=comparison(views))


@router.get("/evals/{name}")
def eval_page(request: Request, name: str) -> Response:
    return evals_compare(request, [name])


def _view_or_404(
    request: Request, name: str
) -> tuple[Viewer | None, evaldata.EvalView | None, Response | None]:
    who = viewer(request)
    if who is None:
        return None, None, _signin(request)
    view = _eval_sources(_ctx(request)).get(who.tenant, name)
    if view is None:
        return who, None, _not_found(request, who, "eval or eval run")
    return who, view, None


@router.get("/evals/{name}/samples")
def samples_page(
    request: Request, name: str, status: str = "all", model: str = "", q: str = "", page: int = 1
) -> Response:
    """One page of samples (output items), filtered; an htmx request gets the table alone."""
    who, view, refused = _view_or_404(request, name)
    if refused is not None:
        return refused
    assert view is not None
    status = status if status in evaldata.STATUSES else "all"
    model = model if model in view.models else ""
    size = evaldata.SAMPLES_PAGE
    matched, rows = view.page(status, model, q, max(0, page - 1) * size, size)
    pages = max(1, math.ceil(matched / size))
    if page > pages or page < 1:  # past the end (or before the start): show the last (first) page
        page = min(max(1, page), pages)
        matched, rows = view.page(status, model, q, (page - 1) * size, size)
    start = (page - 1) * size
    values = {"who": who, "section": "evals", "run": view, "rows": rows, "status": status, "model": model,
              "q": q, "page": page, "pages": pages, "matched": matched, "total": view.total,
              "start": start}  # fmt: skip
    if _fragment(request) and request.headers.get("hx-target") == "samples":
        return render(request, "_samples_table.html", **values)
    return render(request, "samples.html", **values)


@router.get("/evals/{name}/items/{item}")
def item_page(request: Request, name: str, item: int, a: str = "", b: str = "") -> Response:
    """One item, two models (an API eval: two runs) side by side."""
    who, view, refused = _view_or_404(request, name)
    if refused is not None:
        return refused
    assert view is not None and who is not None
    found = view.item(item)
    if not found:
        return _not_found(request, who, "item")
    models = list(found)
    a = a if a in found else models[0]
    b = b if b in found else next((m for m in models if m != a), a)
    sides = [(m, view.label(m), found[m]) for m in (a, b)]
    return render(request, "item.html", who=who, section="evals", run=view, item=item, models=models,
                  a=a, b=b, sides=sides)  # fmt: skip


# -- graders ----------------------------------------------------------------------------------------


def _grader_client(ctx: HttpContext, who: Viewer) -> Any:
    from ...client import GraderClient  # gRPC: imported when the graders page is first used

    address = str(ctx.extra.get("grpc_address") or "")
    host, _, port = address.rpartition(":")
    if host in ("0.0.0.0", "[::]", ""):
        address = f"127.0.0.1:{port}"
    return GraderClient(address, None if who.open_access else who.token, timeout=10)


def _graders(ctx: HttpContext, who: Viewer) -> tuple[list[dict[str, Any]], str | None]:
    if not ctx.extra.get("grpc_address"):
        return [], "This server has no gRPC grader service to list graders from."
    try:
        with _grader_client(ctx, who) as client:
            return client.list_graders(), None
    except Exception as exc:  # the list is a convenience; the try box works without it
        return [], f"The grader list is unavailable: {exc}"


@router.get("/graders")
def graders_page(request: Request, grader: str = "") -> Response:
    who = viewer(request)
    if who is None:
        return _signin(request)
    ctx = _ctx(request)
    graders, problem = _graders(ctx, who)
    spec_text = ""
    if grader and any(g["id"] == grader for g in graders):
        try:
            with _grader_client(ctx, who) as client:
                spec_text = json.dumps(client.get_grader(grader).get("spec", {}), indent=2)
        except Exception as exc:
            problem = f"Cannot read grader {grader}: {exc}"
    if not spec_text:
        spec_text = json.dumps({"type": "string_check", "name": "exact", "input": "{{sample.output_text}}",
                                "reference": "{{item.answer}}", "operation": "eq"}, indent=2)  # fmt: skip
    return render(request, "graders.html", who=who, section="graders", graders=graders, problem=problem,
                  chosen=grader, spec_text=spec_text, sample_text="42",
                  item_text='{"answer": "42"}')  # fmt: skip


@router.post("/graders/try")
async def graders_try(request: Request) -> Response:
    """Grade one sample with a spec (graders/run's own path: the same queue and warm graders)."""

    who = viewer(request)
    if who is None:
        return _signin(request)
    form = await request.form()
    if not csrf_ok(request, who, str(form.get("csrf") or "")):
        return Response("refused: reload the page and try again", status_code=403)
    ctx = _ctx(request)
    result: dict[str, Any] | None = None
    problem = None
    try:
        spec = json.loads(str(form.get("spec") or ""))
        item_text = str(form.get("item") or "").strip()
        item = json.loads(item_text) if item_text else {}
        if not isinstance(spec, dict) or not isinstance(item, dict):
            raise ValueError("the grader and the item must each be a JSON object")
        checked, _ = checked_spec(spec, strict=ctx.settings.strict_uploads)
        sample = Sample.from_text(str(form.get("sample") or ""))
        graded = await run_in_threadpool(grade, ctx, who.tenant, checked, [(sample, item)])
        result = run_result(graded[0])
    except json.JSONDecodeError as exc:
        problem = f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
    except ValueError as exc:
        problem = str(exc)
    except APIError as exc:
        problem = exc.message
    raised = [k for k, v in ((result or {}).get("metadata", {}).get("errors") or {}).items() if v is True]
    return render(request, "_grader_result.html", result=result, problem=problem, raised=raised,
                  raw=json.dumps(result, indent=2) if result else "")  # fmt: skip
