"""Everything `rft eval` takes, declared once: the command's options, its environment, the docs."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..sandbox.api import BackendName
from .models import ModelOptions


class EvalSettings(BaseSettings):
    """An eval run: which models answer which items, graded how, written where."""

    model_config = SettingsConfigDict(env_prefix="RFT_EVAL_", extra="forbid", populate_by_name=True)

    data: Path = Field(
        description="The held-out set: JSONL lines with `messages` and the fields the grader reads.",
        json_schema_extra={"metavar": "JSONL"},
    )
    grader: Path = Field(
        description="Grader file: a .json or .yaml grader spec (OpenAI's grader JSON) or a .py grader file.",
        json_schema_extra={"metavar": "SPEC"},
    )
    models: list[str] = Field(
        description="A model to score (repeatable): http(s)://host:port/v1 (OpenAI-compatible chat "
        "completions; append #MODEL_ID to pick the served model), a model directory (vLLM), "
        "or a model plugin name (entry-point group rftkit.models).",
        json_schema_extra={"flag": "--model", "metavar": "NAME=URL_OR_DIR_OR_PLUGIN"},
    )
    output_dir: Path = Field(
        description="Where results.jsonl, summary.json and grader.json go.", json_schema_extra={"short": "-o"}
    )
    samples: int = Field(
        1, ge=1, description="Samples per item and model.", json_schema_extra={"short": "-n"}
    )
    server: str | None = Field(
        None,
        description="Grader service to grade on; without it a local one is started for the run.",
        json_schema_extra={"metavar": "HOST:PORT"},
    )
    token: str | None = Field(
        None,
        validation_alias=AliasChoices("token", "rft_token"),
        description="Bearer token for --server.",
        json_schema_extra={"env": "RFT_TOKEN"},
    )
    sandbox: BackendName = Field(
        "auto", description="Sandbox for Python graders in the local grader service."
    )
    concurrency: int = Field(8, ge=1, description="Requests in flight per HTTP model.")
    max_items: int | None = Field(None, ge=1, description="Score only the first N items.")
    pass_threshold: float | None = Field(
        None,
        description="Reward at or above which a sample passes [default: the grader's pass_threshold or 1].",
    )
    temperature: float | None = Field(None, description="Sampling temperature [default: the server's].")
    max_tokens: int | None = Field(None, ge=1, description="Completion token limit.")
    retries: int = Field(
        4, ge=0, description="Retries per HTTP request (connection errors, 429, 5xx), with backoff."
    )
    timeout_s: float = Field(
        300.0, gt=0, description="Seconds per HTTP request.", json_schema_extra={"flag": "--timeout"}
    )
    api_key: str | None = Field(
        None,
        validation_alias=AliasChoices("api_key", "openai_api_key"),
        description="Bearer key for HTTP models.",
        json_schema_extra={"env": "OPENAI_API_KEY"},
    )
    engine: Literal["auto", "vllm", "transformers"] = Field(
        "auto",
        description="How model directories are sampled: auto is vLLM when installed, else transformers.",
    )
    grade_batch_size: int = Field(256, ge=1, description="Samples per grading request.")
    agent_config: Path | None = Field(  # agent hook: episodes with tools (evals/agent.py)
        None,
        description="Run multi-turn episodes with tools: a YAML file with an `agent:` section (a run "
        "config, e.g. examples/agent/config.yaml); its tool servers start for the eval. Without it, "
        "episodes run when the data lines' tools name a server_url or python source.",
        json_schema_extra={"metavar": "YAML"},
    )

    def model_options(self) -> ModelOptions:
        """The sampling and transport options every model of the run shares."""
        return ModelOptions(
            concurrency=self.concurrency,
            retries=self.retries,
            timeout_s=self.timeout_s,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            api_key=self.api_key,
            engine=self.engine,
        )
