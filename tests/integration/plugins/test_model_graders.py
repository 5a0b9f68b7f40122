"""score_model and label_model over real HTTP against the judge test double (see conftest.py)."""

from __future__ import annotations

import socket
import time

import pytest
from rftkit.plugins.base import GraderResult, Sample
from rftkit.plugins.registry import build_grader


def score_spec(judge_url: str, **extra: object) -> dict:
    return {
        "type": "score_model",
        "name": "judge",
        "model": "judge-model",
        "input": [
            {"role": "developer", "content": "Grade the answer from 0 to 10."},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Answer: {{sample.output_text}}\nTopic: {{item.topic}}"}
                ],
            },
        ],
        "range": [0, 10],
        "base_url": judge_url,
        **extra,
    }


def grade(spec: dict, *texts: str, item: dict | None = None) -> list[GraderResult]:
    grader = build_grader(spec)
    try:
        return grader.grade_batch([(Sample(output_text=t), item or {"topic": "maths"}) for t in texts])
    finally:
        grader.close()


def flags(result: GraderResult) -> list[str]:
    return result.metadata.errors.raised()


def test_score_model_request_and_result(judge, monkeypatch) -> None:
    monkeypatch.setenv("MY_JUDGE_KEY", "sekrit")
    spec = score_spec(
        judge.url,
        api_key_env="MY_JUDGE_KEY",
        sampling_params={"temperature": 0.2, "seed": 7, "max_completions_tokens": 64, "top_p": 0.9},
        pass_threshold=6,
    )
    [result] = grade(spec, 'REPLY={"steps": ["fine"], "result": 7}')
    assert result.reward == pytest.approx(0.7) and not flags(result)
    assert result.metadata.scores == {"score": 7.0} and result.metadata.passes == {"pass": True}
    assert result.metadata.sampled_model_name == "judge-model-double"
    assert result.metadata.token_usage["completion_tokens"] == 5
    [request] = judge.requests
    assert request["headers"]["Authorization"] == "Bearer sekrit"
    body = request["body"]
    assert body["model"] == "judge-model"
    assert (body["temperature"], body["seed"], body["max_tokens"], body["top_p"]) == (0.2, 7, 64, 0.9)
    assert body["response_format"]["type"] == "json_schema"
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "system", "user"]  # rftkit's answer format, then developer -> system
    assert body["messages"][2]["content"].startswith('Answer: REPLY={"steps"')
    assert body["messages"][2]["content"].endswith("Topic: maths")


@pytest.mark.parametrize(
    ("reply", "reward", "score"),
    [
        ("8", 0.8, 8.0),
        ('```json\\n{"result": 2.5}\\n```', 0.25, 2.5),
        ("15", 1.0, 15.0),
        ('{"result": -3}', 0.0, -3.0),
        ('{"score": "10"}', 1.0, 10.0),
    ],
)
def test_score_model_parses_and_clips(judge, reply: str, reward: float, score: float) -> None:
    [result] = grade(score_spec(judge.url), f"REPLY={reply}")
    assert result.reward == pytest.approx(reward) and result.metadata.scores["score"] == score
    assert not flags(result)


@pytest.mark.parametrize("reply", ["I think it is good", '{"result": "great"}', '{"result": NaN}', "[1, 2]"])
def test_unparsable_judge_output_scores_zero(judge, reply: str) -> None:
    [result] = grade(score_spec(judge.url), f"REPLY={reply}")
    assert result.reward == 0.0 and flags(result) == ["model_grader_parse_error"]
    assert "no numeric result" in result.metadata.errors.details


def test_server_errors_are_retried_then_flagged(judge) -> None:
    [result] = grade(score_spec(judge.url, max_retries=2), "STATUS=503")
    assert result.reward == 0.0 and flags(result) == ["model_grader_server_error"]
    assert "HTTP 503" in result.metadata.errors.model_grader_server_error_details
    assert len(judge.requests) == 3
    [client_error] = grade(score_spec(judge.url, max_retries=2), "STATUS=400")
    assert flags(client_error) == ["model_grader_server_error"] and len(judge.requests) == 4


def test_unreachable_endpoint_is_a_server_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once the socket is closed
    [result] = grade(score_spec(f"http://127.0.0.1:{port}/v1", max_retries=0, timeout_s=5), "x")
    assert result.reward == 0.0 and flags(result) == ["model_grader_server_error"]
    assert "ConnectError" in result.metadata.errors.details


def test_refusal_and_missing_variable(judge) -> None:
    [refused] = grade(score_spec(judge.url), "REFUSE")
    assert flags(refused) == ["model_grader_refusal_error"]
    [missing] = grade(score_spec(judge.url), "x", item={"no_topic": 1})
    assert flags(missing) == ["invalid_variable_error"]
    assert len(judge.requests) == 1  # the missing variable never reached the judge


def test_batch_is_sent_concurrently(judge) -> None:
    texts = [f"REPLY={i}\nDELAY=0.4" for i in range(8)]
    start = time.perf_counter()
    results = grade(score_spec(judge.url, max_concurrency=8), *texts)
    elapsed = time.perf_counter() - start
    assert [r.reward for r in results] == pytest.approx([i / 10 for i in range(8)])
    assert judge.max_in_flight >= 4 and elapsed < 8 * 0.4 / 2


LABEL = {
    "type": "label_model",
    "name": "sentiment",
    "model": "judge-model",
    "input": [
        {"role": "system", "content": "Classify the sentiment."},
        {"role": "user", "content": "Statement: {{sample.output_text}}"},
    ],
    "labels": ["positive", "neutral", "negative"],
    "passing_labels": ["positive", "neutral"],
}


@pytest.mark.parametrize(
    ("text", "reward", "label", "flag"),
    [
        ('REPLY={"result": "positive"}', 1.0, "positive", None),
        ("REPLY=Neutral.", 1.0, "neutral", None),
        ('REPLY={"steps": [], "result": "negative"}', 0.0, "negative", None),
        ("REPLY=meh", 0.0, None, "model_grader_parse_error"),
    ],
)
def test_label_model(judge, text: str, reward: float, label: str | None, flag: str | None) -> None:
    [result] = grade({**LABEL, "base_url": judge.url}, text)
    assert result.reward == reward and result.metadata.label == label
    assert flags(result) == ([flag] if flag else [])
    schema = judge.requests[0]["body"]["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["result"]["enum"] == LABEL["labels"]


def test_image_parts_are_sent_as_chat_content_parts(judge) -> None:
    spec = score_spec(judge.url)
    spec["input"] = [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "REPLY=10\nDoes the picture show a {{item.topic}}?"},
                {"type": "input_image", "image_url": "{{sample.output_text}}", "detail": "low"},
            ],
        }
    ]
    [result] = grade(spec, "https://example.invalid/cat.png", item={"topic": "cat"})
    assert result.reward == 1.0
    content = judge.requests[0]["body"]["messages"][1]["content"]
    assert content == [
        {"type": "text", "text": "REPLY=10\nDoes the picture show a cat?"},
        {"type": "image_url", "image_url": {"url": "https://example.invalid/cat.png", "detail": "low"}},
    ]


def test_rate_limits_are_retried_and_the_attempts_counted(judge) -> None:
    [result] = grade(score_spec(judge.url, max_retries=1), "STATUS=429")
    assert flags(result) == ["model_grader_server_error"] and len(judge.requests) == 2
    assert "gave up after 2 attempts: HTTP 429" in result.metadata.errors.details
    retry_counts = [request["headers"]["x-stainless-retry-count"] for request in judge.requests]
    assert retry_counts == ["0", "1"]  # the official SDK sent them


def test_no_key_sends_the_placeholder(judge, monkeypatch) -> None:
    for name in ("RFTKIT_JUDGE_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    [result] = grade(score_spec(judge.url), "REPLY=5")
    assert result.reward == pytest.approx(0.5)
    assert judge.requests[0]["headers"]["Authorization"] == "Bearer EMPTY"
