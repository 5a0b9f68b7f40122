"""Command-line options generated from a settings model: each setting is declared once.

A command's settings are a pydantic-settings class (file, environment and defaults from one
declaration); `options_from(Settings)` turns its fields into click options (`--field-name`,
the field's type, its description as help, its default and environment variable shown), and
`settings_from(Settings, kwargs)` builds the settings from what was given on the command line,
so the environment and the defaults fill the rest. The docs' reference tables are generated
from the same classes.

A field may say more through `json_schema_extra`: `{"flag": "--tokens"}` (another flag name),
`{"short": "-o"}`, `{"metavar": "ADDR"}`, `{"hidden": True}`, `{"env": "RFT_TOKEN"}` (the
variable its `validation_alias` reads, when that is not the prefixed name).
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import click
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

F = TypeVar("F", bound=Callable[..., Any])
S = TypeVar("S", bound=BaseModel)


def _extra(field: FieldInfo) -> dict[str, Any]:
    extra = field.json_schema_extra
    return dict(extra) if isinstance(extra, Mapping) else {}


def flag_name(name: str, field: FieldInfo) -> str:
    """The option's flag: `{"flag": ...}` from the field, else `--` + the name with dashes."""
    return str(_extra(field).get("flag") or "--" + name.replace("_", "-"))


def env_name(model: type[BaseModel], name: str) -> str | None:
    """The environment variable pydantic-settings reads for a field, if the model reads any."""
    field = model.model_fields[name]
    if "env" in _extra(field):
        return str(_extra(field)["env"])
    config = getattr(model, "model_config", {})
    if "env_prefix" not in config:
        return None
    return f"{config['env_prefix']}{name}".upper()


def _base_type(annotation: Any) -> tuple[Any, bool]:
    """(the type without `| None`, whether it is a list)."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        annotation = args[0] if len(args) == 1 else str
    if get_origin(annotation) is list:
        return (get_args(annotation) or (str,))[0], True
    return annotation, False


def _click_type(annotation: Any) -> Any:
    if get_origin(annotation) is Literal:
        return click.Choice([str(a) for a in get_args(annotation)])
    if annotation is Path:
        return click.Path(path_type=Path)
    if annotation in (int, float, str):
        return annotation
    return str


def default_text(field: FieldInfo) -> str | None:
    """The default as the help shows it; None when the field is required or has none to show."""
    if field.default_factory is not None:
        return str(_extra(field).get("default_text", "computed"))
    if field.default is PydanticUndefined or field.default is None:
        return None
    return str(field.default)


def option_for(model: type[BaseModel], name: str, field: FieldInfo) -> click.Option:
    """One click option for one settings field."""
    extra = _extra(field)
    annotation, many = _base_type(field.annotation)
    flag = flag_name(name, field)
    help_text = field.description or ""
    shown = default_text(field)
    env = env_name(model, name)
    notes = [f"default: {shown}"] if shown is not None and annotation is not bool else []
    if field.is_required():
        notes.append("required")
    if env:
        notes.append(f"env: {env}")
    if notes:
        help_text = f"{help_text} [{'; '.join(notes)}]".strip()
    common: dict[str, Any] = {"help": help_text, "hidden": bool(extra.get("hidden")), "default": None}
    decls = [flag, *([extra["short"]] if "short" in extra else []), name]
    if annotation is bool:
        if field.default is True:
            return click.Option([f"{flag}/--no-{flag[2:]}", name], **common)
        return click.Option(decls, is_flag=True, **common)
    return click.Option(
        decls,
        type=_click_type(annotation),
        multiple=many,
        metavar=extra.get("metavar"),
        **common,
    )


def options_from(model: type[BaseModel], *, skip: tuple[str, ...] = ()) -> Callable[[F], F]:
    """A decorator adding an option for every field of `model` (but `skip`), in declaration order."""

    def decorate(command: F) -> F:
        params = getattr(command, "__click_params__", [])
        fields = [(n, f) for n, f in model.model_fields.items() if n not in skip]
        # click lists options in reverse order of decoration; append so the first field shows first.
        params.extend(option_for(model, name, field) for name, field in reversed(fields))
        command.__click_params__ = params  # type: ignore[attr-defined]
        return command

    return decorate


def settings_from(model: type[S], given: Mapping[str, Any], **fixed: Any) -> S:
    """`model` built from the options the user gave (unset ones left to the environment and defaults).

    A value the model refuses, or a required one given neither as an option nor in the
    environment, is a usage error that names the option.
    """
    fields = model.model_fields
    values = {
        k: v
        for k, v in given.items()
        if k in fields and v is not None and v != () and not (v is False and fields[k].default is False)
    }
    values.update(fixed)
    try:
        return model(**values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            where = error["loc"][0] if error["loc"] else None
            field = model.model_fields.get(str(where)) if where is not None else None
            prefix = f"{flag_name(str(where), field)}: " if field is not None else ""
            problems.append(prefix + str(error["msg"]).removeprefix("Value error, "))
        raise click.UsageError("; ".join(problems)) from exc
