"""graders.run / graders.validate with the official SDK on OpenAI's published grader examples."""

from __future__ import annotations

import httpx
import openai
import pytest

# The examples of OpenAI's graders guide, as published.
STRING_CHECK = {
    "type": "string_check",
    "name": "Example string check grader",
    "input": "{{sample.output_text}}",
    "reference": "{{item.label}}",
    "operation": "eq",
}
TEXT_SIMILARITY = {
    "type": "text_similarity",
    "name": "Example text similarity grader",
    "input": "{{sample.output_text}}",
    "reference": "{{item.reference_answer}}",
    "evaluation_metric": "fuzzy_match",
}
PYTHON_SOURCE = '''
def grade(sample, item) -> float:
    """
    Returns 1.0 if `output_text` equals `label`, otherwise 0.0.
    """
    output = sample.get("output_text")
    label = item.get("label")
    return 1.0 if output == label else 0.0
'''
PYTHON = {
    "type": "python",
    "name": "Example python grader",
    "image_tag": "2025-05-08",
    "source": PYTHON_SOURCE,
}
OPENAI_FLAGS = {
    "formula_parse_error", "invalid_variable_error", "model_grader_parse_error", "model_grader_refusal_error",
    "model_grader_server_error", "model_grader_server_error_details", "other_error",
    "python_grader_runtime_error", "python_grader_runtime_error_details", "python_grader_server_error",
    "python_grader_server_error_type", "sample_parse_error", "truncated_observation_error",
    "unresponsive_reward_error",
}  # fmt: skip


def test_string_check_example(client_a) -> None:
    run = client_a.fine_tuning.alpha.graders.run
    passed = run(grader=STRING_CHECK, model_sample="Paris", item={"label": "Paris"})
    failed = run(grader=STRING_CHECK, model_sample="paris", item={"label": "Paris"})
    assert (passed.reward, failed.reward) == (1.0, 0.0)
    assert passed.metadata.name == "Example string check grader" and passed.metadata.type == "string_check"
    errors = passed.metadata.errors.model_dump(by_alias=True)
    assert errors.keys() >= OPENAI_FLAGS and not any(v for v in errors.values())
    assert passed.metadata.execution_time >= 0 and passed.sub_rewards == {}


def test_text_similarity_example(client_a) -> None:
    run = client_a.fine_tuning.alpha.graders.run
    same = run(grader=TEXT_SIMILARITY, model_sample="fuzzy wuzzy", item={"reference_answer": "fuzzy wuzzy"})
    close = run(grader=TEXT_SIMILARITY, model_sample="fuzzy wuzy", item={"reference_answer": "fuzzy wuzzy"})
    far = run(grader=TEXT_SIMILARITY, model_sample="zebra", item={"reference_answer": "fuzzy wuzzy"})
    assert same.reward == 1.0 and 0.8 < close.reward < 1.0 and far.reward < 0.5


def test_python_example_runs_in_the_sandbox(client_a) -> None:
    run = client_a.fine_tuning.alpha.graders.run
    assert run(grader=PYTHON, model_sample="yes", item={"label": "yes"}).reward == 1.0
    result = run(grader=PYTHON, model_sample="no", item={"label": "yes"})
    assert result.reward == 0.0 and result.metadata.type == "python"
    assert not result.metadata.errors.python_grader_runtime_error


def test_python_grader_that_raises_is_a_flag_not_a_500(client_a) -> None:
    broken = {**PYTHON, "source": "def grade(sample, item):\n    raise ValueError('no label here')\n"}
    result = client_a.fine_tuning.alpha.graders.run(grader=broken, model_sample="x", item={})
    assert result.reward == 0.0
    assert result.metadata.errors.python_grader_runtime_error
    assert "no label here" in (result.metadata.errors.python_grader_runtime_error_details or "")


def test_missing_item_field_is_invalid_variable_error(client_a) -> None:
    result = client_a.fine_tuning.alpha.graders.run(grader=STRING_CHECK, model_sample="x", item={"other": 1})
    assert result.reward == 0.0 and result.metadata.errors.invalid_variable_error


def test_validate_examples_and_refusals(client_a) -> None:
    validate = client_a.fine_tuning.alpha.graders.validate
    for spec in (STRING_CHECK, TEXT_SIMILARITY, PYTHON):
        assert validate(grader=spec).grader.type == spec["type"]
    with pytest.raises(openai.BadRequestError) as caught:
        validate(grader={**STRING_CHECK, "operation": "equals"})
    error = caught.value.body
    assert (
        caught.value.status_code == 400
        and error["param"] == "grader"
        and error["type"] == "invalid_request_error"
    )
    assert "operation" in error["message"]
    with pytest.raises(openai.BadRequestError, match=r"syntax|invalid"):
        validate(grader={**PYTHON, "source": "def grade(sample, item)\n  return 1"})
    with pytest.raises(openai.BadRequestError, match="unknown grader type"):
        client_a.fine_tuning.alpha.graders.run(grader={"type": "nope"}, model_sample="x")


def test_auth_and_error_shapes(service) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        service.client("not-a-real-token-at-all").models.list()
    assert caught.value.status_code == 401 and caught.value.body["code"] == "invalid_api_key"
    raw = httpx.post(f"{service.base_url}/fine_tuning/alpha/graders/run", json={"grader": STRING_CHECK})
    assert raw.status_code == 401 and set(raw.json()["error"]) == {"message", "type", "param", "code"}
    headers = {"Authorization": f"Bearer {service.client().api_key}"}
    missing = httpx.post(
        f"{service.base_url}/fine_tuning/alpha/graders/run", json={"grader": {}}, headers=headers
    )
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "model_sample"
    garbage = httpx.post(
        f"{service.base_url}/fine_tuning/alpha/graders/run", content=b"{not json", headers=headers
    )
    assert garbage.status_code == 400 and "error" in garbage.json()
    unknown = httpx.get(f"{service.base_url}/no/such/path", headers=headers)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_url"


def test_models_lists_the_base_models(client_a) -> None:
    assert "tiny" in [m.id for m in client_a.models.list()]
    assert client_a.models.retrieve("tiny").owned_by == "rftkit"
    with pytest.raises(openai.NotFoundError):
        client_a.models.retrieve("gpt-4o")
