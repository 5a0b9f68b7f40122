"""The models `/v1/chat/completions` serves: loaded lazily, batched, unloaded when idle.

Each loaded model has one thread that owns its engine (the trainer's rollout engine: vLLM when
installed, else transformers) and its tokenizer: requests wait in its queue, and whatever is
queued when the engine frees up goes in one `generate` call per sampling setting, so several
clients (an eval's concurrent requests) share a batch. At most `max_loaded` models are held; the
least recently used one is unloaded to make room, and any model unused for `idle_s` seconds.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import astuple, dataclass, field, replace
from pathlib import Path
from typing import Any

from ...trainer.rollout.engine import Completion, SamplingSettings

log = logging.getLogger("rftkit.grader_service.http")
MAX_BATCH = 64
REAP_EVERY_S = 2.0
GREEDY_T = 1e-5


class ModelLoadError(RuntimeError):
    """The model directory could not be loaded (the message says why)."""


@dataclass
class Reply:
    """The completions of one request and its prompt's length in tokens."""

    completions: list[Completion]
    prompt_tokens: int


@dataclass
class _Request:
    messages: list[dict[str, Any]]
    settings: SamplingSettings
    repeat: int = 1
    future: Future[Reply] = field(default_factory=Future)


class LoadedModel:
    """One model directory with its engine, served by its own thread."""

    def __init__(self, model_dir: Path, engine: str, kv_cache_bytes: int) -> None:
        self.model_dir = model_dir
        self.engine_name = engine
        self.kv_cache_bytes = kv_cache_bytes
        self.last_used = time.monotonic()
        self.pending = 0
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._ready = threading.Event()
        self._error: str | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, name=f"rft-chat-{model_dir.name}", daemon=True)
        self._thread.start()

    def submit(self, messages: list[dict[str, Any]], settings: SamplingSettings) -> Future[Reply]:
        with self._lock:
            self.pending += 1
            self.last_used = time.monotonic()
        repeat = 1
        if settings.temperature <= 0 and settings.n > 1:  # greedy: one reply, n times (vLLM wants n=1)
            repeat, settings = settings.n, replace(settings, n=1)
        if settings.temperature <= 0 and self.engine_name != "vllm":  # transformers samples only: near-greedy
            settings = replace(settings, temperature=GREEDY_T)
        request = _Request(messages, settings, repeat)
        self._queue.put(request)
        return request.future

    def close(self) -> None:
        """Unload once the requests already queued are answered."""
        self._queue.put(None)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _serve(self) -> None:
        engine = tokenizer = None
        try:
            from transformers import AutoTokenizer

            from ...trainer.rollout.factory import make_engine

            started = time.perf_counter()
            tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir))
            options = {"kv_cache_memory_bytes": self.kv_cache_bytes}
            engine = make_engine(self.engine_name, str(self.model_dir), dtype="float32", vllm_options=options)
            log.info("chat: loaded %s (%s) in %.1f s", self.model_dir, self.engine_name,
                     time.perf_counter() - started)  # fmt: skip
        except Exception as exc:  # a broken model dir: every request gets the reason
            log.exception("chat: cannot load %s", self.model_dir)
            self._error = f"{type(exc).__name__}: {exc}"
        try:
            while True:
                first = self._queue.get()
                if first is None:
                    break
                batch = [first]
                stop = False
                while len(batch) < MAX_BATCH:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        stop = True
                        break
                    batch.append(more)
                self._answer(engine, tokenizer, batch)
                if stop:
                    break
        finally:
            if engine is not None:
                try:
                    engine.close()
                except Exception:
                    log.exception("chat: closing %s failed", self.model_dir)
            while True:  # anything that raced in after the close
                try:
                    late = self._queue.get_nowait()
                except queue.Empty:
                    break
                if late is not None:
                    self._fail([late], "the model was unloaded; send the request again")
            log.info("chat: unloaded %s", self.model_dir)

    def _fail(self, batch: list[_Request], message: str) -> None:
        for request in batch:
            if not request.future.done():
                request.future.set_exception(ModelLoadError(message))
        self._done(len(batch))

    def _done(self, count: int) -> None:
        with self._lock:
            self.pending -= count
            self.last_used = time.monotonic()

    def _answer(self, engine: Any, tokenizer: Any, batch: list[_Request]) -> None:
        if engine is None:
            self._fail(batch, f"model {self.model_dir} cannot be loaded: {self._error}")
            return
        from ...trainer.chat import chat_prompt_ids

        groups: dict[tuple[Any, ...], list[tuple[_Request, list[int]]]] = {}
        for request in batch:
            try:
                ids = chat_prompt_ids(tokenizer, request.messages)
            except Exception as exc:
                request.future.set_exception(ValueError(f"the messages cannot be rendered: {exc}"))
                self._done(1)
                continue
            groups.setdefault(astuple(request.settings), []).append((request, ids))
        for members in groups.values():
            settings = members[0][0].settings
            try:
                answers = engine.generate([ids for _, ids in members], settings)
            except Exception as exc:
                log.exception("chat: generate failed on %s", self.model_dir)
                for request, _ in members:
                    request.future.set_exception(
                        RuntimeError(f"generation failed: {type(exc).__name__}: {exc}")
                    )
                self._done(len(members))
                continue
            for (request, ids), completions in zip(members, answers, strict=True):
                request.future.set_result(Reply(completions * request.repeat, len(ids)))
            self._done(len(members))


class ModelPool:
    """Loaded models by directory; loads on first use, unloads the least recently used and the idle."""

    def __init__(self, *, engine: str, max_loaded: int, idle_s: float, kv_cache_bytes: int) -> None:
        from ...trainer.rollout.engine import pick_engine

        self.engine = pick_engine(engine)
        self.max_loaded = max_loaded
        self.idle_s = idle_s
        self.kv_cache_bytes = kv_cache_bytes
        self._models: dict[Path, LoadedModel] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._reaper = threading.Thread(target=self._reap, name="rft-chat-reaper", daemon=True)
        self._reaper.start()

    def loaded(self) -> list[Path]:
        with self._lock:
            return [path for path, model in self._models.items() if model.alive]

    def submit(
        self, model_dir: Path, messages: list[dict[str, Any]], settings: SamplingSettings
    ) -> Future[Reply]:
        """Queue one request for the model in `model_dir` (loading it first when it is not loaded)."""
        key = model_dir.resolve()
        with self._lock:
            model = self._models.get(key)
            if model is None or not model.alive:
                others = [k for k in self._models if k != key]
                while len(others) >= self.max_loaded:
                    oldest = min(others, key=lambda k: self._models[k].last_used)
                    self._models.pop(oldest).close()
                    others.remove(oldest)
                model = self._models[key] = LoadedModel(key, self.engine, self.kv_cache_bytes)
            return model.submit(messages, settings)

    def _reap(self) -> None:
        while not self._stop.wait(REAP_EVERY_S):
            now = time.monotonic()
            with self._lock:
                for key, model in list(self._models.items()):
                    if not model.alive or (model.pending == 0 and now - model.last_used > self.idle_s):
                        self._models.pop(key).close()

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            for model in self._models.values():
                model.close()
            self._models.clear()
