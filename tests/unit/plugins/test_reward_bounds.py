"""Property: for arbitrary text, every in-process grader type gives a finite reward in [0, 1] — and
gives it as a real score: the only error flags arbitrary input may raise are the ones that say the
input itself was not what the grader reads (a grader that errors on every input fails these tests)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rftkit.plugins.base import GraderResult, Sample
from rftkit.plugins.registry import build_grader
from rftkit.plugins.similarity import METRICS

TEXT = st.text(max_size=200)
JSONISH = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner, max_size=5),
    max_leaves=20,
)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
COSINE_SETTINGS = settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def allowed_flags(name: str) -> set[str]:
    """The flags arbitrary input may legitimately raise: a ranked list whose reference names nothing
    (after normalising) is the item's fault; a JSON-reading grader's sample may not be JSON."""
    allowed = {"sample_parse_error"} if name == "ranked_list/json" else set()
    if name.startswith(("ranked_list", "multi")):
        allowed.add("invalid_variable_error")  # checked precisely by the ranked-list unit tests
    return allowed


def assert_bounded(result: GraderResult, allowed: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    assert set(result.metadata.errors.raised()) <= allowed, result.metadata.errors
    assert isinstance(result.reward, float)
    assert math.isfinite(result.reward) and 0.0 <= result.reward <= 1.0
    for value in result.sub_rewards.values():
        assert math.isfinite(value) and 0.0 <= value <= 1.0


def pair_spec(kind: str, **extra: object) -> dict:
    return {
        "type": kind,
        "name": kind,
        "input": "{{sample.output_text}}",
        "reference": "{{item.ref}}",
        **extra,
    }


GRADERS = {
    **{f"string_check/{op}": pair_spec("string_check", operation=op) for op in ("eq", "ne", "like", "ilike")},
    **{
        f"text_similarity/{m}": pair_spec("text_similarity", evaluation_metric=m)
        for m in METRICS
        if m != "cosine"
    },
    **{
        f"ranked_list/{decay}": pair_spec("ranked_list", decay=decay, synonyms="{{item.syn}}")
        for decay in ("exponential", "linear", "reciprocal")
    },
    "ranked_list/json": pair_spec("ranked_list", input="{{sample.output_json}}"),
    "multi": {
        "type": "multi",
        "name": "multi",
        "graders": {
            "a": pair_spec("string_check", operation="ilike"),
            "b": pair_spec("text_similarity", evaluation_metric="fuzzy_match"),
            "c": pair_spec("ranked_list"),
        },
        "calculate_output": "max(0, a - b) ^ 2 + 0.5 * sqrt(b) / (1 + c) - log(1 + c) * 3",
    },
}
_BUILT = {name: build_grader(spec) for name, spec in GRADERS.items()}


@pytest.mark.parametrize("name", sorted(GRADERS))
@SETTINGS
@given(text=TEXT, ref=TEXT, syn=st.lists(TEXT, max_size=3))
def test_reward_is_finite_in_unit_interval(name: str, text: str, ref: str, syn: list[str]) -> None:
    grader = _BUILT[name]
    assert_bounded(grader.grade(Sample(output_text=text), {"ref": ref, "syn": syn}), allowed_flags(name))


@SETTINGS
@given(value=JSONISH, ref=JSONISH)
def test_ranked_list_on_arbitrary_json(value: object, ref: object) -> None:
    grader = _BUILT["ranked_list/json"]
    result = grader.grade(Sample(output_text=json.dumps(value)), {"ref": ref, "syn": []})
    assert_bounded(result, allowed_flags("ranked_list/json"))


@COSINE_SETTINGS
@given(pairs=st.lists(st.tuples(TEXT, TEXT), min_size=1, max_size=4))
def test_cosine_reward_is_finite_in_unit_interval(pairs: list[tuple[str, str]]) -> None:
    grader = build_grader(pair_spec("text_similarity", evaluation_metric="cosine"))
    results = grader.grade_batch([(Sample(output_text=t), {"ref": r}) for t, r in pairs])
    assert len(results) == len(pairs)
    for result in results:
        assert_bounded(result)
