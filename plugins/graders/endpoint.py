"""`endpoint`: the user's own HTTP service scores each sample (OpenAI's endpoint grader).

    {"type": "endpoint", "name": "e", "url": "https://grader.example/grade",
     "headers": {"Authorization": "Bearer ..."}, "rate_limit": 600, "pass_threshold": 0.5}

rftkit POSTs `{"sample": <the sample a python grader gets>, "item": <the item>, "trace_id": "trace_..."}`
and reads `{"score": <a number in [0, 1]>}`. `rate_limit` is requests per minute for this grader
(none by default). A batch is sent `max_concurrency` requests at once; 5xx, 429 and connection
failures are retried `max_retries` times with backoff (see `rftkit.plugins.endpoint_client`).

Every failure is the sample's own error flag, never a silent 0: no answer within `timeout_s` ->
timeout_error; 5xx or no connection after the retries -> unresponsive_reward_error; another 4xx ->
other_error; a body over 1 MB -> resource_limit_error (413); a body that is not JSON, has no
`score`, or a score that is not a finite number in [0, 1] -> invalid_reward_error.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from pydantic import Field, field_validator

from ..base import GradedBatch, GraderContext, GraderSpec, GradingError, Sample, Score, ScoringGrader
from ..endpoint_client import MAX_RESPONSE_BYTES, CallOutcome, EndpointClient, new_trace_id

OUTCOME_FLAGS = {
    "timeout": "timeout_error",
    "server_error": "unresponsive_reward_error",
    "connection": "unresponsive_reward_error",
    "client_error": "other_error",
    "too_large": "resource_limit_error",
    "invalid_json": "invalid_reward_error",
}


class EndpointSpec(GraderSpec):
    type: Literal["endpoint"] = "endpoint"
    url: str
    headers: dict[str, str] | None = None
    rate_limit: float | None = Field(default=None, gt=0, description="requests per minute; none: no limit")
    pass_threshold: float | None = None
    # rftkit extensions
    timeout_s: float = Field(default=600.0, gt=0, description="seconds one request may take (as for tools)")
    max_retries: int = Field(default=3, ge=0, le=10, description="retries of a 5xx, 429 or failed connection")
    retry_backoff_s: float = Field(default=1.0, ge=0, description="first pause between attempts (doubles)")
    max_concurrency: int = Field(default=16, ge=1, le=1024, description="requests in flight per batch")

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got {url!r}")
        return url


def score_from(outcome: CallOutcome) -> Score:
    """The Score in a call's outcome; GradingError with the flag for this failure otherwise."""
    if not outcome.ok:
        raise GradingError(OUTCOME_FLAGS[outcome.kind], outcome.details)
    data = outcome.data
    if not isinstance(data, dict) or "score" not in data:
        raise GradingError(
            "invalid_reward_error",
            f'the endpoint must answer {{"score": <number>}}, got {outcome.text[:200]!r}',
        )
    value = data["score"]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise GradingError("invalid_reward_error", f"score must be a finite number, got {value!r:.80}")
    if not 0.0 <= value <= 1.0:
        raise GradingError("invalid_reward_error", f"score {value!r} is outside [0, 1]")
    return Score(reward=float(value))


class EndpointGrader(ScoringGrader):
    """A score from the user's HTTP endpoint."""

    type_name = "endpoint"
    spec_model = EndpointSpec
    spec: EndpointSpec

    def __init__(self, spec: EndpointSpec, context: GraderContext) -> None:
        super().__init__(spec, context)
        self._client: EndpointClient | None = None
        self._lock = threading.Lock()

    def client(self) -> EndpointClient:
        with self._lock:
            if self._client is None:
                self._client = EndpointClient(
                    url=self.spec.url,
                    headers=self.spec.headers,
                    timeout_s=self.spec.timeout_s,
                    max_retries=self.spec.max_retries,
                    backoff_s=self.spec.retry_backoff_s,
                    max_response_bytes=MAX_RESPONSE_BYTES,
                    rate_limit=self.spec.rate_limit,
                )
            return self._client

    def score(self, sample: Sample, item: Mapping[str, Any]) -> Score:
        body = {"sample": sample.as_grader_dict(), "item": dict(item), "trace_id": new_trace_id()}
        return score_from(self.client().post(body, trace_id=body["trace_id"]))

    def grade_columns(self, pairs: Sequence[tuple[Sample, Mapping[str, Any]]]) -> GradedBatch:
        if len(pairs) <= 1:
            return super().grade_columns(pairs)
        workers = min(len(pairs), self.spec.max_concurrency)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"endpoint-{self.name}") as pool:
            return self.columns(list(pool.map(lambda pair: self.grade_safely(*pair), pairs)))

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
