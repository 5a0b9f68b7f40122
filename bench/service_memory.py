"""Whether the grader service's memory stays flat under sustained load, on each sandbox backend.

    .venv/bin/python bench/service_memory.py                 # 3 minutes per backend
    .venv/bin/python bench/service_memory.py --quick --json  # 40 s per backend (smoke run)

A real `rft serve` child per backend; 8 client threads send GradeBatch requests of 512 samples to
one Python grader back to back, pools of 2 workers recycled every 10,000 grades (not the default
1,000,000: many replacements on purpose), so containers and processes come and go as under a
long run. The service's resident memory (/proc/PID/status VmRSS) is sampled every second; the
row's `growth_mb_per_min` is the least-squares slope after the first third of the run (warm-up:
pools, caches and allocator arenas fill). Ratios: the
throughput of each backend against the process backend's, measured in the same run.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import Row, emit, parser, progress, skipped

GRADER = "def grade(sample, item):\n    return 1.0 if sample['output_text'] == item['reference'] else 0.0\n"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def slope_per_min(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) points, in MB per minute."""
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_m = sum(m for _, m in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    cov = sum((t - mean_t) * (m - mean_m) for t, m in points)
    return 60.0 * cov / var if var else 0.0


def measure(backend: str, seconds: float, clients: int, batch: int, recycle: int = 10_000) -> Row:
    from rftkit.grader_service.embedded import start_local_service
    from rftkit.sandbox.backends import backend_problem

    if backend != "process" and (problem := backend_problem(backend)):
        return skipped(f"{backend}", problem)
    env = {"RFTKIT_SANDBOX_GRADES_PER_WORKER": str(recycle), "RFTKIT_SANDBOX_WORKERS": "2"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with start_local_service(sandbox=backend) as service:
            client = service.client()
            grader_id, _ = client.create_grader(GRADER, name="memory")
            samples = [str(i % 3) for i in range(batch)]
            items = [{"reference": "1"}] * batch
            client.grade_batch(grader_id, samples, items, timeout=120)  # warm
            stop = threading.Event()
            done = [0]
            lock = threading.Lock()

            def load() -> None:
                with service.client() as own:
                    while not stop.is_set():
                        own.grade_batch(grader_id, samples, items, timeout=120)
                        with lock:
                            done[0] += batch

            threads = [threading.Thread(target=load, daemon=True) for _ in range(clients)]
            start = time.monotonic()
            for thread in threads:
                thread.start()
            points = []
            while (now := time.monotonic() - start) < seconds:
                points.append((now, rss_mb(service.pid)))
                time.sleep(1.0)
            stop.set()
            for thread in threads:
                thread.join(60)
            wall = time.monotonic() - start
            client.close()
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    steady = [p for p in points if p[0] >= seconds / 3]
    growth = slope_per_min(steady)
    row = Row(name=backend, per_s=done[0] / wall)
    row.note = (
        f"growth_mb_per_min={growth:.2f} rss_start_mb={steady[0][1]:.1f} rss_end_mb={points[-1][1]:.1f} "
        f"({clients} clients x {batch} samples, workers recycled every {recycle} grades)"
    )
    return row


def main() -> None:
    args = parser(__doc__).parse_args()
    seconds = 40.0 if args.quick else 180.0
    rows = []
    for backend in ("process", "namespace", "docker"):
        progress(f"{backend}: {seconds:.0f} s of load")
        rows.append(measure(backend, seconds, clients=8, batch=512))
    baseline = rows[0].per_s
    for row in rows:
        if row.per_s is not None and baseline:
            row.ratio = row.per_s / baseline
    emit("Service memory under sustained load (growth_mb_per_min in the note)", rows, args)


if __name__ == "__main__":
    main()
