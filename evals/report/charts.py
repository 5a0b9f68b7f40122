"""Charts as inline SVG strings (no scripts, no fonts or images from anywhere): bars and lines."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

PALETTE = ("#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#EECA3B", "#9D755D",
           "#FF9DA6", "#79706E")  # fmt: skip
AXIS = "#6b7280"
GRID = "#e5e7eb"
TEXT = "#374151"


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(lo / step + 1e-9) * step
    ticks = [round(start, 10)]
    while ticks[-1] < hi - 1e-9 and len(ticks) < 50:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _fmt(value: float) -> str:
    return f"{value:g}" if abs(value) >= 1000 or value == int(value) else f"{value:.3g}"


def _text(x: float, y: float, body: str, anchor: str = "middle", size: int = 12, extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" fill="{TEXT}"'
            f"{extra}>{escape(body)}</text>")  # fmt: skip


@dataclass
class BarSeries:
    label: str
    color: str
    values: list[float | None]
    intervals: list[tuple[float, float] | None] = field(default_factory=list)


def bar_chart(groups: Sequence[str], series: Sequence[BarSeries], width: int = 880, height: int = 340) -> str:
    """Grouped bars on a 0..1 axis, one group per metric, one bar per series, with 95% CI whiskers."""
    left, right, top, bottom = 44, 12, 22, 40
    plot_w, plot_h = width - left - right, height - top - bottom

    def y(v: float) -> float:
        return top + plot_h * (1 - max(0.0, min(1.0, v)))

    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" xmlns="http://www.w3.org/2000/svg"'
             f' font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif">']  # fmt: skip
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
                     f'stroke="{GRID}" stroke-width="1"/>')  # fmt: skip
        parts.append(_text(left - 8, y(tick) + 4, f"{tick:.2f}", "end", 11))
    group_w = plot_w / max(1, len(groups))
    n = max(1, len(series))
    bar_w = min(56.0, group_w * 0.78 / n)
    for g, group in enumerate(groups):
        x0 = left + g * group_w + (group_w - bar_w * n) / 2
        for s, ser in enumerate(series):
            value = ser.values[g] if g < len(ser.values) else None
            if value is None:
                continue
            x = x0 + s * bar_w
            interval = ser.intervals[g] if g < len(ser.intervals) else None
            tip = f"{ser.label} · {group}: {value:.3f}"
            if interval:
                tip += f" (95% CI {interval[0]:.3f}–{interval[1]:.3f})"
            parts.append(
                f'<rect x="{x + 1:.1f}" y="{y(value):.1f}" width="{bar_w - 2:.1f}" '
                f'height="{max(0.0, y(0) - y(value)):.1f}" rx="2" fill="{ser.color}">'
                f"<title>{escape(tip)}</title></rect>"
            )
            label_y = y(value) - 5
            if interval:
                cx, lo, hi = x + bar_w / 2, y(interval[0]), y(interval[1])
                cap = min(6.0, bar_w / 4)
                parts.append(
                    f'<path d="M{cx:.1f},{lo:.1f}V{hi:.1f}M{cx - cap:.1f},{lo:.1f}H{cx + cap:.1f}'
                    f'M{cx - cap:.1f},{hi:.1f}H{cx + cap:.1f}" '
                    'stroke="#1f2937" stroke-width="1.2" fill="none"/>'
                )
                label_y = min(label_y, hi - 5)
            if bar_w >= 24:
                parts.append(_text(x + bar_w / 2, max(11.0, label_y), f"{value:.2f}", size=10))
        parts.append(_text(left + (g + 0.5) * group_w, height - bottom + 20, group, size=12,
                           extra=' font-weight="600"'))  # fmt: skip
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="{AXIS}"/>')
    parts.append("</svg>")
    return "".join(parts)


@dataclass
class LineSeries:
    label: str
    color: str
    points: list[tuple[float, float]]
    dashed: bool = False
    markers: bool = True
    width: float = 2.4
    opacity: float = 1.0


@dataclass
class Mark:
    """A vertical line at step `x` with a short label (e.g. the best checkpoint)."""

    x: float
    label: str
    color: str = AXIS


def _y_range(ys: list[float]) -> list[float]:
    """Round ticks over the data; rewards (all within 0..1) keep the axis inside 0..1."""
    lo, hi = min(ys), max(ys)
    pad = (hi - lo) * 0.08 or 0.05
    ticks = nice_ticks(lo - pad, hi + pad, 5)
    if lo >= 0 and hi <= 1:
        ticks = nice_ticks(0.0, min(1.0, ticks[-1]), 5)
    return ticks


def line_chart(
    series: Sequence[LineSeries],
    x_label: str,
    y_label: str,
    width: int = 880,
    height: int = 320,
    marks: Sequence[Mark] = (),
) -> str:
    """Lines over a shared x axis (steps) with optional vertical marks; round ticks fit the data."""
    left, right, top, bottom = 52, 16, 16, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    xs = [x for s in series for x, _ in s.points] or [0.0, 1.0]
    ys = [v for s in series for _, v in s.points] or [0.0, 1.0]
    x_ticks = nice_ticks(min(xs), max(xs), 8)
    y_ticks = _y_range(ys)
    x_min, x_max = x_ticks[0], x_ticks[-1]
    y_min, y_max = y_ticks[0], y_ticks[-1]

    def px(x: float) -> float:
        return left + plot_w * (x - x_min) / ((x_max - x_min) or 1)

    def py(v: float) -> float:
        return top + plot_h * (1 - (v - y_min) / ((y_max - y_min) or 1))

    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" xmlns="http://www.w3.org/2000/svg"'
             f' font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif">']  # fmt: skip
    for tick in y_ticks:
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{py(tick):.1f}" y2="{py(tick):.1f}" '
                     f'stroke="{GRID}"/>')  # fmt: skip
        parts.append(_text(left - 8, py(tick) + 4, _fmt(tick), "end", 11))
    for tick in x_ticks:
        parts.append(_text(px(tick), height - bottom + 18, _fmt(tick), size=11))
    parts.append(
        f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="{AXIS}"/>'
    )
    parts.append(_text(left + plot_w / 2, height - 6, x_label, size=12, extra=' font-weight="600"'))
    mid = top + plot_h / 2
    rotate = f' font-weight="600" transform="rotate(-90 14 {mid:.1f})"'
    parts.append(_text(14, mid, y_label, size=12, extra=rotate))
    for mark in marks:
        x = px(mark.x)
        parts.append(f'<line class="mark" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + plot_h}" '
                     f'stroke="{mark.color}" stroke-width="1.2" stroke-dasharray="2 3"/>')  # fmt: skip
        anchor = "end" if x > left + plot_w * 0.85 else "start"
        parts.append(_text(x + (-5 if anchor == "end" else 5), top + 11, mark.label, anchor, 11))
    for ser in series:
        if not ser.points:
            continue
        path = "M" + "L".join(f"{px(x):.1f},{py(v):.1f}" for x, v in ser.points)
        dash = ' stroke-dasharray="5 4"' if ser.dashed else ""
        fade = f' stroke-opacity="{ser.opacity:g}"' if ser.opacity < 1 else ""
        title = escape(ser.label)
        parts.append(f'<path d="{path}" fill="none" stroke="{ser.color}" stroke-width="{ser.width:g}"'
                     f'{dash}{fade} stroke-linejoin="round"><title>{title}</title></path>')  # fmt: skip
        if ser.markers:
            for x, v in ser.points:
                tip = escape(f"{ser.label} · step {_fmt(x)}: {v:.4f}")
                parts.append(
                    f'<circle cx="{px(x):.1f}" cy="{py(v):.1f}" r="3.2" fill="#fff" stroke="{ser.color}" '
                    f'stroke-width="2"><title>{tip}</title></circle>'
                )
    parts.append("</svg>")
    return "".join(parts)


def downsample(points: Sequence[tuple[float, float]], limit: int = 400) -> list[tuple[float, float]]:
    """At most `limit` points that keep the curve's shape (largest-triangle-three-buckets).

    The first and last points stay; every bucket between keeps the point that spans the largest
    triangle with its neighbours, so peaks and dips survive where a plain stride would drop them.
    """
    n = len(points)
    if limit < 3 or n <= limit:
        return list(points)
    kept = [points[0]]
    size = (n - 2) / (limit - 2)
    a = 0
    for i in range(limit - 2):
        lo, hi = int(i * size) + 1, min(int((i + 1) * size) + 1, n - 1)
        nxt_lo, nxt_hi = hi, min(int((i + 2) * size) + 1, n)
        tail = points[nxt_lo:nxt_hi] or [points[-1]]
        cx = sum(p[0] for p in tail) / len(tail)
        cy = sum(p[1] for p in tail) / len(tail)
        ax, ay = points[a]
        best, best_area = lo, -1.0
        for j in range(lo, hi):
            x, y = points[j]
            area = abs((ax - cx) * (y - ay) - (ax - x) * (cy - ay))
            if area > best_area:
                best, best_area = j, area
        kept.append(points[best])
        a = best
    kept.append(points[-1])
    return kept


def share_bar(parts: Sequence[tuple[str, float]], width: int = 880, height: int = 34) -> str:
    """One horizontal bar split into labelled shares (e.g. a step's time: sampling, grading, ...)."""
    total = sum(max(0.0, v) for _, v in parts) or 1.0
    out = [f'<svg class="chart share" viewBox="0 0 {width} {height}" role="img" '
           f'xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif">']  # fmt: skip
    x = 0.0
    for index, (label, value) in enumerate(parts):
        w = width * max(0.0, value) / total
        if w <= 0:
            continue
        tip = escape(f"{label}: {100 * value / total:.1f}%")
        out.append(f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="{height}" fill="{color(index)}">'
                   f"<title>{tip}</title></rect>")  # fmt: skip
        if w > 70:
            out.append(f'<text x="{x + 6:.1f}" y="{height / 2 + 4:.1f}" font-size="12" fill="#fff">'
                       f"{escape(label)} {100 * value / total:.0f}%</text>")  # fmt: skip
        x += w
    out.append("</svg>")
    return "".join(out)
