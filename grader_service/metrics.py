"""Prometheus metrics of the grader service, in a registry of their own.

rft_grades_total{grader_type, error_kind}      samples graded (error_kind "none" when scored)
rft_requests_total{method, code}               RPCs by final status code
rft_request_seconds{method}                    RPC latency histogram
rft_batch_samples{method}                      samples per grading request (histogram)
rft_sample_seconds{grader_type}                grading time per sample, from each chunk's mean
rft_queue_depth                                grading requests waiting for a slot
rft_in_flight                                  grading requests being graded
rft_abandoned_total{reason}                    grading stopped early (deadline, cancelled, shutdown)
rft_graders_loaded                             built graders held in memory
rft_sandbox_pool_workers{grader_type, backend} warm sandbox workers across loaded graders
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
SAMPLE_BUCKETS = (1e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1, 3, 10)
BATCH_BUCKETS = (1, 8, 64, 256, 1024, 4096, 16384, 65536)

# (grader_type, backend, workers) for every loaded grader that holds a sandbox pool.
PoolSizes = Callable[[], Iterable[tuple[str, str, int]]]


class _PoolCollector(Collector):
    def __init__(self, pool_sizes: PoolSizes) -> None:
        self._pool_sizes = pool_sizes

    def collect(self) -> Iterable[Any]:
        family = GaugeMetricFamily(
            "rft_sandbox_pool_workers",
            "Warm sandbox workers across loaded graders",
            labels=["grader_type", "backend"],
        )
        totals: dict[tuple[str, str], int] = {}
        for type_name, backend, workers in self._pool_sizes():
            totals[(type_name, backend)] = totals.get((type_name, backend), 0) + workers
        for labels, workers in sorted(totals.items()):
            family.add_metric(list(labels), workers)
        yield family


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.grades = Counter("rft_grades", "Samples graded", ["grader_type", "error_kind"], registry=r)
        self.requests = Counter("rft_requests", "RPCs by final status", ["method", "code"], registry=r)
        self.latency = Histogram(
            "rft_request_seconds", "RPC latency", ["method"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.batch_samples = Histogram(
            "rft_batch_samples", "Samples per grading request", ["method"], buckets=BATCH_BUCKETS, registry=r
        )
        self.sample_seconds = Histogram(
            "rft_sample_seconds",
            "Grading time per sample",
            ["grader_type"],
            buckets=SAMPLE_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge("rft_queue_depth", "Grading requests waiting for a slot", registry=r)
        self.in_flight = Gauge("rft_in_flight", "Grading requests being graded", registry=r)
        self.abandoned = Counter("rft_abandoned", "Grading stopped early", ["reason"], registry=r)
        self.graders_loaded = Gauge("rft_graders_loaded", "Built graders held in memory", registry=r)
        self._http: Any = None

    def watch_pools(self, pool_sizes: PoolSizes) -> None:
        self.registry.register(_PoolCollector(pool_sizes))

    def count_grades(self, grader_type: str, error_kinds: dict[str, int], ok: int) -> None:
        if ok:
            self.grades.labels(grader_type, "none").inc(ok)
        for kind, n in error_kinds.items():
            self.grades.labels(grader_type, kind).inc(n)

    def serve(self, port: int, host: str) -> int:
        """Expose /metrics over HTTP; returns the bound port (port 0 picks a free one)."""
        self._http, _thread = start_http_server(port, addr=host, registry=self.registry)
        return int(self._http.server_port)

    def close(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
