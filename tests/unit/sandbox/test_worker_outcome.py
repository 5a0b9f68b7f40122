"""The parent's check of each result message a worker sends (the per-sample hot path)."""

from __future__ import annotations

import math

import pytest
from rftkit.sandbox.worker import _outcome


def test_a_well_formed_result_becomes_an_outcome() -> None:
    outcome = _outcome({"i": 3, "value": math.nan, "stdout": "hi"}, 3)
    assert math.isnan(outcome.value) and outcome.error is None and outcome.stdout == "hi"
    failed = _outcome({"i": 0, "error": "runtime", "details": "KeyError"}, 0)
    assert failed.error == "runtime" and failed.details == "KeyError" and failed.stdout == ""


@pytest.mark.parametrize(
    "message",
    [
        {"i": 1, "value": 1.0},  # out of order
        {"i": 0, "error": "pwned"},  # an error kind the parent does not know
        {"i": 0, "error": "runtime", "details": ["not", "text"]},
        {"i": 0, "value": 1.0, "stdout": {"not": "text"}},
    ],
)
def test_a_forged_result_is_refused(message: dict) -> None:
    with pytest.raises(ValueError):
        _outcome(message, 0)


def test_a_result_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(AttributeError):
        _outcome([0, 1.0], 0)  # type: ignore[arg-type]
