"""Turn `--model NAME=URL_OR_DIR_OR_PLUGIN` into a model `rft eval` can score."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urldefrag

from ..plugins.models.base import model_plugins
from .generation import EvalModel
from .model_api import ModelArgError, ModelOptions

__all__ = ["ModelArgError", "ModelOptions", "open_model", "split_model_arg"]


def split_model_arg(arg: str) -> tuple[str, str]:
    """`NAME=TARGET` -> (NAME, TARGET); a bare TARGET is named after itself."""
    name, sep, target = arg.partition("=")
    if sep and name and not name.startswith(("http:", "https:")) and not Path(arg).exists():
        return name.strip(), target.strip()
    target = arg.strip()
    if target.startswith(("http://", "https://")):
        return target.split("//", 1)[1].split("/", 1)[0], target
    return Path(target).name or target, target


def open_model(arg: str, options: ModelOptions) -> EvalModel:
    """An EvalModel for one --model argument: an http(s) URL, a model directory, or a plugin name."""
    name, target = split_model_arg(arg)
    if not target:
        raise ModelArgError(f"--model {arg!r}: nothing after '='; give a URL, a model directory or a plugin")
    if target.startswith(("http://", "https://")):
        from .openai_model import OpenAIChatModel

        url, model_id = urldefrag(target)
        return OpenAIChatModel(
            name,
            url,
            model_id=model_id or None,
            api_key=options.api_key,
            concurrency=options.concurrency,
            retries=options.retries,
            timeout_s=options.timeout_s,
            temperature=options.temperature,
            max_tokens=options.max_tokens,
        )
    if Path(target).is_dir():
        if not (Path(target) / "config.json").is_file():
            raise ModelArgError(f"--model {arg!r}: {target} is a directory without config.json, not a model")
        from .local_model import LocalModel

        return LocalModel(
            name,
            target,
            temperature=options.temperature,
            max_tokens=options.max_tokens,
            engine=options.engine,
        )
    plugins = model_plugins()
    if target in plugins:
        from .plugin_model import PluginModel

        try:
            plugin = plugins[target]()
        except Exception as exc:
            raise ModelArgError(f"--model {arg!r}: plugin {target!r} failed to start: {exc}") from exc
        return PluginModel(name, target, plugin)
    known = ", ".join(sorted(plugins)) or "none installed"
    raise ModelArgError(
        f"--model {arg!r}: {target!r} is not an http(s) URL, an existing model directory, "
        f"or a model plugin (entry-point group rftkit.models: {known})"
    )
