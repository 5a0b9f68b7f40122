"""The in-process grader types (string_check, text_similarity, ranked_list, multi) and the registry."""

from __future__ import annotations

import math

import pytest
from rftkit.plugins.base import GraderContext, GraderResult, GraderSpec, Sample, Score, ScoringGrader
from rftkit.plugins.registry import GraderSpecError, build_grader, grader_types, parse_spec

BUILT_INS = {
    "string_check",
    "text_similarity",
    "score_model",
    "label_model",
    "python",
    "multi",
    "ranked_list",
}


def grade(spec: dict, text: str = "", item: dict | None = None, **sample: object) -> GraderResult:
    grader = build_grader({"name": "g", **spec})
    try:
        return grader.grade(Sample(output_text=text, **sample), item or {})
    finally:
        grader.close()


def flags(result: GraderResult) -> list[str]:
    return result.metadata.errors.raised()


def test_every_built_in_is_registered_through_entry_points() -> None:
    assert set(grader_types()) >= BUILT_INS


@pytest.mark.parametrize(
    ("operation", "text", "reference", "reward"),
    [
        ("eq", "Paris", "Paris", 1.0),
        ("eq", "paris", "Paris", 0.0),
        ("ne", "paris", "Paris", 1.0),
        ("ne", "Paris", "Paris", 0.0),
        ("like", "The capital is Paris.", "Paris", 1.0),
        ("like", "The capital is paris.", "Paris", 0.0),
        ("ilike", "THE CAPITAL IS PARIS.", "Paris", 1.0),
        ("ilike", "Lyon", "Paris", 0.0),
    ],
)
def test_string_check(operation: str, text: str, reference: str, reward: float) -> None:
    spec = {"type": "string_check", "input": "{{sample.output_text}}", "reference": "{{item.ref}}"}
    result = grade({**spec, "operation": operation}, text, {"ref": reference})
    assert result.reward == reward
    assert result.metadata.type == "string_check" and not flags(result)


def test_string_check_missing_variable_is_flagged() -> None:
    spec = {"type": "string_check", "input": "{{sample.output_text}}", "reference": "{{item.ref}}"}
    result = grade({**spec, "operation": "eq"}, "x", {"other": 1})
    assert result.reward == 0.0 and flags(result) == ["invalid_variable_error"]
    assert "item.ref" in result.metadata.errors.details


@pytest.mark.parametrize(
    "metric",
    [
        "fuzzy_match",
        "bleu",
        "gleu",
        "meteor",
        "rouge_1",
        "rouge_2",
        "rouge_3",
        "rouge_4",
        "rouge_5",
        "rouge_l",
    ],
)
def test_text_similarity_orders_close_above_far(metric: str) -> None:
    spec = {
        "type": "text_similarity",
        "input": "{{sample.output_text}}",
        "reference": "{{item.ref}}",
        "evaluation_metric": metric,
        "pass_threshold": 0.5,
    }
    ref = "the quick brown fox jumps over the lazy dog near the river bank today"
    same = grade(spec, ref, {"ref": ref})
    close = grade(spec, "the quick brown fox jumped over the lazy dog near the river bank", {"ref": ref})
    far = grade(spec, "completely unrelated words about quantum computing", {"ref": ref})
    assert same.reward >= close.reward > far.reward >= 0.0
    assert math.isclose(same.reward, 1.0, abs_tol=0.01)
    assert same.metadata.passes == {"pass": True} and far.metadata.passes == {"pass": False}


def test_meteor_works_offline_with_stems_and_wordnet_synonyms() -> None:
    from rftkit.plugins.similarity import wordnet_dir

    spec = {
        "type": "text_similarity",
        "input": "{{sample.output_text}}",
        "reference": "{{item.ref}}",
        "evaluation_metric": "meteor",
    }
    stemmed = grade(spec, "the cats were running", {"ref": "the cat was run"})
    synonym_only = grade(spec, "big", {"ref": "large"})
    assert stemmed.reward > 0.3 and not flags(stemmed)
    if wordnet_dir() is None:
        pytest.skip("no WordNet here (apt-get install wordnet-base)")
    assert synonym_only.reward == pytest.approx(0.5)  # one synonym match, one chunk
    issue = grade(spec, "the cat sat on the large mat", {"ref": "the cat sat on the big mat"})
    assert issue.reward == pytest.approx(0.9985, abs=1e-4)


def test_fuzzy_match_is_rapidfuzz_wratio() -> None:
    from rapidfuzz import fuzz, utils

    spec = {
        "type": "text_similarity",
        "input": "{{sample.output_text}}",
        "reference": "{{item.ref}}",
        "evaluation_metric": "fuzzy_match",
    }
    result = grade(spec, "Fuzzy wuzzy was a bear!", {"ref": "fuzzy wuzzy was a bear"})
    expected = fuzz.WRatio(
        "Fuzzy wuzzy was a bear!", "fuzzy wuzzy was a bear", processor=utils.default_process
    )
    assert result.reward == pytest.approx(expected / 100)


RANKED = {
    "type": "ranked_list",
    "input": "{{sample.output_json.genes}}",
    "reference": "{{item.gene}}",
    "synonyms": "{{item.synonyms}}",
}
ITEM = {"gene": "BRCA1", "synonyms": ["RNF53"]}


@pytest.mark.parametrize(
    ("decay", "rank", "reward"),
    [
        ("exponential", 1, 1.0),
        ("exponential", 2, 0.7),
        ("exponential", 3, 0.49),
        ("linear", 1, 1.0),
        ("linear", 2, 0.9),
        ("linear", 11, 0.0),
        ("reciprocal", 1, 1.0),
        ("reciprocal", 4, 0.25),
    ],
)
def test_ranked_list_decays(decay: str, rank: int, reward: float) -> None:
    genes = [f"G{i}" for i in range(1, rank)] + ["brca1"] + ["X", "Y"]
    result = grade({**RANKED, "decay": decay}, output_json={"genes": genes}, item=ITEM)
    assert result.reward == pytest.approx(reward)
    assert result.metadata.scores["rank"] == rank


def test_ranked_list_passes_synonyms_and_absence() -> None:
    top = grade({**RANKED, "k": 3}, '{"genes": ["rnf53 ", "TP53"]}', ITEM)
    assert top.reward == 1.0
    assert top.metadata.passes == {"top1": True, "top3": True, "anywhere": True}
    fourth = grade(RANKED, '{"genes": ["A", "a", "B", "C", "D", "BRCA1"]}', ITEM)  # repeats count once
    assert fourth.metadata.scores["rank"] == 5
    assert fourth.metadata.passes == {"top1": False, "top5": True, "anywhere": True}
    absent = grade(RANKED, '{"genes": ["TP53"]}', ITEM)
    assert absent.reward == 0.0 and absent.metadata.scores["rank"] == 0 and not flags(absent)
    assert absent.metadata.passes == {"top1": False, "top5": False, "anywhere": False}
    cut = grade({**RANKED, "max_rank": 1}, '{"genes": ["TP53", "BRCA1"]}', ITEM)
    assert cut.reward == 0.0 and cut.metadata.passes["anywhere"]


def test_ranked_list_from_text_and_objects() -> None:
    text = {**RANKED, "input": "{{sample.output_text}}"}
    assert grade(text, "1. TP53\n2. BRCA1\n3. ATM", ITEM).metadata.scores["rank"] == 2
    objects = {**RANKED, "entry_field": "symbol"}
    result = grade(objects, output_json={"genes": [{"symbol": "BRCA1", "p": 0.9}]}, item=ITEM)
    assert result.reward == 1.0


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        ("not json", "sample_parse_error"),
        ('{"other": []}', "invalid_variable_error"),
        ('{"genes": 5}', "sample_parse_error"),
    ],
)
def test_ranked_list_errors(text: str, flag: str) -> None:
    result = grade(RANKED, text, ITEM)
    assert result.reward == 0.0 and flags(result) == [flag]


CHAT_MULTI = {
    "type": "multi",
    "graders": {
        "exact": {
            "name": "exact",
            "type": "string_check",
            "input": "{{sample.choices[0].message.content}}",
            "reference": "{{item.answer}}",
            "operation": "ilike",
        },
        "close": {
            "name": "close",
            "type": "text_similarity",
            "input": "{{sample.choices[0].message.content}}",
            "reference": "{{item.answer}}",
            "evaluation_metric": "rouge_1",
        },
    },
    "calculate_output": "0.75 * exact + 0.25 * close",
}


def chat(text: str) -> list[dict]:
    return [{"index": 0, "message": {"role": "assistant", "content": text}}]


def test_multi_combines_children() -> None:
    result = grade(CHAT_MULTI, choices=chat("Paris is the capital of France"), item={"answer": "Paris"})
    assert result.reward == pytest.approx(0.75 + 0.25 * 2 / 7)
    assert result.sub_rewards == {"exact": 1.0, "close": pytest.approx(2 / 7)}
    assert result.metadata.type == "multi" and not flags(result)


def test_multi_carries_child_errors_and_math_errors() -> None:
    missing = grade(CHAT_MULTI, item={"answer": "Paris"})
    assert missing.reward == 0.0 and flags(missing) == ["invalid_variable_error"]
    assert missing.metadata.errors.details.startswith("exact: sample.choices[0] does not exist")
    ratio = {**CHAT_MULTI, "calculate_output": "exact / close"}
    broken = grade(ratio, choices=chat("Lyon"), item={"answer": "Paris"})
    assert broken.reward == 0.0 and flags(broken) == ["formula_parse_error"]
    assert "division by zero" in broken.metadata.errors.details
    clipped = grade(
        {**CHAT_MULTI, "calculate_output": "exact + close"}, choices=chat("Paris"), item={"answer": "Paris"}
    )
    assert clipped.reward == 1.0 and clipped.metadata.scores["calculate_output"] == 2.0


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "nope"}, "unknown grader type 'nope'"),
        ({"type": "string_check", "input": "x", "reference": "y"}, "operation: Field required"),
        (
            {"type": "string_check", "input": "x", "reference": "y", "operation": "eq", "extra": 1},
            "extra: unknown field",
        ),
        (
            {"type": "string_check", "input": "{{items.x}}", "reference": "y", "operation": "eq"},
            "unknown namespace 'items'",
        ),
        ({**CHAT_MULTI, "calculate_output": "exact +"}, "calculate_output: expected"),
        ({**CHAT_MULTI, "calculate_output": "exact + args"}, "uses ['args']"),
        ({"type": "multi", "graders": {"inner": CHAT_MULTI}, "calculate_output": "inner"}, "cannot contain"),
        ({"type": "multi", "graders": {}, "calculate_output": "1"}, "non-empty"),
        (
            {"type": "text_similarity", "input": "x", "reference": "y", "evaluation_metric": "rouge_9"},
            "rouge_l",
        ),
        ({"type": "ranked_list", "input": "x", "reference": "y", "decay_base": 1.5}, "decay_base"),
        (
            {
                "type": "score_model",
                "input": [{"role": "user", "content": "x"}],
                "model": "m",
                "range": [1, 0],
            },
            "finite min < max",
        ),
        (
            {
                "type": "label_model",
                "input": [{"role": "user", "content": "x"}],
                "model": "m",
                "labels": ["a"],
                "passing_labels": ["b"],
            },
            "not in labels",
        ),
        ({"type": "python", "source": "def grade(sample):\n    return 1"}, "exactly two"),
        ({"type": "python", "source": "def grade(sample, item) ->:"}, "syntax error"),
    ],
)
def test_invalid_specs_say_what_is_wrong(spec: dict, message: str) -> None:
    with pytest.raises(GraderSpecError, match=message.replace("[", r"\[").replace("(", r"\(")):
        parse_spec({"name": "g", **spec})


def test_openai_sdk_single_grader_shape_for_multi() -> None:
    single = {
        "type": "multi",
        "name": "m",
        "calculate_output": "name",
        "graders": {
            "name": "name",
            "type": "string_check",
            "input": "a",
            "reference": "a",
            "operation": "eq",
        },
    }
    assert build_grader(single).grade(Sample(), {}).reward == 1.0


class _Returns(ScoringGrader):
    type_name = "returns"
    spec_model = GraderSpec

    def score(self, sample: Sample, item: dict) -> Score:
        return Score(reward=item["value"])


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -0.1, 1.5, None, "1", True])
def test_scoring_grader_refuses_rewards_that_are_not_finite_in_unit_interval(value: object) -> None:
    grader = _Returns(_Returns.spec_model(type="returns"), GraderContext())
    result = grader.grade(Sample(), {"value": value})
    assert result.reward == 0.0 and flags(result) == ["invalid_reward_error"]


def test_grade_safely_turns_a_bug_into_other_error() -> None:
    grader = _Returns(_Returns.spec_model(type="returns"), GraderContext())
    result = grader.grade_safely(Sample(), {})  # KeyError inside score()
    assert result.reward == 0.0 and flags(result) == ["other_error"]


def test_cosine_uses_the_local_embedding_model() -> None:
    spec = {
        "type": "text_similarity",
        "input": "{{sample.output_text}}",
        "reference": "{{item.ref}}",
        "evaluation_metric": "cosine",
    }
    grader = build_grader({"name": "cos", **spec})
    ref = {"ref": "The cat sits on the mat."}
    close, far = grader.grade_batch(
        [
            (Sample(output_text="A cat is sitting on a mat."), ref),
            (Sample(output_text="Stock prices fell."), ref),
        ]
    )
    assert close.reward > 0.8 > 0.3 > far.reward
