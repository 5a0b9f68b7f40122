"""Model arguments and the OpenAI-compatible client (request body, reasoning, retries, failures)."""

from __future__ import annotations

import importlib.util
import socket
import sys
from pathlib import Path

import pytest
from rftkit.evals.models import ModelArgError, ModelOptions, open_model, split_model_arg
from rftkit.evals.openai_model import OpenAIChatModel

STUB = Path(__file__).resolve().parents[2] / "integration" / "evals" / "openai_stub.py"


def _stub():
    spec = importlib.util.spec_from_file_location("openai_stub", STUB)
    module = importlib.util.module_from_spec(spec)
    sys.modules["openai_stub"] = module
    spec.loader.exec_module(module)
    return module


ITEM = {
    "messages": [{"role": "user", "content": "2+2?"}],
    "answer": "4",
    "response_format": {"type": "json_object"},
}


def test_split_model_arg() -> None:
    assert split_model_arg("base=http://h:8000/v1") == ("base", "http://h:8000/v1")
    assert split_model_arg("http://h:8000/v1") == ("h:8000", "http://h:8000/v1")
    assert split_model_arg("ft=/models/ft-1") == ("ft", "/models/ft-1")
    assert split_model_arg("/models/ft-1") == ("ft-1", "/models/ft-1")
    assert split_model_arg("hpo-baseline") == ("hpo-baseline", "hpo-baseline")
    assert split_model_arg("Qwen/Qwen3-8B=http://h/v1") == ("Qwen/Qwen3-8B", "http://h/v1")


def test_open_model_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelArgError, match="not an http"):
        open_model("x=no-such-thing", ModelOptions())
    with pytest.raises(ModelArgError, match=r"without config\.json"):
        open_model(f"x={tmp_path}", ModelOptions())
    model = open_model("x=http://127.0.0.1:1/v1#served-name", ModelOptions())
    assert isinstance(model, OpenAIChatModel) and model.model_id == "served-name"


def test_request_body_passes_response_format_through() -> None:
    model = OpenAIChatModel("m", "http://127.0.0.1:1/v1", model_id="served", temperature=0.5, max_tokens=9)
    body = model.request_body(ITEM)
    assert body == {
        "model": "served",
        "messages": ITEM["messages"],
        "response_format": {"type": "json_object"},
        "temperature": 0.5,
        "max_tokens": 9,
    }


def test_retries_then_answers_and_reports_reasoning() -> None:
    stub_module = _stub()
    with stub_module.serve({"m": lambda body: ("4", "adding")}, fail_first=2) as stub:
        model = OpenAIChatModel("m", stub.url, retries=2)
        [[gen]] = model.generate([ITEM], 1)
    assert (gen.text, gen.reasoning, gen.error) == ("4", "adding", None)


def test_gives_up_after_retries_and_on_client_errors() -> None:
    stub_module = _stub()
    with stub_module.serve({"m": lambda body: ("4", None)}, fail_first=10) as stub:
        [[gen]] = OpenAIChatModel("m", stub.url, retries=1).generate([ITEM], 1)
    assert gen.error and "gave up after 2 attempts" in gen.error and "503" in gen.error
    with stub_module.serve({"m": lambda body: ("4", None)}) as stub:
        [[gen]] = OpenAIChatModel("other", stub.url, model_id="nope").generate([ITEM], 1)
    assert gen.error and gen.error.startswith("HTTP 404")
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    [[gen]] = OpenAIChatModel("m", f"http://127.0.0.1:{port}/v1", retries=1).generate([ITEM], 1)
    assert gen.error and "ConnectError" in gen.error


def test_served_model_choice() -> None:
    """NAME when served, else the only served model; several and none named NAME is an error."""
    stub_module = _stub()
    with stub_module.serve({"only": lambda body: (body["model"], None)}) as stub:
        [[gen]] = OpenAIChatModel("mine", stub.url).generate([ITEM], 1)
    assert gen.text == "only"
    answer = {"a": lambda body: ("A", None), "b": lambda body: ("B", None)}
    with stub_module.serve(answer) as stub:
        [[gen]] = OpenAIChatModel("b", stub.url).generate([ITEM], 1)
        assert gen.text == "B"
        with pytest.raises(ModelArgError, match=r"serves several models \(a, b\).*#MODEL_ID"):
            OpenAIChatModel("c", stub.url).generate([ITEM], 1)
