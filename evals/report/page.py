"""Build the report: one HTML document with inline CSS, inline SVG charts and a small inline script.

Everything from run files is untrusted (model outputs above all): every string goes through
`html.escape`, rows are rendered here, and the script only shows and hides them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any

from . import distribution
from .assets import CSP, CSS, JS
from .charts import BarSeries, LineSeries, Mark, bar_chart, color, line_chart
from .runs import EvalRunData, Runs, TrainingRunData

METRIC_LABELS = {
    "mean_reward": "Mean reward",
    "pass_rate": "Pass rate",
    "top1": "Top-1",
    "top5": "Top-5",
    "topmax": "Top-max",
}
RANKED = ("top1", "top5", "topmax")
MAX_TEXT = 20_000  # characters of one output shown in the page
PREVIEW = 110


@dataclass
class ModelEntry:
    """One model of one eval run, as the report names and colours it."""

    key: str
    run: EvalRunData
    name: str
    summary: dict[str, Any]
    color: str


def model_entries(runs: Runs) -> list[ModelEntry]:
    several = len(runs.evals) > 1
    entries = []
    for run in runs.evals:
        for name, summary in run.summary["models"].items():
            key = f"{run.label} / {name}" if several else name
            entries.append(ModelEntry(key, run, name, summary, color(len(entries))))
    return entries


def metrics_shown(entries: list[ModelEntry]) -> list[str]:
    ranked = any("top1" in e.summary for e in entries)
    return [m for m in METRIC_LABELS if m not in RANKED or ranked]


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _note(text: str) -> str:
    """A small second line under a value, drawn from an attribute by CSS, so that the cell's text is
    the value alone (copying or reading the table gives plain numbers)."""
    return f'<span class="ci" data-note="{_e(text)}"></span>'


def _metric_cell(summary: dict[str, Any], metric: str, key: str) -> str:
    value = summary.get(metric)
    if value is None:
        return '<td class="num muted">—</td>'
    ci = summary.get(f"{metric}_ci")
    ci_html = _note(f"{ci[0]:.3f} – {ci[1]:.3f}") if ci else ""
    return (
        f'<td class="num metric" data-model="{_e(key)}" data-metric="{metric}" '
        f'data-value="{float(value):.6f}"><span class="v">{float(value):.3f}</span>{ci_html}</td>'
    )


def _error_chips(errors: dict[str, int]) -> str:
    return "".join(f'<span class="chip">{_e(kind)} {int(n)}</span>' for kind, n in sorted(errors.items()))


def summary_section(entries: list[ModelEntry], metrics: list[str]) -> str:
    head = "".join(f'<th class="num">{METRIC_LABELS[m]}</th>' for m in metrics)
    rows = []
    for e in entries:
        s = e.summary
        shape = f"{s.get('n_items', '?')} × {s.get('samples_per_item', 1)}"
        cells = "".join(_metric_cell(s, m, e.key) for m in metrics)
        errors = s.get("samples_with_errors", 0)
        rows.append(
            f'<tr data-model="{_e(e.key)}"><td><span class="swatch" style="background:{e.color}"></span>'
            f"<strong>{_e(e.key)}</strong></td>"
            f'<td class="num" data-model="{_e(e.key)}" data-metric="n" data-value="{int(s.get("n", 0))}">'
            f"{int(s.get('n', 0))}{_note(shape)}</td>"
            f'{cells}<td class="num" data-model="{_e(e.key)}" data-metric="samples_with_errors" '
            f'data-value="{int(errors)}">{int(errors)}'
            f"<div>{_error_chips(s.get('errors', {}))}</div></td></tr>"
        )
    best = _best_of_n_table(entries, metrics)
    return (
        '<section class="card" id="summary"><h2>Summary</h2>'
        f'<table class="summary"><thead><tr><th>Model</th><th class="num">Samples<br><span class="muted">'
        f'items × per item</span></th>{head}<th class="num">Errors</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>{best}"
        '<p class="note">Values with their 95% confidence interval below. Rates: Wilson score interval over '
        "items; mean reward: percentile bootstrap over items. Errors: samples with any error flag, by kind."
        "</p></section>"
    )


def _best_of_n_table(entries: list[ModelEntry], metrics: list[str]) -> str:
    with_best = [e for e in entries if "best_of_n" in e.summary]
    if not with_best:
        return ""
    head = "".join(f'<th class="num">{METRIC_LABELS[m]}</th>' for m in metrics)
    rows = "".join(
        f'<tr><td><span class="swatch" style="background:{e.color}"></span>{_e(e.key)} '
        f'<span class="muted">(n = {int(e.summary.get("samples_per_item", 1))})</span></td>'
        + "".join(_metric_cell(e.summary["best_of_n"], m, f"{e.key}#best") for m in metrics)
        + "</tr>"
        for e in with_best
    )
    return (
        '<h2 style="margin-top:18px">Best of n samples per item</h2>'
        f'<table class="summary best"><thead><tr><th>Model</th>{head}</tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def _legend(entries: list[ModelEntry]) -> str:
    items = "".join(
        f'<span><span class="swatch" style="background:{e.color}"></span>{_e(e.key)}</span>' for e in entries
    )
    return f'<div class="legend">{items}</div>'


def chart_section(entries: list[ModelEntry], metrics: list[str]) -> str:
    series = [
        BarSeries(
            e.key,
            e.color,
            [e.summary.get(m) for m in metrics],
            [tuple(e.summary[f"{m}_ci"]) if e.summary.get(f"{m}_ci") else None for m in metrics],
        )
        for e in entries
    ]
    svg = bar_chart([METRIC_LABELS[m] for m in metrics], series)
    return (
        f'<section class="card" id="chart"><h2>Metrics by model</h2>{_legend(entries)}{svg}'
        '<p class="note">Whiskers: 95% confidence intervals.</p></section>'
    )


def distribution_section(entries: list[ModelEntry], ranked: bool) -> str:
    """Where the reference ranked (ranked-list graders) or how rewards spread, per model."""
    labels = distribution.rank_labels() if ranked else distribution.reward_labels()
    shares = distribution.rank_shares if ranked else distribution.reward_shares
    series = [
        BarSeries(e.key, e.color, list(shares([r for r in e.run.records if r.get("model") == e.name])))
        for e in entries
    ]
    if not any(e.run.records for e in entries):
        return ""
    title = "Where the reference ranked" if ranked else "Reward distribution"
    note = (
        "Share of samples by the reference's rank in the answer; “not in list” includes unparsable answers."
        if ranked
        else "Share of samples by reward."
    )
    return (
        f'<section class="card" id="distribution"><h2>{title}</h2>{_legend(entries)}'
        f'{bar_chart(labels, series, height=300)}<p class="note">{note}</p></section>'
    )


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


SMOOTH_FROM = 30  # steps; longer runs get a moving average over the noisy per-step train reward


def _line_key(style: str, c: str, text: str) -> str:
    return f'<span><span class="{style}" style="border-color:{c}"></span>{_e(text)}</span>'


def _training_series(run: TrainingRunData, c: str, prefix: str) -> tuple[list[LineSeries], list[str]]:
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


def _best_valid(run: TrainingRunData) -> tuple[float, float] | None:
    valid = _points(run.events, "valid_reward_mean")
    return max(valid, key=lambda p: (p[1], p[0])) if valid else None


def _value_cell(metric: str, value: float | None, note: str = "") -> str:
    if value is None:
        return '<td class="num muted">—</td>'
    extra = f' <span class="muted">({_e(note)})</span>' if note else ""
    return f'<td class="num" data-metric="{metric}" data-value="{value:.6f}">{_fmt(value)}{extra}</td>'


def training_section(trainings: list[TrainingRunData]) -> str:
    if not trainings:
        return ""
    series, legend, rows, marks = [], [], [], []
    for index, run in enumerate(trainings):
        c = color(index)
        prefix = f"{run.label} · " if len(trainings) > 1 else ""
        run_series, run_legend = _training_series(run, c, prefix)
        series += run_series
        legend += run_legend
        valid = _points(run.events, "valid_reward_mean")
        best = _best_valid(run)
        if best:
            marks.append(Mark(best[0], f"{prefix}best valid · step {int(best[0])}", c))
        pass_rates = _points(run.events, "valid_pass_rate")
        steps = max((int(e["step"]) for e in run.events), default=0)
        rows.append(
            f'<tr data-run="{_e(run.label)}"><td><span class="swatch" style="background:{c}"></span>'
            f"<strong>{_e(run.label)}</strong></td><td class='num'>{steps}</td>"
            + _value_cell("first_valid", valid[0][1] if valid else None)
            + _value_cell("best_valid", best[1] if best else None, f"step {int(best[0])}" if best else "")
            + _value_cell("last_valid", valid[-1][1] if valid else None)
            + _value_cell("last_valid_pass_rate", pass_rates[-1][1] if pass_rates else None)
            + f"<td class='num'>{len(run.checkpoints) or '—'}</td></tr>"
        )
    svg = line_chart(series, "step", "reward", marks=marks)
    table = (
        '<table class="training"><thead><tr><th>Run</th><th class="num">Steps</th>'
        '<th class="num">First valid</th><th class="num">Best valid</th><th class="num">Last valid</th>'
        '<th class="num">Last valid pass rate</th><th class="num">Checkpoints kept</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    return (
        '<section class="card" id="training"><h2>Training reward</h2>'
        f'<div class="legend">{"".join(legend)}</div>{svg}{table}'
        '<p class="note">Valid reward: mean over the validation set at each evaluation (step 0 is the '
        "starting model). Train reward: mean over the step's sampled batch.</p></section>"
    )


def _fmt(value: float) -> str:
    return f"{value:.3f}"


def _clip(text: str) -> str:
    if len(text) <= MAX_TEXT:
        return text
    return text[:MAX_TEXT] + f"\n… [{len(text) - MAX_TEXT} more characters in results.jsonl]"


def _collapsible(text: str | None, preview_of: str | None = None) -> str:
    """A one-line preview (of `preview_of`, else of `text`) that opens to the full text."""
    if not text:
        return '<span class="muted">—</span>'
    one_line = " ".join((preview_of if preview_of is not None else text).split())
    preview = one_line[:PREVIEW] + ("…" if len(one_line) > PREVIEW else "")
    return (
        f'<details><summary><span class="preview">{_e(preview)}</span></summary>'
        f"<pre>{_e(_clip(text))}</pre></details>"
    )


def _prompt(record: dict[str, Any]) -> str:
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


def _answer(record: dict[str, Any]) -> str:
    parsed = record.get("output_json")
    text = record.get("output", "")
    if parsed is not None:  # JSON answers: compact when short, indented when long
        text = json.dumps(parsed, ensure_ascii=False)
        if len(text) > 200:
            text = pretty_json(parsed)
    body = '<span class="muted">(empty)</span>'
    if text:
        body = f'<pre class="answer">{_e(_clip(str(text)))}</pre>'
    reference = record.get("reference") or {}
    if reference:
        shown = "; ".join(f"{k}: {v if isinstance(v, str) else json.dumps(v)}" for k, v in reference.items())
        body += f'<div class="expected">expected · {_e(shown[: PREVIEW * 3])}</div>'
    return body


def _sample_row(record: dict[str, Any], key: str, ranked: bool) -> str:
    passed = bool(record.get("passed"))
    reward = float(record.get("reward", 0.0))
    errors = record.get("errors") or []
    chips = "".join(f'<span class="chip">{_e(flag)}</span>' for flag in errors)
    if record.get("error_details"):
        chips += f'<div class="muted">{_e(str(record["error_details"])[:300])}</div>'
    rank_cell = ""
    if ranked:
        rank = record.get("rank")
        rank_cell = f'<td class="num">{int(rank) if rank else "—"}</td>'
    badge = '<span class="badge pass">PASS</span>' if passed else '<span class="badge fail">FAIL</span>'
    return (
        f'<tr class="sample" data-model="{_e(key)}" data-pass="{1 if passed else 0}" '
        f'data-item="{int(record.get("item_index", 0))}" data-reward="{reward:.6f}">'
        f"<td>{_e(key)}</td><td class='num'>{int(record.get('item_index', 0))}</td>"
        f"<td class='num'>{int(record.get('sample_index', 0))}</td>"
        f'<td class="text">{_prompt(record)}</td>'
        f'<td class="text">{_collapsible(_reasoning(record))}</td>'
        f'<td class="text">{_answer(record)}</td><td class="num">{reward:.3f}</td>{rank_cell}'
        f"<td>{badge}</td><td>{chips}</td></tr>"
    )


def samples_section(entries: list[ModelEntry]) -> str:
    keys = {(e.run.label, e.name): e.key for e in entries}
    ranked = any("top1" in e.summary for e in entries)
    rows = [
        _sample_row(record, keys.get((run.label, record.get("model")), str(record.get("model"))), ranked)
        for run in _unique_runs(entries)
        for record in run.records
    ]
    options = "".join(f'<option value="{_e(e.key)}">{_e(e.key)}</option>' for e in entries)
    rank_head = '<th class="num">Rank</th>' if ranked else ""
    return (
        '<section class="card" id="samples"><h2>Samples</h2><div class="toolbar">'
        '<div class="seg" role="group" aria-label="Result">'
        f"{_filter_button('all', 'All', active=True)}{_filter_button('pass', 'Pass')}"
        f"{_filter_button('fail', 'Fail')}</div>"
        f'<select id="filter-model" aria-label="Model"><option value="">All models</option>{options}</select>'
        '<input type="search" id="filter-search" placeholder="Search prompts, answers, errors…">'
        '<span id="shown-count"></span></div>'
        f'<table class="samples">{_sample_columns(ranked)}<thead><tr><th>Model</th>'
        '<th class="num">Item</th><th class="num">#</th>'
        "<th>Prompt</th><th>Reasoning</th><th>Answer</th><th class='num'>Reward</th>"
        f"{rank_head}<th>Result</th><th>Errors</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        '<button type="button" id="more" hidden>Show more</button></section>'
    )


def _sample_columns(ranked: bool) -> str:
    rank = ["num"] if ranked else []
    kinds = ["model", "num", "num", "text", "text", "answer", "reward", *rank, "result", "errors"]
    return "<colgroup>" + "".join(f'<col class="c-{kind}">' for kind in kinds) + "</colgroup>"


def _filter_button(value: str, label: str, active: bool = False) -> str:
    css = ' class="active"' if active else ""
    return (
        f'<button type="button" id="filter-{value}" data-filter="{value}"{css}>'
        f'{label} <span class="n"></span></button>'
    )


def _unique_runs(entries: list[ModelEntry]) -> list[EvalRunData]:
    seen: dict[str, EvalRunData] = {}
    for e in entries:
        seen.setdefault(e.run.label, e.run)
    return list(seen.values())


def sources_section(runs: Runs) -> str:
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
        rows.append(f"<dt>{_e(run.label)}</dt><dd>{_e(' · '.join(facts))}</dd>")
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
        rows.append(f"<dt>{_e(run.label)}</dt><dd>{_e(' · '.join(facts))}</dd>")
    return f'<section class="card" id="runs"><h2>Runs</h2><dl class="runs">{"".join(rows)}</dl></section>'


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def render(runs: Runs, title: str = "rftkit report") -> str:
    """The whole report as one HTML string."""
    entries = model_entries(runs)
    metrics = metrics_shown(entries)
    body = [sources_section(runs)]
    if entries:
        ranked = "top1" in metrics
        body += [
            summary_section(entries, metrics),
            chart_section(entries, metrics),
            distribution_section(entries, ranked),
        ]
    body.append(training_section(runs.trainings))
    if entries:
        body.append(samples_section(entries))
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    models = len(entries)
    subtitle = f"{_count(models, 'model')} · {_count(len(runs.trainings), 'training run')} · {generated}"
    script = f"<script>{JS}</script>" if entries else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
        f'<header><h1>{_e(title)}</h1><div class="sub">{_e(subtitle)}</div></header>'
        f"<main>{''.join(body)}</main>{script}</body></html>\n"
    )
