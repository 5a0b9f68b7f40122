"""Where a GradeBatch sample's time goes: each stage of the path, timed alone with rftkit's own code.

    .venv/bin/python bench/grading_profile.py                 # realistic grader, 1024 samples
    .venv/bin/python bench/grading_profile.py --backend namespace --json

The stages, in the order a sample meets them (microseconds of this thread's CPU time per sample,
so that other processes on a busy machine do not inflate them):
  client-encode      GraderClient: samples and items to JSON (codec.encode_samples/encode_items)
  service-decode     the service: JSON to Sample models and item dicts (codec.decode_*)
  grader-in          the python grader type: Sample.as_grader_dict() and dict(item) per pair
  pool-encode        the pool: one JSON encoding of the chunk (sandbox.worker.encode_batch)
  worker-grade       inside the worker: the grader's grade() alone (the in-process ceiling)
  worker-protocol    inside the worker, around grade(): alarm, output capture, json.dumps of the
                     result, one write(2) per result (worker_runtime.Worker.grade_one, to /dev/null)
  parent-receive     the pool's side: json.loads and the outcome per result frame
  grader-out         the python grader type: interpret() and a GraderResult per outcome
  service-encode     the service: results to JSON, rewards and error indices (codec.encode_results)
  client-decode      GraderClient.grade_batch: JSON to GraderResult models (codec.decode_results)
and, measured end to end through the real parts (wall time per sample):
  real-worker-1      a warm pool of ONE real worker on the backend (pipes, the sandbox, scheduling)
  real-pool          the pool with its default worker count (one per core)
  real-grader        the python grader type on that pool (layer-grader in grading.py)
  real-gradebatch    GradeBatch through `rft serve` on loopback, one client (gRPC included)
The stage sum against real-gradebatch shows how much is work the code does per sample and how
much is waiting (pipe wake-ups, threads, the GIL, gRPC) on this machine. Rows `proposed/STAGE`
time sketches of the changes that would remove most of the per-sample work (see stage_rows).
"""

from __future__ import annotations

import contextlib
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


JSON_STARTS = tuple('{["-0123456789')


def guarded_grader_dict(sample: Any) -> dict[str, Any]:
    """Sketch: Sample.as_grader_dict(), parsing output_text only when it can be JSON."""
    data = sample.model_dump()
    if data.get("output_json") is None:
        text = sample.output_text.lstrip()
        data["output_json"] = None
        if text.startswith(JSON_STARTS) or text in ("true", "false", "null"):
            with contextlib.suppress(json.JSONDecodeError):
                data["output_json"] = json.loads(text)
    return data


def stage_rows(source: str, pairs: list[Pair], repeats: int) -> tuple[list[Stage], list[Stage]]:
    """Each stage of the path alone, on the same batch: as rftkit does it now, and as proposed.

    The proposed stages are sketches of the changes bench-readme describes (install the alarm
    handler once and send one result frame per batch in the worker; parse output_text only when
    it can be JSON; rewards as floats, a GraderResult only for a sample that failed; rewards and
    error indices in the response without per-result JSON).
    They are timed here to size the gain; they are not rftkit code.
    """
    from rftkit.grader_service import codec
    from rftkit.grader_service.pb import grader_pb2 as pb
    from rftkit.plugins.base import GraderContext
    from rftkit.plugins.graders.python import interpret
    from rftkit.plugins.registry import build_grader
    from rftkit.sandbox.api import WorkerOutcome
    from rftkit.sandbox.worker import _outcomes, encode_batch
    from rftkit.sandbox.worker_runtime import FLUSH_RESULTS, Worker, _on_alarm, write_frame

    n = len(pairs)
    samples, items = [s for s, _ in pairs], [i for _, i in pairs]
    grade = load_in_process(source)
    samples_json, items_json = codec.encode_samples(samples), codec.encode_items(items)
    decoded = codec.decode_samples(samples_json)
    decoded_items = codec.decode_items(items_json, n)
    grader_pairs = [(s.as_grader_dict(), dict(i)) for s, i in zip(decoded, decoded_items, strict=True)]
    values = [grade(s, i) for s, i in pairs]
    frames = [  # as the worker sends them: up to FLUSH_RESULTS results per frame
        (k, json.dumps([k, [[v, None, None, ""] for v in values[k : k + FLUSH_RESULTS]]]).encode())
        for k in range(0, n, FLUSH_RESULTS)
    ]
    batch_frame = json.dumps([[v, None, None, ""] for v in values]).encode()
    outcomes = [WorkerOutcome.model_construct(value=v, error=None, details=None, stdout="") for v in values]
    context = GraderContext(tenant="profile", grader_id="profile", version="1", sandbox="process")
    grader = build_grader({"type": "python", "source": source}, context)
    results = [grader.result(interpret(o), 0.0) for o in outcomes]
    results_json = codec.encode_results(results)
    rewards_only = pb.GradeBatchResponse(rewards=values).SerializeToString()

    devnull = os.open(os.devnull, os.O_WRONLY)
    worker = Worker(-1, devnull, {"sample_timeout_s": 5.0})
    problem = worker.load(source, 5.0)
    if problem:
        raise RuntimeError(problem)

    def worker_protocol() -> None:
        for sample, item in grader_pairs:
            worker.grade_one(sample, item)
        worker.flush()

    def worker_batched() -> None:  # the handler is installed once, at load time
        signal.signal(signal.SIGALRM, _on_alarm)
        got = []
        for sample, item in grader_pairs:
            signal.setitimer(signal.ITIMER_REAL, worker.sample_timeout_s)
            got.append([grade(sample, item), None, None, worker.capture.take()])
        signal.setitimer(signal.ITIMER_REAL, 0)
        write_frame(devnull, json.dumps(got).encode())

    def parent_receive() -> None:
        for k, data in frames:
            _outcomes(data, k, n - k)

    def parent_batched() -> None:
        construct = WorkerOutcome.model_construct
        [construct(value=v, error=e, details=d, stdout=o) for v, e, d, o in json.loads(batch_frame)]

    def rewards_out() -> list[float]:  # a GraderResult only for a sample that failed
        return [float(interpret(outcome).reward) for outcome in outcomes]

    def service_encode() -> None:
        codec.encode_results(results)
        [r.reward for r in results]
        [k for k, r in enumerate(results) if codec.error_flags(r)]

    def service_rewards() -> None:
        pb.GradeBatchResponse(rewards=values, error_indices=[]).SerializeToString()

    now: list[tuple[str, Callable[[], Any]]] = [
        ("client-encode", lambda: (codec.encode_samples(samples), codec.encode_items(items))),
        ("service-decode", lambda: (codec.decode_samples(samples_json), codec.decode_items(items_json, n))),
        (
            "grader-in",
            lambda: [(s.as_grader_dict(), dict(i)) for s, i in zip(decoded, decoded_items, strict=True)],
        ),
        ("pool-encode", lambda: encode_batch(grader_pairs)),
        ("worker-grade", lambda: [grade(s, i) for s, i in grader_pairs]),
        ("worker-protocol", worker_protocol),
        ("parent-receive", parent_receive),
        ("grader-out", lambda: [grader.result(interpret(o), 0.0) for o in outcomes]),
        ("service-encode", service_encode),
        ("client-decode", lambda: codec.decode_results(results_json)),
    ]
    proposed = {
        "grader-in": lambda: [
            (guarded_grader_dict(s), dict(i)) for s, i in zip(decoded, decoded_items, strict=True)
        ],
        "worker-protocol": worker_batched,
        "parent-receive": parent_batched,
        "grader-out": rewards_out,
        "service-encode": service_rewards,
        "client-decode": lambda: list(pb.GradeBatchResponse.FromString(rewards_only).rewards),
    }

    def timed(name: str, call: Callable[[], Any]) -> float:
        progress(f"  stage {name}")
        # CPU time of this thread: the work itself, not the time other processes held the CPU
        return per_sample_us(call, n, repeats, time.thread_time)

    try:
        current = [(name, timed(name, call)) for name, call in now]
        after = [
            (name, timed(f"{name} (proposed)", proposed[name]) if name in proposed else us)
            for name, us in current
        ]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        worker.proto_in = worker.proto_out = -1  # its at-fork hook must not close a reused fd
        os.close(devnull)
        grader.close()
    # worker-protocol includes the grade() call: report only what it adds.
    grade_us = dict(current)["worker-grade"]

    def net(stages: list[Stage]) -> list[Stage]:
        return [(name, us - grade_us if name == "worker-protocol" else us) for name, us in stages]

    return net(current), net(after)


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

        rows.append(("real-gradebatch", per_sample_us(call, n, repeats)))
        client.close()
    return rows


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
    stages, proposed = stage_rows(source, pairs, repeats)
    ceiling = dict(stages)["worker-grade"]
    total = sum(us for _, us in stages)
    rows = [
        Row(name=f"stage/{name}", p50_ms=us / 1e3, ratio=us / total, note=f"{us:.2f} us/sample")
        for name, us in stages
    ]
    rows.append(Row(name="stage/sum", p50_ms=total / 1e3, ratio=1.0, note=f"{total:.2f} us/sample, serial"))
    changed = dict(stages)
    rows += [
        Row(name=f"proposed/{name}", p50_ms=us / 1e3, ratio=us / total, note=f"{us:.2f} us/sample (sketch)")
        for name, us in proposed
        if us != changed[name]
    ]
    after = sum(us for _, us in proposed)
    note = f"{after:.2f} us/sample, serial; {total / after:.1f}x less than now"
    rows.append(Row(name="proposed/sum", p50_ms=after / 1e3, ratio=after / total, note=note))
    progress(f"the real parts on {args.backend}")
    for name, us in real_rows(args.backend, source, pairs, expected, repeats):
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
        "p50_ms: milliseconds per sample (median of repeats); stage and proposed ratio: / the stage sum;",
        "proposed/*: sketches of the changes in the bench readme, timed like the stages (not rftkit code);",
        "real-* ratio: wall time per sample / the stage sum (above 1: waiting, not work).",
    ]
    emit(f"GradeBatch per-sample profile ({args.grader}, {args.samples} samples)", rows, args, notes=notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
