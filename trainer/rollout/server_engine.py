"""Rollouts from one or more vLLM servers (their own processes); weights pushed by NCCL or as files.

    engine = ServerEngine(servers, weights_root=DIR / "weights")                  # files
    engine = ServerEngine(servers, weights_root=..., transfer=NcclWeightSync(...),
                          current_weights=lambda: checkpoint_weights(policy))     # NCCL (GPUs)

Token ids in, token ids and logprobs out: each prompt goes to `POST /v1/completions` as token
ids, with `return_token_ids` and `logprobs: 0` (the sampled token's log-probability), so nothing
is re-tokenised. A batch is split over the live servers; a server that fails a request (it died,
or answered with an error) is restarted in the background and its share goes to the others, the
restarted server getting the newest weights before it serves again. Weight sync (`weight_sync`):
- files: the trainer's weights are written once, as one safetensors file in a fresh folder under
  `weights_root` (a path every server can read), and every server reloads it (see
  `roles.rollout_servers`); where servers and trainer share no file system, point `weights_root`
  at a shared mount;
- nccl: vLLM's NCCL weight transfer broadcasts them from the trainer's GPU into each server's
  workers (`nccl_sync`); a restarted server gets a new group and `current_weights()` (the
  trainer's weights as they are when it is back) before it serves again;
- LoRA (`load_adapter`): only the adapter folder goes to the servers, loaded by vLLM's LoRA
  support; the base weights are never merged or pushed.
"""

from __future__ import annotations

import queue
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from ..roles.rollout_servers import SERVED_NAME, RolloutServerError, VLLMServer
from .engine import Completion, SamplingSettings

# What a failed push or restart raises: HTTP errors (httpx; requests' are OSErrors), NCCL errors
# (RuntimeError, RolloutServerError among them)
SYNC_ERRORS = (httpx.HTTPError, OSError, RuntimeError)


class ServerEngine:
    """A RolloutEngine over `servers` (started and ready); thread-safe for one caller at a time."""

    def __init__(
        self,
        servers: list[VLLMServer],
        *,
        weights_root: Path,
        request_timeout_s: float = 600.0,
        restart_deadline_s: float = 300.0,
        notify: Any = print,
        transfer: Any = None,
        current_weights: Callable[[], Iterable[tuple[str, Any]]] | None = None,
    ) -> None:
        if not servers:
            raise ValueError("no rollout servers")
        if transfer is not None and current_weights is None:
            raise ValueError("NCCL weight sync needs current_weights (for servers that restart)")
        self.servers = servers
        self.weights_root = weights_root
        self.transfer = transfer  # an NcclWeightSync over `servers` (same order), or None: files
        self.current_weights = current_weights
        self.weight_sync = "nccl" if transfer is not None else "files"
        self._sync_lock = threading.Lock()  # one NCCL transfer at a time (pushes and revivals)
        self.request_timeout_s = request_timeout_s
        self.restart_deadline_s = restart_deadline_s
        self.notify = notify
        self.version = 0
        self.latest: Path | None = None  # the newest weights (or LoRA adapter) folder
        self.model_name = SERVED_NAME  # what requests ask for: the base, or the newest adapter
        self._healthy = {id(s): True for s in servers}
        self._lock = threading.Lock()
        # Restarts run on one long-lived thread: a server dies with the thread that started it.
        self._restarts: queue.Queue[VLLMServer | None] = queue.Queue()
        self._supervisor = threading.Thread(target=self._supervise, daemon=True, name="rollout-supervisor")
        self._supervisor.start()
        self._pool = ThreadPoolExecutor(max(2, len(servers)), thread_name_prefix="rollout-http")
        self._client = httpx.Client(timeout=request_timeout_s)

    # ---------------------------------------------------------------- generate
    def live(self) -> list[VLLMServer]:
        with self._lock:
            return [s for s in self.servers if self._healthy[id(s)]]

    def generate(self, prompts: list[list[int]], settings: SamplingSettings) -> list[list[Completion]]:
        results: list[list[Completion] | None] = [None] * len(prompts)
        todo = list(range(len(prompts)))
        deadline = time.monotonic() + self.restart_deadline_s + self.request_timeout_s
        while todo:
            servers = self._wait_for_live(deadline)
            parts = [todo[i :: len(servers)] for i in range(len(servers))]
            futures = [
                (
                    server,
                    part,
                    self._pool.submit(self._complete, server, [prompts[i] for i in part], settings),
                )
                for server, part in zip(servers, parts, strict=True)
                if part
            ]
            todo = []
            for server, part, future in futures:
                try:
                    groups = future.result()
                except (httpx.HTTPError, RolloutServerError, ValueError) as exc:
                    self._lost(server, exc)
                    todo.extend(part)  # its share goes to the others
                    continue
                for index, group in zip(part, groups, strict=True):
                    results[index] = group
            todo.sort()
        return [group for group in results if group is not None]

    def _wait_for_live(self, deadline: float) -> list[VLLMServer]:
        while True:
            servers = self.live()
            if servers:
                return servers
            if time.monotonic() > deadline:
                raise RolloutServerError("no rollout server is up (all died, and none came back in time)")
            time.sleep(0.5)

    def _complete(
        self, server: VLLMServer, prompts: list[list[int]], settings: SamplingSettings
    ) -> list[list[Completion]]:
        body: dict[str, Any] = {
            "model": self.model_name, "prompt": prompts, "n": settings.n, "temperature": settings.temperature,
            "top_p": settings.top_p, "max_tokens": settings.max_tokens, "return_token_ids": True,
            "skip_special_tokens": True,
        }  # fmt: skip
        if settings.logprobs:
            body["logprobs"] = 0
        if settings.json_schema:  # vLLM structured outputs: decoding follows the schema
            body["structured_outputs"] = {"json": settings.json_schema}
        response = self._client.post(f"{server.url}/v1/completions", json=body)
        if response.status_code != 200:
            raise RolloutServerError(f"{server.url}: HTTP {response.status_code}: {response.text[:300]}")
        choices = sorted(response.json()["choices"], key=lambda c: c["index"])
        if len(choices) != len(prompts) * settings.n:
            raise ValueError(f"{server.url}: {len(choices)} choices for {len(prompts)} x {settings.n}")
        groups: list[list[Completion]] = [[] for _ in prompts]
        for choice in choices:
            logprobs = None
            if settings.logprobs and choice.get("logprobs"):
                logprobs = [float(x) for x in choice["logprobs"]["token_logprobs"]]
            completion = Completion(
                list(choice["token_ids"]), choice["text"], logprobs, choice["finish_reason"]
            )
            groups[choice["index"] // settings.n].append(completion)
        return groups

    # ---------------------------------------------------------------- faults
    def _lost(self, server: VLLMServer, exc: BaseException) -> None:
        """Take `server` out of the rotation and restart it in the background."""
        with self._lock:
            if not self._healthy[id(server)]:
                return
            self._healthy[id(server)] = False
        self.notify(
            f"rollout server {server.url} failed ({exc}); restarting it, its share goes to the others"
        )
        self._restarts.put(server)

    def _supervise(self) -> None:
        while (server := self._restarts.get()) is not None:
            self._revive(server)

    def _revive(self, server: VLLMServer) -> None:
        if self.transfer is not None:
            self._revive_nccl(server)
            return
        try:
            server.restart(self.restart_deadline_s)
            with self._lock:
                latest = self.latest
            if latest is not None:
                self._apply(server, latest)
        except (RolloutServerError, httpx.HTTPError, OSError) as exc:
            self.notify(f"rollout server {server.url} did not come back: {exc}")
            return
        with self._lock:
            if self.latest != latest:  # weights moved on while it started: catch up first
                try:
                    self._apply(server, self.latest)
                except (RolloutServerError, httpx.HTTPError) as exc:
                    self.notify(f"rollout server {server.url} did not take the newest weights: {exc}")
                    return
            self._healthy[id(server)] = True
        self.notify(f"rollout server {server.url} is back (restart {server.restarts})")

    def _revive_nccl(self, server: VLLMServer) -> None:
        """Restart `server`, join it to a new NCCL group and send it the trainer's weights."""
        assert self.transfer is not None and self.current_weights is not None
        index = self.servers.index(server)
        try:
            server.restart(self.restart_deadline_s)
            with self._sync_lock:  # no push in between: the next one includes it
                self.transfer.reconnect(index)
                self.transfer.send(index, self.current_weights())
                with self._lock:
                    self._healthy[id(server)] = True
        except SYNC_ERRORS as exc:
            self.notify(f"rollout server {server.url} did not come back: {exc}")
            return
        self.notify(f"rollout server {server.url} is back (restart {server.restarts})")

    # ---------------------------------------------------------------- weights
    def _apply(self, server: VLLMServer, folder: Path) -> None:
        """Have `server` take the weights, or the LoRA adapter, in `folder`."""
        if folder.name.startswith("adapter-"):
            server.load_adapter(folder.name, folder, self.request_timeout_s)
        else:
            server.reload_weights(folder, self.request_timeout_s)

    def load_adapter(self, save: Any) -> None:
        """LoRA: only the adapter goes to the servers (vLLM's LoRA loading, no merge).

        `save(folder)` writes it (peft's save_pretrained); requests then ask for it by name.
        """
        self.version += 1
        name = f"adapter-v{self.version:06d}"
        staging = self.weights_root / f".{name}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        save(staging)
        final = self.weights_root / name
        staging.rename(final)
        with self._lock:
            previous, self.latest = self.model_name, final
        self._push(final)
        self.model_name = name
        for server in self.live():
            if previous != SERVED_NAME:
                server.unload_adapter(previous, self.request_timeout_s)
        shutil.rmtree(self.weights_root / f"adapter-v{self.version - 2:06d}", ignore_errors=True)

    def _push(self, folder: Path) -> None:
        futures = [(s, self._pool.submit(self._apply, s, folder)) for s in self.live()]
        for server, future in futures:
            try:
                future.result()
            except (httpx.HTTPError, RolloutServerError) as exc:
                self._lost(server, exc)  # it takes the newest weights when it is back

    def load_weights(self, named_tensors: Iterable[tuple[str, Any]]) -> None:
        """Every live server takes `named_tensors`: by NCCL broadcast, or written once (safetensors)
        and reloaded by each."""
        if self.transfer is not None:
            self._broadcast(list(named_tensors))
            return
        from safetensors.torch import save_file

        self.version += 1
        final = self.weights_root / f"v{self.version:06d}"
        staging = self.weights_root / f".v{self.version:06d}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        save_file(
            {name: t.detach().contiguous().cpu() for name, t in named_tensors}, staging / "model.safetensors"
        )
        staging.rename(final)
        with self._lock:
            self.latest = final
        self._push(final)
        # the one before stays: a server restarting meanwhile may still be reading it
        shutil.rmtree(self.weights_root / f"v{self.version - 2:06d}", ignore_errors=True)

    def _broadcast(self, named_tensors: list[tuple[str, Any]]) -> None:
        """NCCL: one server after the other (their groups share the trainer's GPU)."""
        assert self.transfer is not None
        with self._sync_lock:
            self.version += 1
            for server in self.live():
                try:
                    self.transfer.send(self.servers.index(server), named_tensors)
                except SYNC_ERRORS as exc:
                    self._lost(server, exc)  # a new group and the newest weights when it is back

    def close(self) -> None:
        self._restarts.put(None)
        if self.transfer is not None:
            self.transfer.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()
        for server in self.servers:
            server.stop()
        shutil.rmtree(self.weights_root, ignore_errors=True)
