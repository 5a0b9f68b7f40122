"""The chat model pool: lazy loading, one batch for what queued up, greedy n, LRU and idle unloading.

A fake engine stands in for vLLM/transformers (the real ones are exercised by the quickstart test)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import ClassVar

import pytest
from rftkit.grader_service.http import pool as pool_module
from rftkit.grader_service.http.pool import ModelLoadError, ModelPool
from rftkit.trainer.rollout.engine import Completion, SamplingSettings


class FakeTokenizer:
    def apply_chat_template(self, messages, add_generation_prompt, tokenize):
        return " ".join(m["content"] for m in messages)

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [len(word) for word in text.split()]}


def fake_engine_class() -> type:
    """A fresh fake engine class per test (its records: built, calls, closed; `gate` holds generate)."""

    class FakeEngine:
        built: ClassVar[list[str]] = []
        calls: ClassVar[list[tuple[int, SamplingSettings]]] = []
        closed: ClassVar[list[str]] = []
        gate = threading.Event()

        def __init__(self, name, model_dir, *, dtype, vllm_options=None):
            if "broken" in model_dir:
                raise OSError("no weights here")
            self.model_dir = model_dir
            FakeEngine.built.append(model_dir)

        def generate(self, prompts, settings):
            FakeEngine.gate.wait(10)
            FakeEngine.calls.append((len(prompts), settings))
            name = Path(self.model_dir).name
            return [[Completion([1, 2], f"{name}:{sum(p)}") for _ in range(settings.n)] for p in prompts]

        def close(self):
            FakeEngine.closed.append(self.model_dir)

    FakeEngine.gate.set()
    return FakeEngine


@pytest.fixture
def fake(monkeypatch):
    import rftkit.trainer.rollout.factory as factory
    import transformers

    engine = fake_engine_class()
    monkeypatch.setattr(factory, "make_engine", engine)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", lambda _d: FakeTokenizer())
    monkeypatch.setattr(pool_module, "REAP_EVERY_S", 0.05)
    return engine


def ask(pool, directory, text, **settings):
    return pool.submit(Path(directory), [{"role": "user", "content": text}], SamplingSettings(**settings))


def test_loads_lazily_and_batches_what_queued_up(fake, tmp_path) -> None:
    pool = ModelPool(engine="transformers", max_loaded=2, idle_s=60, kv_cache_bytes=1)
    assert fake.built == []
    fake.gate.clear()  # hold the engine so the next requests queue up behind the first
    first = ask(pool, tmp_path / "a", "abc")
    time.sleep(0.2)
    rest = [ask(pool, tmp_path / "a", "x" * k) for k in range(1, 6)]
    fake.gate.set()
    assert first.result(5).completions[0].text == "a:3"
    assert [f.result(5).completions[0].text for f in rest] == [f"a:{k}" for k in range(1, 6)]
    assert [size for size, _ in fake.calls] == [1, 5], "the five queued requests went in one batch"
    assert len(fake.built) == 1 and first.result().prompt_tokens == 1
    pool.close()


def test_greedy_n_is_one_reply_repeated_and_transformers_gets_a_positive_temperature(fake, tmp_path) -> None:
    pool = ModelPool(engine="transformers", max_loaded=1, idle_s=60, kv_cache_bytes=1)
    reply = ask(pool, tmp_path / "a", "ab", n=3, temperature=0.0).result(5)
    assert len(reply.completions) == 3
    ((_size, settings),) = fake.calls
    assert settings.n == 1 and 0 < settings.temperature < 1e-3
    pool.close()


def test_least_recently_used_and_idle_models_are_unloaded(fake, tmp_path) -> None:
    pool = ModelPool(engine="transformers", max_loaded=2, idle_s=0.5, kv_cache_bytes=1)
    a, b, c = (str((tmp_path / n).resolve()) for n in "abc")
    ask(pool, a, "x").result(5)
    ask(pool, b, "x").result(5)
    ask(pool, a, "x").result(5)  # b is now the least recently used
    ask(pool, c, "x").result(5)
    deadline = time.monotonic() + 5
    while b not in fake.closed and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fake.closed == [b] and {str(p) for p in pool.loaded()} == {a, c}
    deadline = time.monotonic() + 5
    while pool.loaded() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pool.loaded() == [] and sorted(fake.closed) == sorted([a, b, c])
    ask(pool, a, "x").result(5)  # and it loads again on the next request
    assert fake.built.count(a) == 2
    pool.close()


def test_a_model_that_cannot_load_fails_its_requests_with_the_reason(fake, tmp_path) -> None:
    pool = ModelPool(engine="transformers", max_loaded=1, idle_s=60, kv_cache_bytes=1)
    with pytest.raises(ModelLoadError, match="no weights here"):
        ask(pool, tmp_path / "broken", "x").result(5)
    pool.close()
