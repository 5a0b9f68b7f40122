"""Latency of `graders.run` (a string_check) through the HTTP API, against baselines in the same run.

    python bench/http_graders.py [--quick] [--json]

Starts a real `rft serve --http-port` child on loopback and times, one call after another:
  - in-process: the same string_check built and graded in this process (the grader's own cost);
  - grpc/RunGrader: the gRPC API's RunGrader of the same spec, inline, over loopback;
  - http/sdk: `client.fine_tuning.alpha.graders.run(...)` with the official `openai` SDK;
  - http/httpx: the same POST with a plain keep-alive httpx client (what the SDK adds on top).
Each row's ratio is its p50 over the gRPC RunGrader p50 (the service path the HTTP API sits beside),
and the notes give the HTTP p50 as a multiple of the in-process call (HTTP's whole overhead).
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import Row, emit, parser, percentile, progress

SPEC = {
    "type": "string_check",
    "name": "exact",
    "input": "{{sample.output_text}}",
    "reference": "{{item.label}}",
    "operation": "eq",
}
ITEM = {"label": "Paris"}


def timed(name: str, call: Callable[[], object], count: int, warmup: int, note: str = "") -> Row:
    for _ in range(warmup):
        call()
    latencies = []
    start = time.perf_counter()
    for _ in range(count):
        t0 = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - t0)
    wall = time.perf_counter() - start
    return Row(
        name=name,
        per_s=count / wall,
        p50_ms=percentile(latencies, 50) * 1e3,
        p99_ms=percentile(latencies, 99) * 1e3,
        note=note,
    )


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    count, warmup = (50, 10) if args.quick else (1000, 50)

    import httpx
    from rftkit.core.records import Sample
    from rftkit.grader_service.client import GraderClient
    from rftkit.grader_service.http.testing import http_service  # a real `rft serve --http-port` child
    from rftkit.plugins.registry import build_grader

    grader = build_grader(dict(SPEC))
    sample = Sample.from_text("Paris")
    rows = [timed("in-process", lambda: grader.grade(sample, ITEM), count * 10, warmup, "the grader alone")]
    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp:
        progress("starting rft serve --http-port ...")
        with http_service(Path(tmp), "--sandbox", "process") as service:
            from rftkit.grader_service.testing import TOKEN_A

            with GraderClient(f"127.0.0.1:{service.grpc_port}", TOKEN_A) as grpc_client:
                rows.append(
                    timed("grpc/RunGrader", lambda: grpc_client.run(SPEC, "Paris", ITEM), count, warmup)
                )
            sdk = service.client(TOKEN_A)
            rows.append(
                timed(
                    "http/sdk",
                    lambda: sdk.fine_tuning.alpha.graders.run(grader=SPEC, model_sample="Paris", item=ITEM),
                    count,
                    warmup,
                    "official openai SDK",
                )
            )
            body = {"grader": SPEC, "model_sample": "Paris", "item": ITEM}
            headers = {"Authorization": f"Bearer {TOKEN_A}"}
            with httpx.Client(base_url=service.base_url, headers=headers) as raw:
                url = "/fine_tuning/alpha/graders/run"
                rows.append(
                    timed("http/httpx", lambda: raw.post(url, json=body).raise_for_status(), count, warmup)
                )
    baseline = next(r for r in rows if r.name == "grpc/RunGrader")
    for row in rows:
        if row.p50_ms and baseline.p50_ms:
            row.ratio = row.p50_ms / baseline.p50_ms
    in_process = rows[0].p50_ms or float("nan")
    sdk_row = next(r for r in rows if r.name == "http/sdk")
    notes = [
        "ratio: p50 latency / gRPC RunGrader's p50 (lower is faster); one call at a time, loopback.",
        f"http/sdk p50 is {sdk_row.p50_ms / in_process:,.0f}x the in-process grade "
        f"({sdk_row.p50_ms:.2f} ms; the issue asks for well under 50 ms).",
    ]
    emit("graders.run (string_check) over HTTP vs gRPC vs in process", rows, args, notes=notes)


if __name__ == "__main__":
    main()
