"""The parent's check of each result frame a worker sends (the per-sample hot path)."""

from __future__ import annotations

import json
import math

import pytest
from rftkit.sandbox.api import WorkerOutcome
from rftkit.sandbox.worker import _outcomes


def _frame(message: object) -> bytes:
    return json.dumps(message).encode()


def test_a_well_formed_frame_becomes_outcomes_in_order() -> None:
    rows = [[math.nan, None, None, "hi"], [None, "runtime", "KeyError", ""], [math.inf, None, None, None]]
    outcomes = _outcomes(_frame([3, rows]), 3, 5)
    assert math.isnan(outcomes[0].value) and outcomes[0].error is None and outcomes[0].stdout == "hi"
    assert outcomes[1].error == "runtime" and outcomes[1].details == "KeyError" and outcomes[1].stdout == ""
    assert outcomes[2].value == math.inf and outcomes[2].stdout == ""


@pytest.mark.parametrize(
    "message",
    [
        [1, [[1.0, None, None, ""]]],  # out of order
        [0, [[1.0, None, None, ""]] * 3],  # more results than pairs left
        [0, []],
        [0, [[1.0, "pwned", None, ""]]],  # an error kind the parent does not know
        [0, [[None, "runtime", ["not", "text"], ""]]],
        [0, [[1.0, None, None, {"not": "text"}]]],
        [0, [[1.0, None, None]]],
        [0, [{"value": 1.0, "error": None, "details": None, "stdout": ""}]],  # unpacks, but no list
        [0, ["abcd"]],
        {"i": 0, "value": 1.0},  # the old one-result message
        [0, [[1.0, None, None, ""]], "extra"],
    ],
)
def test_a_forged_frame_is_refused(message: object) -> None:
    with pytest.raises(ValueError):
        _outcomes(_frame(message), 0, 2)


def test_a_checked_outcome_is_the_same_model_as_model_construct() -> None:
    fast = WorkerOutcome.checked([1.5, "x"], "runtime", "boom", "out")
    slow = WorkerOutcome.model_construct(value=[1.5, "x"], error="runtime", details="boom", stdout="out")
    assert fast == slow and fast.model_dump() == slow.model_dump()
    assert fast.model_fields_set == slow.model_fields_set
    fast.details = "changed"  # still an ordinary model
    assert fast.details == "changed" and fast.model_copy().details == "changed"
