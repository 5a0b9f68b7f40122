"""What both benchmarks share: result rows, latency statistics, the rich table and the JSON output.

Every speed row carries its ratio to a baseline measured in the same run (`ratio`), never a bare
time as a claim. Rows that could not be measured here stay in the output with `skipped` set to
the reason, so a missing backend is visible instead of silently dropped.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel


class Row(BaseModel):
    """One measured (or skipped) configuration."""

    name: str
    per_s: float | None = None  # samples (or steps) per second
    p50_ms: float | None = None  # median latency of one sample (or step)
    p99_ms: float | None = None
    ratio: float | None = None  # per_s / the baseline's per_s (for steps: TRL's time / this time)
    skipped: str | None = None  # why this row was not measured here
    note: str = ""


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def measured(name: str, count: int, wall_s: float, latencies_s: Sequence[float], *, note: str = "") -> Row:
    """A row from `count` units done in `wall_s` and the latency each unit saw."""
    return Row(
        name=name,
        per_s=count / wall_s if wall_s > 0 else None,
        p50_ms=percentile(latencies_s, 50) * 1e3,
        p99_ms=percentile(latencies_s, 99) * 1e3,
        note=note,
    )


def skipped(name: str, reason: str) -> Row:
    return Row(name=name, skipped=reason)


def with_ratios(rows: list[Row], baselines: dict[str, float]) -> list[Row]:
    """Set each speed row's ratio to the baseline rate of its suffix (`.../realistic` -> realistic)."""
    for row in rows:
        suffix = row.name.rsplit("/", 1)[-1]
        base = baselines.get(suffix)
        if row.per_s is not None and base:
            row.ratio = row.per_s / base
    return rows


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run, under two minutes)")
    p.add_argument(
        "--json", action="store_true", help='print one JSON object {"rows": [...]} and nothing else'
    )
    p.add_argument("--save-json", type=Path, metavar="FILE", help="also write the JSON object to FILE")
    p.add_argument("--save-md", type=Path, metavar="FILE", help="also write the table as Markdown to FILE")
    return p


def machine() -> str:
    """A one-line description of where the numbers came from."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {load:.1f} at the end"
    )


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None or not math.isfinite(value) else format(value, spec)


def markdown(title: str, rows: list[Row], notes: Sequence[str], where: str) -> str:
    """The rows as a Markdown table (for the README's performance section)."""
    lines = [
        f"**{title}**",
        "",
        "| name | per s | p50 ms | p99 ms | ratio | note |",
        "|---|--:|--:|--:|--:|---|",
    ]
    for row in rows:
        if row.skipped:
            lines.append(f"| {row.name} | - | - | - | - | skipped: {row.skipped.replace('|', '/')} |")
            continue
        cells = (
            _fmt(row.per_s, ",.1f"),
            _fmt(row.p50_ms, ".4g"),
            _fmt(row.p99_ms, ".4g"),
            _fmt(row.ratio, ".4g"),
        )
        lines.append(f"| {row.name} | {' | '.join(cells)} | {row.note.replace('|', '/')} |")
    return "\n".join([*lines, "", *notes, "", f"_{where}_", ""])


def emit(title: str, rows: list[Row], args: argparse.Namespace, *, notes: Sequence[str] = ()) -> None:
    """Print the rows: one JSON object on stdout with --json, else a rich table (and notes).

    --save-json / --save-md (from `parser`) also write the JSON object / a Markdown table to files.
    """
    where = machine()
    payload = {"rows": [r.model_dump(exclude_none=False) for r in rows], "machine": where}
    if args.save_json is not None:
        args.save_json.write_text(json.dumps(payload, indent=1) + "\n")
    if args.save_md is not None:
        args.save_md.write_text(markdown(title, rows, notes, where))
    if args.json:
        json.dump(payload, sys.stdout)
        sys.stdout.write("\n")
        sys.stdout.flush()
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for header in ("name", "per s", "p50 ms", "p99 ms", "ratio", "note"):
        table.add_column(header, justify="left" if header in ("name", "note") else "right")
    for row in rows:
        if row.skipped:
            table.add_row(row.name, "-", "-", "-", "-", f"[yellow]skipped: {row.skipped}[/yellow]")
            continue
        table.add_row(
            row.name,
            _fmt(row.per_s, ",.1f"),
            _fmt(row.p50_ms, ".4g"),
            _fmt(row.p99_ms, ".4g"),
            _fmt(row.ratio, ".4g"),
            row.note,
        )
    console = Console(width=max(140, Console().width))
    console.print(table)
    for line in notes:
        console.print(line)
    console.print(f"[dim]{where}[/dim]")


def progress(message: str) -> None:
    """Progress goes to stderr, so that --json leaves stdout to the one JSON object."""
    print(message, file=sys.stderr, flush=True)
