"""What a grade means, decided once for every client: pass or not, and how failures exit.

- A sample passes when it has no error flag and its reward reaches the pass threshold: the
  caller's override when given, else the grader's own verdict (`passes["pass"]`, set from its
  spec's `pass_threshold`), else a reward of 1.0.
- A grader-service error the user caused (a bad spec, an unknown grader, a bad token) exits 2;
  anything else (the service unreachable, a failure on its side) exits 1.
"""

from __future__ import annotations

import grpc

from ..core.records import GraderResult

DEFAULT_PASS_THRESHOLD = 1.0

# gRPC codes that mean "your request is wrong": the command exits 2, like a usage error.
USER_ERROR_CODES = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.ALREADY_EXISTS,
    }
)
EXIT_USER_ERROR = 2
EXIT_FAILURE = 1


def is_pass(result: GraderResult, threshold: float | None = None) -> bool:
    """Errors fail; else reward >= `threshold` when one is forced, else the grader's own verdict
    (`passes["pass"]`, from its pass_threshold), else reward >= 1.0."""
    if result.metadata.errors.raised():
        return False
    if threshold is None and "pass" in result.metadata.passes:
        return bool(result.metadata.passes["pass"])
    limit = DEFAULT_PASS_THRESHOLD if threshold is None else threshold
    return result.reward >= limit - 1e-9


def pass_rule(spec_threshold: float | None, threshold: float | None = None) -> str:
    """In words, when a sample passes."""
    if threshold is not None:
        return f"reward >= {threshold} (--pass-threshold)"
    if spec_threshold is not None:
        return f"reward >= {spec_threshold} (the grader's pass_threshold)"
    return f"reward >= {DEFAULT_PASS_THRESHOLD} (default; the grader sets no pass_threshold)"


def exit_code_for(code: grpc.StatusCode) -> int:
    """The exit status for a command stopped by a grader-service error with this code."""
    return EXIT_USER_ERROR if code in USER_ERROR_CODES else EXIT_FAILURE
