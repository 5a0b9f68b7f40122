"""How fast rftkit grades, against calling grade() in-process and against naive sandboxes.

    .venv/bin/python bench/grading.py            # full run (a few minutes)
    .venv/bin/python bench/grading.py --quick    # tiny sizes (smoke run)
    .venv/bin/python bench/grading.py --json     # one JSON object {"rows": [...]}

Two Python graders: `trivial` (string equality) and `realistic` (rapidfuzz's fuzz.ratio on
200-character answers, imported inside the grader). Rows, each with its ratio to the in-process
rate of the same grader measured in this run:
- inprocess/G: grade() called in a loop in this process (the ceiling: no isolation, no network);
- gradebatch-B-N[xC]/G: GradeBatch over gRPC on loopback to a real `rft serve` child with the
  sandbox backend B (namespace, docker, and process = no isolation, for reference), warm pools,
  N samples per request, C concurrent clients (each its own channel, in threads of this
  process), through GraderClient.grade_columns (the rewards column, and a full result only for
  a sample with more to say; grade_batch builds one GraderResult per sample from it on top, about
  0.4 us each: client-decode in grading_profile.py); latency = the request's round trip, which
  every sample in it waits for; its ratio
  is to the in-process rate measured right before and after the row (a shared machine's load
  changes within a run);
- process-per-sample/G: a new `python -c` per sample (the naive sandbox);
- docker-run-per-sample/G: a new hardened container per sample (like a container-per-call
  service), same flags and image as the docker backend;
- cold-start-B: upload of a new grader to its first score, on a running service.
Backends that cannot run here are reported as skipped rows with the reason.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import Row, emit, measured, parser, progress, skipped, with_ratios

GRADERS = {
    "trivial": """
def grade(sample, item):
    return 1.0 if sample["output_text"] == item["reference"] else 0.0
""",
    "realistic": """
from rapidfuzz import fuzz


def grade(sample, item):
    return fuzz.ratio(sample["output_text"], item["reference"]) / 100.0
""",
}
BACKENDS = ("namespace", "docker", "process")
ANSWER_CHARS = 200
# One sample through a fresh interpreter: read [source, sample, item] as JSON, print the score.
ONE_SHOT = (
    "import json, sys\n"
    "source, sample, item = json.loads(sys.argv[1] if len(sys.argv) > 1 else sys.stdin.read())\n"
    "scope = {}\n"
    "exec(compile(source, 'grader.py', 'exec'), scope)\n"
    "print(json.dumps(scope['grade'](sample, item)))\n"
)
Pair = tuple[dict[str, Any], dict[str, Any]]
ADJACENT: dict[str, float] = {}  # row name -> the in-process rate measured around that row


@dataclass(frozen=True)
class Sizes:
    row_s: float  # how long each GradeBatch row runs
    min_requests: int  # per client, whatever row_s says
    inprocess: int  # samples graded in-process
    per_process: int  # samples through a new process each
    per_container: int  # samples through a new container each
    cold_starts: int  # uploads timed per backend
    batches: tuple[int, ...] = (1, 64, 1024)
    clients: tuple[int, ...] = (1, 8)


FULL = Sizes(row_s=3.0, min_requests=5, inprocess=200_000, per_process=40, per_container=12, cold_starts=5)
QUICK = Sizes(row_s=0.25, min_requests=2, inprocess=5_000, per_process=4, per_container=2, cold_starts=1)


def make_pairs(count: int, seed: int = 0) -> list[Pair]:
    """(sample, item) pairs: 200-character references and answers with about 10% of characters edited."""
    rng = random.Random(seed)
    words = ["gene", "variant", "onset", "seizure", "ataxia", "renal", "cyst", "the", "of", "with", "and"]
    pairs = []
    for i in range(count):
        text = ""
        while len(text) < ANSWER_CHARS:
            text += rng.choice(words) + " "
        reference = text[:ANSWER_CHARS]
        if i % 4 == 0:
            answer = reference  # some exact matches, so the trivial grader scores 1 sometimes
        else:
            chars = list(reference)
            for _ in range(ANSWER_CHARS // 10):
                chars[rng.randrange(ANSWER_CHARS)] = rng.choice("abcdefghijklmnopqrstuvwxyz ")
            answer = "".join(chars)
        pairs.append(({"output_text": answer}, {"reference": reference}))
    return pairs


def load_in_process(source: str) -> Callable[[dict[str, Any], dict[str, Any]], float]:
    module = types.ModuleType("bench_grader")
    exec(compile(source, "grader.py", "exec"), module.__dict__)
    return module.grade


# ---- in-process ceiling ------------------------------------------------------------------------


def inprocess_rate(
    grade: Callable[[dict[str, Any], dict[str, Any]], float], pairs: list[Pair], seconds: float
) -> float:
    """grade() calls per second in a bare loop for about `seconds` (a baseline next to a row)."""
    clock, done, n = time.perf_counter, 0, len(pairs)
    start = clock()
    while done < 1000 or clock() - start < seconds:
        for k in range(done, done + 1000):
            sample, item = pairs[k % n]
            grade(sample, item)
        done += 1000
    return done / (clock() - start)


def bench_inprocess(name: str, source: str, pairs: list[Pair], count: int) -> Row:
    grade = load_in_process(source)
    clock = time.perf_counter
    latencies = [0.0] * count
    n = len(pairs)
    for sample, item in pairs[:100]:  # warm caches
        grade(sample, item)
    start = clock()
    for i in range(count):
        sample, item = pairs[i % n]
        t0 = clock()
        grade(sample, item)
        latencies[i] = clock() - t0
    wall = clock() - start
    # The loop's own timing calls cost about as much as a trivial grade: report the rate of a
    # bare loop (no per-call timing), and the latencies from the timed loop.
    start = clock()
    for i in range(count):
        sample, item = pairs[i % n]
        grade(sample, item)
    bare = clock() - start
    row = measured(f"inprocess/{name}", count, min(wall, bare), latencies, note="ceiling")
    return row


# ---- GradeBatch through a real service ---------------------------------------------------------


def timed_loop(call: Callable[[int], None], min_calls: int, stop_at: float) -> list[float]:
    """Call `call(k)` for k = 0, 1, ... until `stop_at` (at least `min_calls` times); each call's latency."""
    latencies: list[float] = []
    clock = time.perf_counter
    while len(latencies) < min_calls or clock() < stop_at:
        t0 = clock()
        call(len(latencies))
        latencies.append(clock() - t0)
    return latencies


def run_clients(
    call: Callable[[Any, int], None],
    make_client: Callable[[], Any],
    clients: int,
    min_calls: int,
    row_s: float,
) -> tuple[int, float, list[float]]:
    """Run `call(client, k)` in `clients` threads for `row_s` seconds (at least `min_calls` each).

    Returns (calls made, wall seconds, each call's latency).
    """
    handles = [make_client() for _ in range(clients)]
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(clients + 1)

    def worker(index: int) -> None:
        barrier.wait()
        try:
            latencies[index] = timed_loop(
                lambda k: call(handles[index], index * 7919 + k), min_calls, stop_at
            )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    stop_at = time.perf_counter() + row_s
    start = time.perf_counter()
    barrier.wait()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    for client in handles:
        client.close()
    if errors:
        raise errors[0]
    flat = [x for per_client in latencies for x in per_client]
    return len(flat), wall, flat


def check_scores(results: list[Any], expected: list[float], what: str) -> None:
    """Fail loudly when the service's scores are not the in-process scores."""
    from rftkit.grader_service.codec import error_flags

    for result, want in zip(results, expected, strict=True):
        flags = error_flags(result)
        if flags or abs(result.reward - want) > 1e-9:
            details = result.metadata.errors.details if flags else ""
            raise RuntimeError(f"{what}: got reward {result.reward} {flags} {details}, expected {want}")


def gradebatch_row(
    service: Any, grader: tuple[str, str, str], pairs: list[Pair], expected: list[float], batch: int,
    clients: int, sizes: Sizes, backend: str,
) -> Row:  # fmt: skip
    """One row: `clients` clients sending requests of `batch` samples for `sizes.row_s` seconds."""
    from rftkit.grader_service.client import GraderClient

    grader_name, grader_id, version = grader
    name = f"gradebatch-{backend}-{batch}{f'x{clients}' if clients > 1 else ''}/{grader_name}"
    progress(f"  {name}")
    samples, items = [s for s, _ in pairs], [i for _, i in pairs]
    starts = max(1, len(pairs) - batch + 1)

    def call(client: GraderClient, k: int) -> None:
        lo = (k * batch) % starts
        graded = client.grade_columns(
            grader_id, samples[lo : lo + batch], items[lo : lo + batch], version=version
        )
        if k % 16 == 0:
            check_scores(graded.to_results(), expected[lo : lo + batch], name)

    def connect() -> GraderClient:
        return GraderClient(service.address, service.token)

    grade = load_in_process(GRADERS[grader_name])
    before = inprocess_rate(grade, pairs, sizes.row_s / 4)
    calls, wall, lat = run_clients(call, connect, clients, sizes.min_requests, sizes.row_s)
    after = inprocess_rate(grade, pairs, sizes.row_s / 4)
    row = measured(name, calls * batch, wall, lat)
    # The machine's load changes from second to second: the ratio is to the in-process rate
    # measured right before and right after this row, not only at the start of the run.
    ADJACENT[name] = (before + after) / 2
    row.note = f"in-process next to it: {before:,.0f} and {after:,.0f}/s"
    return row


def bench_gradebatch(
    backend: str, graders: dict[str, str], pairs: list[Pair], expected: dict[str, list[float]], sizes: Sizes
) -> list[Row]:
    from rftkit.grader_service.embedded import start_local_service

    rows: list[Row] = []
    progress(f"starting rft serve --sandbox {backend}")
    biggest = max(sizes.batches)
    with start_local_service(sandbox=backend) as service:
        for grader_name, source in graders.items():
            admin = service.client()
            grader_id, version = admin.create_grader(source, name=f"bench-{grader_name}")
            for _ in range(3):  # start every worker of the pool, warm both the service and the client
                got = admin.grade_batch(
                    grader_id, [s for s, _ in pairs[:biggest]], [i for _, i in pairs[:biggest]]
                )
                check_scores(got, expected[grader_name][:biggest], f"{backend}/{grader_name}")
            admin.close()
            for batch in sizes.batches:
                for clients in sizes.clients:
                    grader = (grader_name, grader_id, version)
                    rows.append(
                        gradebatch_row(
                            service, grader, pairs, expected[grader_name], batch, clients, sizes, backend
                        )
                    )
    return rows


def bench_layers(backend: str, graders: dict[str, str], pairs: list[Pair], sizes: Sizes) -> list[Row]:
    """The layers under GradeBatch, in this process, one batch of the largest size at a time.

    layer-pool: rftkit.sandbox's warm pool alone (JSON to the workers and back);
    layer-grader: the `python` grader type on that pool (adds Sample in, GraderResult out).
    GradeBatch adds the service (decode, chunking, encode) and gRPC on top of layer-grader.
    """
    from rftkit.plugins.base import GraderContext, Sample
    from rftkit.plugins.registry import build_grader
    from rftkit.sandbox.pools import get_pool

    batch = max(sizes.batches)
    chunk = pairs[:batch]
    samples = [(Sample(output_text=s["output_text"]), i) for s, i in chunk]
    rows = []
    for grader_name, source in graders.items():
        tag = f"bench-{time.time_ns()}"
        pool = get_pool(tenant=tag, grader_id="layer", version="1", source=source, backend=backend)
        context = GraderContext(tenant=tag + "g", grader_id="layer", version="1", sandbox=backend)
        grader = build_grader({"type": "python", "source": source}, context)
        try:
            for name, call in (
                (f"layer-pool-{backend}-{batch}/{grader_name}", lambda p=pool: p.grade(chunk)),
                (f"layer-grader-{backend}-{batch}/{grader_name}", lambda g=grader: g.grade_batch(samples)),
            ):
                progress(f"  {name}")
                for _ in range(3):
                    call()  # start every worker
                start = time.perf_counter()
                lat = timed_loop(lambda _k, call=call: call(), sizes.min_requests, start + sizes.row_s)
                wall = time.perf_counter() - start
                rows.append(measured(name, len(lat) * batch, wall, lat, note="in this process, no gRPC"))
        finally:
            pool.close()
            grader.close()
    return rows


def bench_cold_start(backend: str, source: str, pair: Pair, expected: float, sizes: Sizes) -> Row:
    """Upload a grader never seen before, then grade one sample: the time to the first score."""
    from rftkit.grader_service.embedded import start_local_service

    latencies = []
    with start_local_service(sandbox=backend) as service:
        client = service.client()
        for attempt in range(sizes.cold_starts + 1):
            fresh = f"{source}\n# cold start {time.time_ns()} {attempt}\n"  # a new version, a new pool
            t0 = time.perf_counter()
            grader_id, version = client.create_grader(fresh, name="bench-cold")
            result = client.grade_batch(grader_id, [pair[0]], [pair[1]], version=version)
            elapsed = time.perf_counter() - t0
            check_scores(result, [expected], f"cold-start-{backend}")
            client.delete_grader(grader_id)  # stops its pool
            if attempt:  # the first one also warms the service's own code paths
                latencies.append(elapsed)
        client.close()
    return measured(
        f"cold-start-{backend}", len(latencies), sum(latencies), latencies, note="upload -> first score"
    )


# ---- naive sandboxes -----------------------------------------------------------------------------


def one_shot_python() -> tuple[str, str]:
    """The interpreter the per-process baseline uses: the grader venv's (as the namespace workers)."""
    from rftkit.sandbox import paths

    python = paths.venv_python()
    if python.exists():
        return str(python), "grader venv python"
    return sys.executable, "this interpreter (no grader venv built)"


def bench_process_per_sample(
    name: str, source: str, pairs: list[Pair], expected: list[float], count: int
) -> Row:
    python, which = one_shot_python()
    latencies = []
    for i in range(count):
        sample, item = pairs[i % len(pairs)]
        t0 = time.perf_counter()
        proc = subprocess.run(
            [python, "-I", "-c", ONE_SHOT],
            input=json.dumps([source, sample, item]),
            capture_output=True,
            text=True,
            timeout=60,
        )
        latencies.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            raise RuntimeError(f"{python} exited with {proc.returncode}: {proc.stderr.strip()[-300:]}")
        if abs(float(proc.stdout) - expected[i % len(pairs)]) > 1e-9:
            raise RuntimeError(
                f"process-per-sample gave {proc.stdout!r}, expected {expected[i % len(pairs)]}"
            )
    return measured(f"process-per-sample/{name}", count, sum(latencies), latencies, note=which)


def docker_problem() -> str | None:
    from rftkit.sandbox.backends import backend_problem

    return backend_problem("docker")


def hardened_run_kwargs() -> dict[str, Any]:
    """`docker run` flags as the docker backend's workers get them (default limits)."""
    from rftkit.sandbox.api import SandboxLimits
    from rftkit.sandbox.backends import MIB, SANDBOX_ENV

    limits = SandboxLimits()
    return {
        "network_mode": "none",
        "read_only": True,
        "tmpfs": {"/tmp": f"rw,nosuid,nodev,size={limits.scratch_mb}m,mode=1777"},
        "mem_limit": (limits.memory_mb + limits.scratch_mb) * MIB,
        "memswap_limit": (limits.memory_mb + limits.scratch_mb) * MIB,
        "pids_limit": limits.pids,
        "nano_cpus": int(limits.cpus * 1e9),
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "user": "65534:65534",
        "environment": {**SANDBOX_ENV, "HOME": "/tmp", "TMPDIR": "/tmp"},
        "working_dir": "/tmp",
        "ipc_mode": "private",
    }


def bench_docker_run_per_sample(
    name: str, source: str, pairs: list[Pair], expected: list[float], count: int
) -> Row:
    from rftkit.sandbox import paths
    from rftkit.sandbox.docker_backend import CONTAINER_PYTHON, docker_client

    client = docker_client()
    kwargs = hardened_run_kwargs()
    latencies = []
    for i in range(count):
        sample, item = pairs[i % len(pairs)]
        payload = json.dumps([source, sample, item])
        t0 = time.perf_counter()
        out = client.containers.run(
            paths.image_tag(), [CONTAINER_PYTHON, "-I", "-c", ONE_SHOT, payload], remove=True, **kwargs
        )
        latencies.append(time.perf_counter() - t0)
        if abs(float(out) - expected[i % len(pairs)]) > 1e-9:
            raise RuntimeError(f"docker-run-per-sample gave {out!r}, expected {expected[i % len(pairs)]}")
    return measured(
        f"docker-run-per-sample/{name}", count, sum(latencies), latencies, note="Docker SDK, --rm"
    )


# ---- the whole run -----------------------------------------------------------------------------------


def backend_problem(backend: str) -> str | None:
    from rftkit.sandbox.backends import backend_problem as problem

    return None if backend == "process" else problem(backend)


def guarded(name: str, body: Callable[[], list[Row]]) -> list[Row]:
    """Run one part; a failure becomes a skipped row with the reason (the run goes on)."""
    try:
        return body()
    except Exception as exc:  # an unavailable backend or a broken part: reported, never dropped
        return [skipped(name, f"failed: {type(exc).__name__}: {str(exc)[:300]}")]


def run(sizes: Sizes, backends: tuple[str, ...], grader_names: tuple[str, ...]) -> list[Row]:
    graders = {g: GRADERS[g] for g in grader_names}
    pairs = make_pairs(max(4096, max(sizes.batches) * 2))
    expected = {g: [load_in_process(src)(s, i) for s, i in pairs] for g, src in graders.items()}
    rows: list[Row] = []
    baselines: dict[str, float] = {}
    for g, src in graders.items():
        progress(f"in-process {g}")
        row = bench_inprocess(g, src, pairs, sizes.inprocess)
        baselines[g] = row.per_s or 0.0
        rows.append(row)
    for backend in backends:
        problem = backend_problem(backend)
        if problem:
            rows += [
                skipped(f"gradebatch-{backend}-{b}{f'x{c}' if c > 1 else ''}/{g}", problem)
                for g in graders
                for b in sizes.batches
                for c in sizes.clients
            ]
            continue
        rows += guarded(
            f"gradebatch-{backend}", lambda b=backend: bench_gradebatch(b, graders, pairs, expected, sizes)
        )
        rows += guarded(f"layer-{backend}", lambda b=backend: bench_layers(b, graders, pairs, sizes))
    for g, src in graders.items():
        progress(f"process-per-sample {g}")
        rows += guarded(
            f"process-per-sample/{g}",
            lambda g=g, src=src: [bench_process_per_sample(g, src, pairs, expected[g], sizes.per_process)],
        )
    for g, src in graders.items():
        problem = docker_problem()
        if problem:
            rows.append(skipped(f"docker-run-per-sample/{g}", problem))
            continue
        progress(f"docker-run-per-sample {g}")
        rows += guarded(
            f"docker-run-per-sample/{g}",
            lambda g=g, src=src: [
                bench_docker_run_per_sample(g, src, pairs, expected[g], sizes.per_container)
            ],
        )
    cold_grader = "realistic" if "realistic" in graders else next(iter(graders))
    for backend in backends:
        problem = backend_problem(backend)
        if problem:
            rows.append(skipped(f"cold-start-{backend}", problem))
            continue
        progress(f"cold start {backend}")
        rows += guarded(
            f"cold-start-{backend}",
            lambda b=backend: [
                bench_cold_start(b, graders[cold_grader], pairs[1], expected[cold_grader][1], sizes)
            ],
        )
    rows = with_ratios(rows, baselines)
    for row in rows:
        if row.name in ADJACENT and row.per_s:
            row.ratio = row.per_s / ADJACENT[row.name]
    return rows


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument(
        "--backends",
        default=",".join(BACKENDS),
        help="comma-separated sandbox backends for the service rows (namespace, docker, process)",
    )
    p.add_argument("--graders", default=",".join(GRADERS), help="comma-separated: trivial, realistic")
    args = p.parse_args(argv)
    backends = tuple(b for b in args.backends.split(",") if b)
    grader_names = tuple(g for g in args.graders.split(",") if g)
    unknown = [b for b in backends if b not in BACKENDS] + [g for g in grader_names if g not in GRADERS]
    if unknown or not grader_names:
        p.error(f"unknown backend or grader: {', '.join(unknown) or '(no grader)'}")
    rows = run(QUICK if args.quick else FULL, backends, grader_names)
    notes = [
        "ratio: samples per second / the in-process rate of the same grader in this run (1 = the ceiling);",
        "a gradebatch row's: / the in-process rate measured right before and after it (see its note).",
        "gradebatch latency is a request's round trip (every sample of the request waits for it).",
        "process backend = no isolation (rft serve --sandbox process), for reference only.",
    ]
    emit("rftkit grading throughput", rows, args, notes=notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
