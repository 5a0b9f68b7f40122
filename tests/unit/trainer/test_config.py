"""Config files, command-line overrides, `auto` hyperparameters and the `rft train` CLI's errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from rftkit.cli.train import _dotted, train
from rftkit.trainer.config import ConfigError, load_config
from rftkit.trainer.resolve import resolve

BASE = {
    "model": {"path": "model"},
    "data": {"train_file": "train.jsonl", "valid_file": "valid.jsonl"},
    "grader": {"spec": {"type": "string_check", "input": "a", "reference": "a", "operation": "eq"}},
}


def _config(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_paths_resolve_against_the_config_file_and_overrides_apply(tmp_path: Path) -> None:
    path = _config(tmp_path, BASE)
    config = load_config(
        path, ["trainer.learning_rate=1e-4", "hyperparameters.batch_size=4", "algo.beta=0.1"]
    )
    assert config.model.path == str(tmp_path / "model")
    assert config.data.train_file == str(tmp_path / "train.jsonl")
    assert config.trainer.learning_rate == 1e-4 and config.algo.beta == 0.1
    assert config.hyperparameters.batch_size == 4 and config.hyperparameters.n_epochs == "auto"


def test_bad_keys_and_values_are_named(tmp_path: Path) -> None:
    path = _config(tmp_path, BASE)
    with pytest.raises(ConfigError, match=r"trainer\.lr"):
        load_config(path, ["trainer.lr=1"])
    with pytest.raises(ConfigError, match=r"rollout\.n"):
        load_config(path, ["rollout.n=1"])
    with pytest.raises(ConfigError, match=r"key\.path=value"):
        load_config(path, ["novalue"])
    with pytest.raises(ConfigError, match=r"exactly one of model\.path"):
        load_config(_config(tmp_path, {**BASE, "model": {}}))


def test_auto_hyperparameters_map_onto_knobs(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, BASE), ["rollout.n=6", "rollout.max_tokens=100"])
    plan = resolve(config, train_size=40)
    assert (plan.batch_size, plan.n_epochs, plan.steps) == (8, 10, 50)
    assert plan.eval_interval == 5 and plan.eval_samples == 1 and plan.samples_per_prompt == 6
    assert plan.max_tokens == 100 and plan.learning_rate == config.trainer.learning_rate
    explicit = load_config(
        _config(tmp_path, BASE),
        ["hyperparameters={n_epochs: 2, batch_size: 4, learning_rate_multiplier: 10, compute_multiplier: 1.5,"
         " eval_interval: 3, eval_samples: 4, reasoning_effort: high}",
         "rollout.n=4", "trainer.max_steps=15"],
    )  # fmt: skip
    plan = resolve(explicit, train_size=40)
    assert (plan.steps, plan.samples_per_prompt, plan.max_tokens) == (15, 6, 512)
    assert plan.learning_rate == pytest.approx(10 * explicit.trainer.learning_rate)


def test_dotted_flags() -> None:
    assert _dotted(["--trainer.seed=3", "--algo.beta", "0.5"]) == ["trainer.seed=3", "algo.beta=0.5"]


def test_cli_exits_2_on_a_bad_config(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        train, [str(_config(tmp_path, BASE)), "-o", str(tmp_path / "o"), "--set", "x.y=1"]
    )
    assert result.exit_code == 2 and "x" in result.output
    result = CliRunner().invoke(train, [str(tmp_path / "missing.yaml"), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2 and "does not exist" in result.output
