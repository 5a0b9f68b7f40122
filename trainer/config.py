"""Run configuration: pydantic sections layered from a YAML file and command-line overrides.

`load_config(path, overrides)` reads the YAML, applies `a.b.c=value` overrides (values parsed
as YAML), resolves relative paths against the config file's folder and validates. OpenAI's
hyperparameter names live in `hyperparameters`; `rftkit.trainer.resolve` maps their `auto`
values onto the real knobs below them.
"""

from __future__ import annotations

import types
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .agent.config import AgentConfig

Auto = Literal["auto"]


class _RelativeToConfig:
    """Marks a config field holding a path: relative values are read against the config file's folder."""


# A path in a config file: `load_config` resolves it against the file's folder (or the working
# directory, for a command-line override).
ConfigPath = Annotated[str, _RelativeToConfig()]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TinyModelConfig(Section):
    """Build a tiny Llama locally (no model hub) and warm it up on `warmup_file` (see tiny_model.py)."""

    warmup_file: ConfigPath  # JSONL of chat lines the base model is warmed up on (supervised)
    vocab_size: int = 1024  # of the BPE tokenizer trained on the warm-up text
    hidden_size: int = 128  # width; heads are hidden_size / 64 (vLLM's CPU attention needs head_dim 64)
    num_layers: int = 2  # transformer blocks
    warmup_steps: int = 300  # supervised steps on warmup_file before RL
    warmup_batch_size: int = 32  # lines per warm-up step
    warmup_learning_rate: float = 1e-3  # AdamW learning rate of the warm-up
    seed: int = 0  # initialisation and warm-up order


class LoraConfig(Section):
    r: int = 16  # LoRA rank
    alpha: int = 32  # LoRA scaling numerator (the update is scaled by alpha / r)
    dropout: float = 0.0  # LoRA dropout
    target_modules: list[str] | Literal["all-linear"] = "all-linear"  # module names, or every linear layer


class ModelConfig(Section):
    path: ConfigPath | None = None  # a local model directory (transformers format)
    tiny: TinyModelConfig | None = None  # or build one locally; cached under cache_dir
    cache_dir: ConfigPath | None = None  # default: $RFTKIT_CACHE or ~/.cache/rftkit
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"  # auto: bfloat16 on a GPU that has it
    lora: LoraConfig | None = None  # None: full weights

    @model_validator(mode="after")
    def _one_source(self) -> ModelConfig:
        if (self.path is None) == (self.tiny is None):
            raise ValueError("set exactly one of model.path (a local model dir) or model.tiny")
        return self


class DataConfig(Section):
    train_file: ConfigPath
    valid_file: ConfigPath
    answer_field: str | None = None  # when set, training refuses answers that also appear in valid


class RolloutConfig(Section):
    engine: Literal["auto", "vllm", "transformers"] = "auto"  # auto: vLLM when importable
    n: int = Field(8, ge=2)  # samples per prompt (the GRPO group), before compute_multiplier
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(256, ge=1)  # at reasoning_effort medium
    reasoning: bool = True  # <think>...</think> is reasoning, not answer (as in rft eval)
    # OpenAI's response_format (json_schema / json_object) or a bare JSON schema for every line that
    # names none: vLLM decodes under it (structured outputs), the reply is parsed into output_json
    response_format: dict[str, Any] | None = None
    gpu_memory_utilization: float | None = None  # vLLM; None: 0.2 on CPU, 0.3 on GPU (colocated)
    kv_cache_memory_bytes: int | None = None  # vLLM; a fixed KV cache size instead of a memory fraction
    enforce_eager: bool | None = None  # vLLM; None: True on CPU
    max_model_len: int | None = None
    # Rollouts may run ahead of training by this many policy versions: 0 is the on-policy loop
    # (sample, grade, update, in turn); k generates and grades the next k steps' batches while
    # the current one trains, each batch at most k updates old (see trainer/pipeline.py).
    max_staleness: int = Field(0, ge=0)
    # How new weights reach rollout servers (cluster.rollout_servers / rollout_urls). nccl: vLLM's
    # NCCL weight transfer, trainer GPU straight into the servers' GPUs (servers started with
    # --weight-transfer-config '{"backend": "nccl"}'); files: safetensors under DIR/weights, reloaded
    # by every server; auto: nccl when the trainer has CUDA and every server runs on CUDA devices of
    # its own with that engine, files otherwise. LoRA runs push the adapter only (files, no merge).
    weight_sync: Literal["auto", "nccl", "files"] = "auto"
    # NCCL rendezvous address of the trainer as the servers reach it (servers on other hosts);
    # None: 127.0.0.1, for servers `rft train` starts on this machine
    weight_sync_address: str | None = None


class GraderConfig(Section):
    spec: dict[str, Any] | None = None  # an OpenAI grader JSON object
    spec_file: ConfigPath | None = None  # or a grader file: .json, .yaml or .py (grade(sample, item))
    # host:port of `rft serve`, or a list of replicas of one service (round-robin with fail-over);
    # None: start `cluster.grader_replicas` local replicas (one: the embedded service)
    address: str | list[str] | None = None
    token: str | None = None  # bearer token for grader.address (default: $RFT_TOKEN)
    sandbox: str = "auto"  # for the embedded service
    batch_size: int = Field(256, ge=1)  # samples per GradeBatch call
    # Grade one chunk of samples while the next is generated. auto: with vLLM only; transformers'
    # generate pays a fixed cost per call that a second call per step does not win back.
    overlap: bool | Auto = "auto"
    retry_max_wait_s: float = 600.0  # give up (and stop training) after an outage this long
    # Stop the run when more than this share of a batch (training or validation) has no valid
    # reward (its grading failed, even after retrying what was the infrastructure's fault).
    max_invalid_fraction: float = Field(0.5, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _one_spec(self) -> GraderConfig:
        if (self.spec is None) == (self.spec_file is None):
            raise ValueError("set exactly one of grader.spec or grader.spec_file")
        return self


class AlgoConfig(Section):
    """GRPO."""

    scale_rewards: bool = True  # divide advantages by the group's reward std
    epsilon: float = 0.2  # clip range below
    epsilon_high: float | None = None  # clip range above (None: epsilon)
    beta: float = 0.0  # KL to the reference model; the reference is loaded only when > 0
    loss_aggregation: Literal["token", "sequence"] = "token"
    num_iterations: int = Field(1, ge=1)  # policy updates per batch of rollouts (>1: clipping bites)
    # Truncated importance sampling: weight each token by min(pi_trainer / pi_rollout, tis_cap),
    # from the rollout engine's logprobs (vLLM), correcting stale or numerically different
    # rollouts. None: no correction (and no logprobs requested).
    tis_cap: float | None = Field(2.0, gt=0)


class TrainerConfig(Section):
    learning_rate: float = 1e-5  # before learning_rate_multiplier
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    grad_accumulation: int = Field(1, ge=1)  # micro-batches per optimizer step
    warmup_steps: int = 0
    max_steps: int | None = None  # stop after this many steps (None: n_epochs over the training set)
    seed: int = 0
    threads: int | None = None  # torch threads; None: leave torch's default


class Hyperparameters(Section):
    """OpenAI's RFT names; `auto` resolves to the knobs documented in rftkit.trainer.resolve."""

    n_epochs: int | Auto = "auto"
    batch_size: int | Auto = "auto"  # prompts per step
    learning_rate_multiplier: float | Auto = "auto"
    compute_multiplier: float | Auto = "auto"  # scales samples per prompt
    eval_interval: int | Auto = "auto"  # steps between validations
    eval_samples: int | Auto = "auto"  # samples per validation prompt
    reasoning_effort: Literal["auto", "low", "medium", "high"] = "auto"  # scales max_tokens


class EvalConfig(Section):
    max_items: int | None = None  # validation prompts per eval (None: all)
    temperature: float | None = None  # None: the rollout temperature


class CheckpointConfig(Section):
    keep_best: int = Field(3, ge=1)  # by valid reward; the newest is always kept too for resuming


class ClusterConfig(Section):
    """How many of each role `rft train` starts on this machine (see trainer/roles/)."""

    # torchrun ranks the policy is FSDP2-sharded over (gloo on CPU, NCCL on GPUs); rank 0 also
    # runs the loop. 1: one process, no torch.distributed
    trainer_ranks: int = Field(1, ge=1)
    grader_replicas: int = Field(1, ge=1)  # local `rft serve` replicas (when grader.address is unset)
    # vLLM OpenAI-compatible servers started as their own processes; 0: vLLM inside the trainer's
    # process (rollout.engine decides which engine)
    rollout_servers: int = Field(0, ge=0)
    server_start_timeout_s: float = Field(600.0, gt=0)  # per rollout server (first start compiles)
    # CUDA_VISIBLE_DEVICES of each rollout server, e.g. ["1", "2,3"] (tensor parallel over 2); None:
    # what the environment gives (on CPU: the host's cores)
    rollout_devices: list[str] | None = None
    # vLLM servers started elsewhere (http://host:port, each with VLLM_SERVER_DEV_MODE=1 and a
    # view of DIR/weights), used instead of starting cluster.rollout_servers here
    rollout_urls: list[str] | None = None


class RunConfig(Section):
    model: ModelConfig
    data: DataConfig
    grader: GraderConfig
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    algo: AlgoConfig = Field(default_factory=AlgoConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    agent: AgentConfig | None = None  # tools and multi-turn episodes (see trainer/agent); None: one reply
    output_dir: str | None = None  # the run folder, when --output-dir is not given
    progress: bool = True  # a progress bar (false: log lines only, as with --no-progress)


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message says what to fix."""


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """Set `a.b.c=value` in nested `data` (value parsed as YAML: 1e-4, true, [1, 2], {a: 1})."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {assignment!r} is not of the form key.path=value")
    parts = key.strip().lstrip("-").split(".")
    target = data
    for part in parts[:-1]:
        if not isinstance(target.get(part), dict):
            target[part] = {}
        target = target[part]
    try:
        target[parts[-1]] = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {assignment!r}: value is not valid YAML: {exc}") from exc


def _is_path_field(field: Any) -> bool:
    """True for a ConfigPath field (`ConfigPath` or `ConfigPath | None`)."""
    annotated = [field.metadata, *(getattr(a, "__metadata__", ()) for a in get_args(field.annotation))]
    return any(isinstance(meta, _RelativeToConfig) for metas in annotated for meta in metas)


def _sections(annotation: Any) -> list[type[BaseModel]]:
    """The config sections a field's annotation may hold (`X`, `X | None`)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if get_origin(annotation) in (Union, types.UnionType):
        return [a for arg in get_args(annotation) for a in _sections(arg)]
    return []


def _resolve_paths(data: dict[str, Any], base: Path, model: type[BaseModel] | None = None) -> None:
    """Resolve every ConfigPath field of `model` (RunConfig by default) in raw `data`, in place."""
    for name, field in (model or RunConfig).model_fields.items():
        value = data.get(name)
        if isinstance(value, str) and _is_path_field(field):
            path = Path(value).expanduser()
            data[name] = str(path if path.is_absolute() else (base / path).resolve())
        elif isinstance(value, dict):
            for section in _sections(field.annotation):
                _resolve_paths(value, base, section)


def load_config(path: str | Path | None, overrides: list[str] = ()) -> RunConfig:
    """Read YAML `path` (or start empty), apply overrides, resolve relative paths, validate."""
    data: dict[str, Any] = {}
    base = Path.cwd()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
        base = path.resolve().parent
    _resolve_paths(data, base)
    if isinstance(data.get("agent"), dict):  # agent hook: tool servers and python_file run from here
        data["agent"].setdefault("base_dir", str(base))
    cli: dict[str, Any] = {}
    for assignment in overrides:
        apply_override(cli, assignment)
    _resolve_paths(cli, Path.cwd())
    _merge(data, cli)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        lines = [f"  {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("invalid config:\n" + "\n".join(lines)) from exc


def _merge(into: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
