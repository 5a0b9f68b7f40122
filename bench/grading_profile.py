"""Where a GradeBatch sample's time goes: each stage of the path, timed alone with rftkit's own code.

    .venv/bin/python bench/grading_profile.py                 # realistic grader, 1024 samples
    .venv/bin/python bench/grading_profile.py --backend namespace --json

The stages, in the order a sample meets them (microseconds of this thread's CPU time per sample,
so that other processes on a busy machine do not inflate them):
  client-encode      GraderClient: one GradeBatch request (samples once, each distinct item once)
  service-decode     the service: JSON to Sample records and shared item dicts (codec.decode_*)
  grader-in          the python grader type: what the worker gets per sample (worker_sample)
  pool-encode        the pool: one encoding of the chunk (sandbox.worker.encode_batch)
  worker-grade       inside the worker: the grader's grade() alone (the in-process ceiling)
  worker-protocol    inside the worker, around grade(): decoding the batch, alarm, output
                     capture, the result rows and their frames (to /dev/null)
  parent-receive     the pool's side: the result frames to WorkerOutcomes (worker._outcomes)
  grader-out         the python grader type: outcomes to a GradedBatch (rewards column)
  service-encode     the service: the compact GradeBatchResponse (server._batch_response)
  client-decode      GraderClient.grade_batch: the response to one GraderResult per sample
and, measured end to end through the real parts (wall time per sample):
  real-worker-1      a warm pool of ONE real worker on the backend (pipes, the sandbox, scheduling)
  real-pool          the pool with its default worker count (one per core)
  real-grader        the python grader type on that pool (layer-grader in grading.py)
  real-gradebatch    GradeBatch through `rft serve` on loopback, one client (gRPC included)
The stage sum against real-gradebatch shows how much is work the code does per sample and how
much is waiting (pipe wake-ups, threads, the GIL, gRPC) on this machine. During real-gradebatch
the CPU each process used is counted too (from /proc: user + system time, every thread):
  cpu-client         this process: GraderClient, gRPC's threads included
  cpu-service        the `rft serve` process: gRPC, decoding, the pool's threads, encoding
  cpu-workers        the sandbox processes under it (the workers, their launchers)
CPU time is less sensitive than wall time to what else a shared machine runs.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import Row, emit, parser, progress

from grading import GRADERS, Pair, check_scores, load_in_process, make_pairs

Stage = tuple[str, float]  # (stage name, microseconds per sample)


def per_sample_us(
    call: Callable[[], Any], count: int, repeats: int, clock: Callable[[], float] = time.perf_counter
) -> float:
    """The median over `repeats` of call()'s time on `clock`, per sample, in microseconds."""
    call()  # warm up
    times = []
    for _ in range(repeats):
        start = clock()
        call()
        times.append(clock() - start)
    return statistics.median(times) / count * 1e6


def stage_rows(source: str, pairs: list[Pair], repeats: int) -> list[Stage]:
    """Each stage of the path alone, on the same batch, with the code each stage runs."""
    from rftkit.grader_service import codec
    from rftkit.grader_service.client import batch_request, graded_batch, grader_ref
    from rftkit.grader_service.pb import grader_pb2 as pb
    from rftkit.grader_service.server import GraderServicer
    from rftkit.plugins.base import GraderContext
    from rftkit.plugins.graders.python import worker_sample
    from rftkit.plugins.registry import build_grader
    from rftkit.sandbox.worker import _outcomes, encode_batch
    from rftkit.sandbox.worker_runtime import FLUSH_RESULTS, Worker, _stop_ticks

    n = len(pairs)
    samples, items = [s for s, _ in pairs], [i for _, i in pairs]  # as bench/grading.py sends them
    grade = load_in_process(source)
    ref = grader_ref("gr_0123456789abcdef")
    request = batch_request(ref, samples, items)
    request.compact = True
    decoded = codec.decode_samples(request.samples_json)
    decoded_items = codec.decode_items(request.items_json, n, request.item_index)
    grader_pairs = [(worker_sample(s), i) for s, i in zip(decoded, decoded_items, strict=True)]
    payload = encode_batch(grader_pairs)
    values = [grade(s, i) for s, i in pairs]
    frames = [  # as the worker sends them: up to FLUSH_RESULTS bare numbers per frame
        (k, json.dumps([k, values[k : k + FLUSH_RESULTS]]).encode()) for k in range(0, n, FLUSH_RESULTS)
    ]
    outcomes = [o for k, data in frames for o in _outcomes(data, k, n - k)]
    context = GraderContext(tenant="profile", grader_id="profile", version="1", sandbox="process")
    grader = build_grader({"type": "python", "source": source}, context)
    graded = grader.collect(outcomes, time.perf_counter())  # type: ignore[attr-defined]
    ref_tuple = ("gr_0123456789abcdef", "v1", {})
    response_bytes = GraderServicer._batch_response(graded, ref_tuple, request).SerializeToString()

    devnull = os.open(os.devnull, os.O_WRONLY)
    worker = Worker(-1, devnull, {"sample_timeout_s": 5.0})
    problem = worker.load(source, 5.0)
    if problem:
        raise RuntimeError(problem)

    def worker_protocol() -> None:  # what Worker.serve does with one batch message
        worker.grade_message(json.loads(payload))

    def parent_receive() -> None:
        for k, data in frames:
            _outcomes(data, k, n - k)

    stages: list[tuple[str, Callable[[], Any]]] = [
        ("client-encode", lambda: batch_request(ref, samples, items)),
        (
            "service-decode",
            lambda: (
                codec.decode_samples(request.samples_json),
                codec.decode_items(request.items_json, n, request.item_index),
            ),
        ),
        ("grader-in", lambda: [(worker_sample(s), i) for s, i in zip(decoded, decoded_items, strict=True)]),
        ("pool-encode", lambda: encode_batch(grader_pairs)),
        ("worker-grade", lambda: [grade(s, i) for s, i in pairs]),
        ("worker-protocol", worker_protocol),
        ("parent-receive", parent_receive),
        ("grader-out", lambda: grader.collect(outcomes, time.perf_counter())),  # type: ignore[attr-defined]
        (
            "service-encode",
            lambda: GraderServicer._batch_response(graded, ref_tuple, request).SerializeToString(),
        ),
        (
            "client-decode",
            lambda: graded_batch(pb.GradeBatchResponse.FromString(response_bytes)).to_results(),
        ),
    ]

    def timed(name: str, call: Callable[[], Any]) -> float:
        progress(f"  stage {name}")
        # CPU time of this thread: the work itself, not the time other processes held the CPU
        return per_sample_us(call, n, repeats, time.thread_time)

    try:
        current = [(name, timed(name, call)) for name, call in stages]
    finally:
        _stop_ticks()
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        worker.proto_in = worker.proto_out = -1  # its at-fork hook must not close a reused fd
        os.close(devnull)
        grader.close()
    # worker-protocol includes the grade() call: report only what it adds.
    grade_us = dict(current)["worker-grade"]
    return [(name, us - grade_us if name == "worker-protocol" else us) for name, us in current]


def real_rows(
    backend: str, source: str, pairs: list[Pair], expected: list[float], repeats: int
) -> list[tuple[str, float]]:
    """The same batch through the real parts, end to end."""
    from rftkit.grader_service.embedded import start_local_service
    from rftkit.plugins.base import GraderContext, Sample
    from rftkit.plugins.registry import build_grader
    from rftkit.sandbox.pools import get_pool

    n = len(pairs)
    tag = f"profile-{time.time_ns()}"
    rows = []
    one = get_pool(
        tenant=tag, grader_id="one", version="1", source=source, backend=backend, limits={"workers": 1}
    )
    pool = get_pool(tenant=tag, grader_id="all", version="1", source=source, backend=backend)
    context = GraderContext(tenant=tag + "g", grader_id="g", version="1", sandbox=backend)
    grader = build_grader({"type": "python", "source": source}, context)
    samples = [(Sample(output_text=s["output_text"]), i) for s, i in pairs]
    try:
        for name, call in (
            ("real-worker-1", lambda: one.grade(pairs)),
            ("real-pool", lambda: pool.grade(pairs)),
            ("real-grader", lambda: grader.grade_batch(samples)),
        ):
            progress(f"  {name}")
            call()  # start the workers
            rows.append((name, per_sample_us(call, n, repeats)))
    finally:
        one.close()
        pool.close()
        grader.close()
    progress("  real-gradebatch")
    with start_local_service(sandbox=backend) as service:
        client = service.client()
        grader_id, version = client.create_grader(source, name="profile")
        just = ([s for s, _ in pairs], [i for _, i in pairs])

        def call() -> None:
            check_scores(client.grade_batch(grader_id, *just, version=version), expected, "real-gradebatch")

        call()  # warm: every worker started
        before = process_cpu(service.pid)
        rows.append(("real-gradebatch", per_sample_us(call, n, repeats)))
        after = process_cpu(service.pid)
        client.close()
    samples = n * (repeats + 1)  # per_sample_us calls once more to warm up
    for part in ("client", "service", "workers"):
        rows.append((f"cpu-{part}", (after[part] - before[part]) / samples * 1e6))
    return rows


def process_cpu(service_pid: int) -> dict[str, float]:
    """CPU seconds so far of this process (the client), the service, and the
    sandbox processes under it (workers and their launchers; those that exited are not counted:
    the timed requests must not recycle a worker)."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry))

    def cpu(pid: int) -> float:
        try:  # the process's CPU clock (Linux: every thread, to the nanosecond)
            return time.clock_gettime((~pid << 3) | 2)
        except OSError:
            pass
        try:  # clock ticks
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / tick

    below, todo = 0.0, list(children.get(service_pid, []))
    while todo:
        pid = todo.pop()
        below += cpu(pid)
        todo += children.get(pid, [])
    return {"client": time.process_time(), "service": cpu(service_pid), "workers": below}


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--backend", default="namespace", choices=("namespace", "docker", "process"))
    p.add_argument("--grader", default="realistic", choices=tuple(GRADERS))
    p.add_argument("--samples", type=int, default=1024)
    args = p.parse_args(argv)
    repeats = 3 if args.quick else 9
    source = GRADERS[args.grader]
    pairs = make_pairs(args.samples)
    expected = [load_in_process(source)(s, i) for s, i in pairs]
    progress(f"{args.grader} grader, {args.samples} samples, stages in this process")
    stages = stage_rows(source, pairs, repeats)
    ceiling = dict(stages)["worker-grade"]
    total = sum(us for _, us in stages)
    rows = [
        Row(name=f"stage/{name}", p50_ms=us / 1e3, ratio=us / total, note=f"{us:.2f} us/sample")
        for name, us in stages
    ]
    rows.append(Row(name="stage/sum", p50_ms=total / 1e3, ratio=1.0, note=f"{total:.2f} us/sample, serial"))
    progress(f"the real parts on {args.backend}")
    for name, us in real_rows(args.backend, source, pairs, expected, repeats):
        if name.startswith("cpu-"):
            note = f"{us:.2f} us/sample of CPU during real-gradebatch (all its threads)"
            rows.append(Row(name=f"{name}/{args.backend}", p50_ms=us / 1e3, ratio=us / total, note=note))
            continue
        rows.append(
            Row(
                name=f"{name}/{args.backend}",
                per_s=1e6 / us,
                p50_ms=us / 1e3,
                ratio=us / total,
                note=f"{us:.2f} us/sample wall; {us / ceiling:.0f}x grade() alone",
            )
        )
    notes = [
        "p50_ms: milliseconds per sample (median of repeats); stage ratio: its share of the stage sum;",
        "real-* ratio: wall time per sample / the stage sum (above 1: waiting, not work).",
    ]
    emit(f"GradeBatch per-sample profile ({args.grader}, {args.samples} samples)", rows, args, notes=notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
