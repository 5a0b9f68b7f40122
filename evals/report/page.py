"""Build the report: one HTML document from the Jinja2 templates in `templates/`, with the stylesheet,
the SVG charts and a small filter script inline (the page loads nothing from anywhere).

Everything from run files is untrusted (model outputs above all): the templates autoescape every
value, only the charts (charts.py escapes their text) are passed in as markup, and the script only
shows and hides rows. This module turns run files into plain values for the templates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from . import distribution
from .charts import BarSeries, LineSeries, Mark, bar_chart, color, line_chart
from .runs import EvalRunData, Runs, TrainingRunData

# Nothing may be fetched: no network, no other files. Inline styles and scripts only.
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
METRIC_LABELS = {"mean_reward": "Mean reward", "pass_rate": "Pass rate"}  # every grader's; then its own
MAX_TEXT = 20_000  # characters of one output shown in the page
PREVIEW = 110
SMOOTH_FROM = 30  # steps; longer runs get a moving average over the noisy per-step train reward


@cache
def environment() -> Environment:
    """The templates' environment: autoescape on for every template, undefined names are errors."""
    return Environment(
        loader=PackageLoader(__package__, "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


@dataclass
class ModelEntry:
    """One model of one eval run, as the report names and colours it."""

    key: str
    run: EvalRunData
    name: str
    summary: dict[str, Any]
    color: str

    @property
    def best_of_n(self) -> dict[str, Any] | None:
        return self.summary.get("best_of_n")


def model_entries(runs: Runs) -> list[ModelEntry]:
    several = len(runs.evals) > 1
    entries = []
    for run in runs.evals:
        for name, summary in run.summary["models"].items():
            key = f"{run.label} / {name}" if several else name
            entries.append(ModelEntry(key, run, name, summary, color(len(entries))))
    return entries


def declared_rates(entries: list[ModelEntry]) -> dict[str, str]:
    """The rates the runs' graders declare (summary.json `grader.rates`), name -> label.

    A summary written without that list shows every metric that has an interval under its own name.
    """
    rates: dict[str, str] = {}
    for e in entries:
        declared = (e.run.summary.get("grader") or {}).get("rates")
        if declared is None:
            declared = [
                {"name": k, "label": k}
                for k in e.summary
                if k not in METRIC_LABELS and f"{k}_ci" in e.summary and not k.endswith("_ci")
            ]
        rates.update({str(r["name"]): str(r.get("label") or r["name"]) for r in declared})
    return rates


def metrics_shown(entries: list[ModelEntry]) -> dict[str, str]:
    """Every metric the chart and the table show, name -> label: mean reward, pass rate, declared rates."""
    return METRIC_LABELS | declared_rates(entries)


def shows_positions(entries: list[ModelEntry]) -> bool:
    """Whether the grader declares a position score (a rank): then the spread is drawn over positions."""
    declared = any((e.run.summary.get("grader") or {}).get("distribution") for e in entries)
    return declared or any(r.get("rank") for e in entries for r in e.run.records)


def metrics_chart(entries: list[ModelEntry], metrics: dict[str, str]) -> Markup:
    series = [
        BarSeries(
            e.key,
            e.color,
            [e.summary.get(m) for m in metrics],
            [tuple(e.summary[f"{m}_ci"]) if e.summary.get(f"{m}_ci") else None for m in metrics],
        )
        for e in entries
    ]
    return Markup(bar_chart(list(metrics.values()), series))


def distribution_view(entries: list[ModelEntry], ranked: bool) -> dict[str, Any] | None:
    """Where the reference ranked (ranked-list graders) or how rewards spread, per model."""
    if not any(e.run.records for e in entries):
        return None
    labels = distribution.rank_labels() if ranked else distribution.reward_labels()
    shares = distribution.rank_shares if ranked else distribution.reward_shares
    series = [
        BarSeries(e.key, e.color, list(shares([r for r in e.run.records if r.get("model") == e.name])))
        for e in entries
    ]
    return {
        "title": "Where the reference ranked" if ranked else "Reward distribution",
        "note": "Share of samples by the reference's rank in the answer; “not in list” includes unparsable "
        "answers."
        if ranked
        else "Share of samples by reward.",
        "chart": Markup(bar_chart(labels, series, height=300)),
    }


def _points(events: list[dict[str, Any]], key: str) -> list[tuple[float, float]]:
    return [(float(e["step"]), float(e[key])) for e in events if isinstance(e.get(key), int | float)]


def moving_average(points: list[tuple[float, float]], window: int) -> list[tuple[float, float]]:
    """Trailing mean over the last `window` points (fewer at the start)."""
    out, total = [], 0.0
    for index, (x, v) in enumerate(points):
        total += v
        if index >= window:
            total -= points[index - window][1]
        out.append((x, total / min(index + 1, window)))
    return out


def _line_key(style: str, c: str, text: str) -> dict[str, str]:
    """A legend entry: a line sample in the series' style and colour, then its text."""
    return {"style": style, "color": c, "text": text}


def _training_series(
    run: TrainingRunData, c: str, prefix: str
) -> tuple[list[LineSeries], list[dict[str, str]]]:
    """Per-step train reward (faint, with its moving average on long runs) and valid reward (markers)."""
    train, valid = _points(run.events, "train_reward_mean"), _points(run.events, "valid_reward_mean")
    series, legend = [], []
    if len(train) >= SMOOTH_FROM:
        window = max(5, len(train) // 25)
        series.append(LineSeries(f"{prefix}train reward (per step)", c, train, markers=False, width=1.2,
                                 opacity=0.28))  # fmt: skip
        smooth = moving_average(train, window)
        series.append(LineSeries(f"{prefix}train reward ({window}-step mean)", c, smooth, dashed=True,
                                 markers=False, width=2))  # fmt: skip
        legend += [_line_key("faint", c, f"{prefix}train reward per step"),
                   _line_key("dash", c, f"{prefix}train reward, {window}-step moving mean")]  # fmt: skip
    else:
        series.append(LineSeries(f"{prefix}train reward", c, train, dashed=True, markers=False, width=1.8))
        legend.append(_line_key("dash", c, f"{prefix}train reward"))
    series.append(LineSeries(f"{prefix}valid reward", c, valid))
    legend.append(_line_key("solid", c, f"{prefix}valid reward"))
    return series, legend


def training_view(trainings: list[TrainingRunData]) -> dict[str, Any] | None:
    """The training section's curves, legend and table rows; None without training runs."""
    if not trainings:
        return None
    series, legend, rows, marks = [], [], [], []
    for index, run in enumerate(trainings):
        c = color(index)
        prefix = f"{run.label} · " if len(trainings) > 1 else ""
        run_series, run_legend = _training_series(run, c, prefix)
        series += run_series
        legend += run_legend
        valid = _points(run.events, "valid_reward_mean")
        best = max(valid, key=lambda p: (p[1], p[0])) if valid else None
        if best:
            marks.append(Mark(best[0], f"{prefix}best valid · step {int(best[0])}", c))
        pass_rates = _points(run.events, "valid_pass_rate")
        rows.append({
            "label": run.label, "color": c, "steps": max((int(e["step"]) for e in run.events), default=0),
            "first_valid": valid[0][1] if valid else None,
            "best_valid": best[1] if best else None, "best_step": int(best[0]) if best else None,
            "last_valid": valid[-1][1] if valid else None,
            "last_pass_rate": pass_rates[-1][1] if pass_rates else None,
            "checkpoints": len(run.checkpoints),
        })  # fmt: skip
    chart = Markup(line_chart(series, "step", "reward", marks=marks))
    return {"legend": legend, "chart": chart, "rows": rows}


def _clip(text: str) -> str:
    if len(text) <= MAX_TEXT:
        return text
    return text[:MAX_TEXT] + f"\n… [{len(text) - MAX_TEXT} more characters in results.jsonl]"


def _collapsible(text: str | None, preview_of: str | None = None) -> dict[str, str] | None:
    """A one-line preview (of `preview_of`, else of `text`) and the full text; None for no text."""
    if not text:
        return None
    one_line = " ".join((preview_of if preview_of is not None else text).split())
    return {"preview": one_line[:PREVIEW] + ("…" if len(one_line) > PREVIEW else ""), "full": _clip(text)}


def _prompt(record: dict[str, Any]) -> dict[str, str] | None:
    """The last user message as the preview; the whole conversation inside."""
    messages = record.get("input") or []
    users = [m for m in messages if m.get("role") == "user"] or messages or [{}]
    full = "\n\n".join(f"[{m.get('role', '?')}]\n{m.get('content', '')}" for m in messages)
    return _collapsible(full, str(users[-1].get("content", "")))


def _reasoning(record: dict[str, Any]) -> str | None:
    """The model's separate reasoning, else a `reasoning` string inside its JSON answer (RFT-demo style)."""
    if record.get("reasoning"):
        return str(record["reasoning"])
    answer = record.get("output_json")
    if isinstance(answer, dict):
        inline = next((answer[k] for k in ("reasoning", "rationale", "explanation") if k in answer), None)
        return inline if isinstance(inline, str) else None
    return None


def pretty_json(value: Any, indent: str = "") -> str:
    """Indented JSON whose lists of plain values stay on one line (a ranked list reads as a list)."""
    inner = indent + "  "
    if isinstance(value, dict) and value:
        body = ",\n".join(
            f"{inner}{json.dumps(k, ensure_ascii=False)}: {pretty_json(v, inner)}" for k, v in value.items()
        )
        return f"{{\n{body}\n{indent}}}"
    if isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        body = ",\n".join(inner + pretty_json(v, inner) for v in value)
        return f"[\n{body}\n{indent}]"
    return json.dumps(value, ensure_ascii=False)


def _answer_text(record: dict[str, Any]) -> str:
    """The answer as shown: JSON answers compact when short, indented when long."""
    parsed = record.get("output_json")
    if parsed is None:
        return str(record.get("output", "") or "")
    text = json.dumps(parsed, ensure_ascii=False)
    return pretty_json(parsed) if len(text) > 200 else text


def _expected(record: dict[str, Any]) -> str | None:
    reference = record.get("reference") or {}
    if not reference:
        return None
    shown = "; ".join(f"{k}: {v if isinstance(v, str) else json.dumps(v)}" for k, v in reference.items())
    return shown[: PREVIEW * 3]


def sample_row(record: dict[str, Any], key: str) -> dict[str, Any]:
    """One row of the samples table."""
    answer = _answer_text(record)
    rank = record.get("rank")
    return {
        "key": key,
        "item": int(record.get("item_index", 0)),
        "index": int(record.get("sample_index", 0)),
        "passed": bool(record.get("passed")),
        "valid": bool(record.get("valid", True)),
        "reward": float(record.get("reward", 0.0)),
        "prompt": _prompt(record),
        "reasoning": _collapsible(_reasoning(record)),
        "answer": _clip(answer) if answer else "",
        "expected": _expected(record),
        "rank": int(rank) if rank else None,
        "errors": [str(flag) for flag in record.get("errors") or []],
        "error_details": str(record["error_details"])[:300] if record.get("error_details") else None,
    }


def _unique_runs(entries: list[ModelEntry]) -> list[EvalRunData]:
    seen: dict[str, EvalRunData] = {}
    for e in entries:
        seen.setdefault(e.run.label, e.run)
    return list(seen.values())


def sample_rows(entries: list[ModelEntry]) -> list[dict[str, Any]]:
    keys = {(e.run.label, e.name): e.key for e in entries}
    return [
        sample_row(record, keys.get((run.label, record.get("model")), str(record.get("model"))))
        for run in _unique_runs(entries)
        for record in run.records
    ]


def run_facts(runs: Runs) -> list[dict[str, Any]]:
    """One line of facts per run folder (what was evaluated or trained, and where it lies)."""
    rows = []
    for run in runs.evals:
        s = run.summary
        grader = s.get("grader") or {}
        facts = [
            f"eval of {s.get('data', '?')}",
            f"{int(s.get('n_items', 0))} items × {int(s.get('samples_per_item', 1))}",
            f"grader {grader.get('name')} ({grader.get('type')})",
            f"pass: {grader.get('pass_rule', '?')}",
            str(run.path),
        ]
        rows.append({"label": run.label, "facts": facts})
    for run in runs.trainings:
        last = max((int(e["step"]) for e in run.events), default=0)
        facts = [f"training run · {last} steps"]
        if run.summary.get("base_model"):
            facts.append(f"base model {run.summary['base_model']}")
        if run.summary.get("final_model"):
            facts.append(f"final model {run.summary['final_model']}")
        else:
            facts.append("no final model yet (running or stopped)")
        facts.append(str(run.path))
        rows.append({"label": run.label, "facts": facts})
    return rows


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def render(runs: Runs, title: str = "rftkit report") -> str:
    """The whole report as one HTML string."""
    entries = model_entries(runs)
    metrics = metrics_shown(entries)
    ranked = shows_positions(entries)
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    counts = f"{_count(len(entries), 'model')} · {_count(len(runs.trainings), 'training run')}"
    return (
        environment()
        .get_template("report.html")
        .render(
            csp=Markup(CSP),  # a constant with quotes the attribute keeps as they are
            title=title,
            subtitle=f"{counts} · {generated}",
            run_facts=run_facts(runs),
            entries=entries,
            metrics=list(metrics.items()),
            ranked=ranked,
            metrics_chart=metrics_chart(entries, metrics) if entries else None,
            distribution=distribution_view(entries, ranked) if entries else None,
            training=training_view(runs.trainings),
            samples=sample_rows(entries) if entries else [],
        )
    )
