"""Reference pages generated from the code: config keys from the pydantic models, CLI options from click.

Used two ways:

- as an mkdocs hook (`hooks:` in mkdocs.yml): `on_files` adds the generated pages to the build,
  so `mkdocs build` always documents the code as it is;
- as a script, `python docs/gen_reference.py OUT_DIR`, which writes the same pages to OUT_DIR
  (to read them without building the site).

To document another settings model, add one line to `MODELS`. Subclasses of pydantic-settings'
`BaseSettings` anywhere in the package are found without a line (`discover_settings`); a line in
`MODELS` only gives them a better title and order. A field's description is its
`Field(description=...)`, else the comment on its line, else the comment lines just above it.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import io
import json
import os
import sys
import tokenize
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import click
from pydantic import AliasChoices, BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

# (import path "module:Class", page heading). Order is the order on the page.
MODELS: list[tuple[str, str]] = [
    ("rftkit.trainer.config:RunConfig", "`rft train` config file"),
    ("rftkit.grader_service.settings:ServiceSettings", "`rft serve` settings"),
    ("rftkit.grader_service.http.settings:HttpSettings", "`rft serve` HTTP API settings"),
    ("rftkit.evals.settings:EvalSettings", "`rft eval` settings"),
    # The limits' environment form: SandboxLimits' fields, each with its RFTKIT_SANDBOX_<FIELD>.
    ("rftkit.sandbox.api:SandboxEnvironment", "Sandbox limits"),
]
# The click root group, and the pages written.
CLI_ROOT = "rftkit.cli.main:main"
CLI_NAME = "rft"
CONFIG_PAGE = "reference/config.md"
CLI_PAGE = "reference/cli.md"
# Where `discover_settings` looks for BaseSettings subclasses (the repository root is the package).
PACKAGE_ROOT = Path(__file__).resolve().parents[1]
PACKAGE_NAME = "rftkit"
SKIP_DIRS = {"tests", "docs", "bench", "examples", "site", "build", "dist", ".venv", "__pycache__"}


def load(target: str) -> Any:
    """Import "module:attribute" and return the attribute."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


# ---------------------------------------------------------------- descriptions from source comments


def _field_comments(cls: type) -> dict[str, str]:
    """Field name -> the comment on its line, or the comment lines right above it, in cls's source."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    source = inspect.cleandoc("\n" + source) if source.startswith((" ", "\t")) else source
    comments: dict[int, str] = {}
    code_lines: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
        elif tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            code_lines.add(tok.start[0])
    found: dict[str, str] = {}
    class_def = ast.parse(source).body[0]
    for node in getattr(class_def, "body", []):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        trailing = comments.get(node.end_lineno or node.lineno)
        if trailing is not None:
            found[node.target.id] = trailing
            continue
        above: list[str] = []
        line = node.lineno - 1
        while line in comments and line not in code_lines:
            above.insert(0, comments[line])
            line -= 1
        if above:
            found[node.target.id] = " ".join(above)
    return found


def describe(cls: type[BaseModel], name: str, field: FieldInfo) -> str:
    """The description of one field: Field(description=...), else its source comment, else ''."""
    if field.description:
        return field.description
    for klass in cls.__mro__:  # a field may be declared on a base class
        declared = isinstance(klass, type) and issubclass(klass, BaseModel)
        if declared and name in inspect.get_annotations(klass):
            return _field_comments(klass).get(name, "")
    return ""


# ---------------------------------------------------------------- types and defaults


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside `annotation` (X or X | None), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        models = [a for a in typing.get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
        if len(models) == 1:
            return models[0]
    return None


def format_type(annotation: Any) -> str:
    """A short, readable type: int | None, "a" | "b", list[str], dict[str, Any]."""
    if annotation is None or annotation is type(None):
        return "None"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(json.dumps(a) if isinstance(a, str) else repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(format_type(a) for a in args)
    if origin is typing.Annotated:
        return format_type(args[0])
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(format_type(a) for a in args)}]" if args else name
    if annotation is typing.Any:
        return "Any"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def format_default(field: FieldInfo) -> str:
    """The default as JSON (which YAML, flags and environment variables accept), or 'required'."""
    if field.default_factory is not None:
        try:
            value = field.default_factory()  # type: ignore[call-arg]
        except TypeError:
            return "(computed)"
        if isinstance(value, BaseModel):
            return "(section)"
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, Path):
        value = str(value)
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|").replace("<", "&lt;")


def _code(text: str) -> str:
    return f"`{text}`" if "`" not in text else f"`` {text} ``"


# ---------------------------------------------------------------- config models


@dataclass
class Row:
    key: str
    type: str
    default: str
    description: str
    env: str = ""


def _is_settings(cls: type) -> bool:
    try:
        from pydantic_settings import BaseSettings
    except ImportError:
        return False
    return isinstance(cls, type) and issubclass(cls, BaseSettings)


def _env_name(cls: type[BaseModel], name: str, field: FieldInfo, prefix_keys: list[str]) -> str:
    """The environment variable that sets a field of a pydantic-settings class ('' when none)."""
    if not _is_settings(cls):
        return ""
    config = cls.model_config
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    if isinstance(extra.get("env"), str):  # the variable a settings class declares for the field
        return str(extra["env"])
    alias = field.validation_alias
    if isinstance(alias, str):
        return alias.upper()
    if isinstance(alias, AliasChoices):  # pydantic-settings reads each string choice, unprefixed
        return ", ".join(c.upper() for c in alias.choices if isinstance(c, str))
    env_prefix = str(config.get("env_prefix") or "")
    delimiter = config.get("env_nested_delimiter")
    if prefix_keys and not delimiter:
        return ""
    joined = (delimiter or "__").join([*prefix_keys, name])
    env = f"{env_prefix}{joined}"
    return env if config.get("case_sensitive") else env.upper()


def model_sections(
    cls: type[BaseModel], prefix: str = "", settings_root: type[BaseModel] | None = None
) -> Iterator[tuple[str, type[BaseModel], list[Row]]]:
    """(dotted section name, model, rows) for cls and, depth first, each nested model it holds."""
    root = settings_root or cls
    rows: list[Row] = []
    nested: list[tuple[str, type[BaseModel]]] = []
    for name, field in cls.model_fields.items():
        key = f"{prefix}{name}"
        sub = _model_in(field.annotation)
        keys = key.split(".")
        env = _env_name(root, keys[-1], field, keys[:-1]) if settings_root or _is_settings(cls) else ""
        if sub is not None:
            nested.append((key, sub))
            default = format_default(field)
            kind = {"(section)": "section", "required": "section (required)"}.get(
                default, f"section, default {default}"
            )
            rows.append(Row(key, kind, "", f"see [{key}](#{_anchor(key)}) below", env))
            continue
        kind, default = format_type(field.annotation), format_default(field)
        rows.append(Row(key, kind, default, describe(cls, name, field), env))
    yield prefix.rstrip("."), cls, rows
    for key, sub in nested:
        yield from model_sections(sub, prefix=f"{key}.", settings_root=root if _is_settings(root) else None)


def _anchor(key: str) -> str:
    """The id mkdocs' toc extension gives a heading `key` (dots are dropped)."""
    return "".join(c for c in key.lower() if c.isalnum() or c in "-_ ").replace(" ", "-")


def _doc(cls: type) -> str:
    doc = cls.__dict__.get("__doc__")
    return inspect.cleandoc(doc) if doc else ""


def render_model(target: str, title: str) -> str:
    """One model's part of the config page: heading, docstring, one table per section."""
    cls = load(target)
    out = [f"## {title}", "", f"`{target.replace(':', '.')}`", ""]
    if _doc(cls):
        out += [_doc(cls), ""]
    settings = _is_settings(cls)
    for key, model, rows in model_sections(cls):
        if key:
            out += [f"### {key}", ""]
            if _doc(model):
                out += [_doc(model), ""]
        header = ["key", "type", "default", "description"] + (["environment"] if settings else [])
        out += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in rows:
            default = _code(row.default) if row.default not in ("", "required") else row.default
            cells = [_code(row.key), _cell(row.type), default, _cell(row.description)]
            if settings:
                cells.append(", ".join(_code(e.strip()) for e in row.env.split(",")) if row.env else "")
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def _package_files(root: Path) -> Iterator[Path]:
    """The package's .py files, without descending into SKIP_DIRS or hidden folders."""
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(names):
            if name.endswith(".py"):
                yield Path(folder) / name


def discover_settings(root: Path = PACKAGE_ROOT) -> list[str]:
    """`module:Class` of each package class whose bases name BaseSettings (found without importing)."""
    found: list[str] = []
    for path in _package_files(root):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
            tree = ast.parse(text) if "BaseSettings" in text else None
        except (OSError, SyntaxError):  # a file being edited or moved right now
            continue
        if tree is None:
            continue
        rel = path.relative_to(root)
        module = ".".join([PACKAGE_NAME, *rel.with_suffix("").parts]).removesuffix(".__init__")
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and any(
                (isinstance(b, ast.Name) and b.id == "BaseSettings")
                or (isinstance(b, ast.Attribute) and b.attr == "BaseSettings")
                for b in node.bases
            ):
                found.append(f"{module}:{node.name}")
    return found


def all_models() -> list[tuple[str, str]]:
    """MODELS, then every discovered settings class not already listed."""
    listed = {target for target, _ in MODELS}
    extra = [(t, f"{t.split(':')[1]} (settings)") for t in discover_settings() if t not in listed]
    return MODELS + extra


def config_page() -> str:
    """Markdown for every config model and settings class."""
    parts = [
        "# Configuration reference",
        "",
        "Generated from the pydantic models by `docs/gen_reference.py` at each docs build; do not edit.",
        "Defaults are written as JSON (`null` is none), which YAML files, `--set key=value` overrides and",
        "environment variables all accept. A nested key is written with dots, as in `--set trainer.seed=1`.",
        "",
    ]
    for target, title in all_models():
        parts.append(render_model(target, title))
    return "\n".join(parts)


# ---------------------------------------------------------------- the command tree


def _commands(
    command: click.Command, path: list[str], ctx: click.Context
) -> Iterator[tuple[list[str], click.Command, click.Context]]:
    yield path, command, ctx
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is None or getattr(sub, "hidden", False):
                continue
            yield from _commands(sub, [*path, name], click.Context(sub, info_name=name, parent=ctx))


def _param_type(param: click.Parameter) -> str:
    if isinstance(param, click.Option) and param.is_flag and not param.count:
        return "flag"
    kind = param.type
    if isinstance(kind, click.Choice):
        return " | ".join(str(c) for c in kind.choices)
    name = getattr(kind, "name", "") or type(kind).__name__
    return name.lower() + (" (repeatable)" if getattr(param, "multiple", False) else "")


def _param_default(param: click.Parameter) -> str:
    """The default shown in the table; '' for none, a flag that is off, or a computed default."""
    default = param.default
    unset = getattr(click.core, "UNSET", None)  # click >= 8.2 marks "no default" with a sentinel
    if (
        callable(default)
        or default is None
        or (unset is not None and default is unset)
        or default in ((), [])
        or (isinstance(param, click.Option) and param.is_flag and default is False)
    ):
        return ""
    if isinstance(default, Enum):
        default = default.value
    if isinstance(default, (list, tuple)):
        return " ".join(str(d) for d in default)
    return str(default)


def render_command(path: list[str], command: click.Command, ctx: click.Context) -> str:
    """One command's section: usage, help and a table of its arguments and options."""
    name = " ".join(path)
    usage = " ".join([name, *command.collect_usage_pieces(ctx)])
    out = [f"## {name}", "", "```", usage, "```", ""]
    if command.help:
        out += [inspect.cleandoc(command.help).split("\f")[0].strip(), ""]
    params = [p for p in command.params if not getattr(p, "hidden", False) and p.name != "help"]
    if params:
        out += ["| option | type | default | description |", "|---|---|---|---|"]
        for param in params:
            if isinstance(param, click.Option):
                names = ", ".join(param.opts + param.secondary_opts)
                text = param.help or ""
                if param.required:
                    text = f"required. {text}".strip()
                envvar = param.envvar
                if envvar:
                    envs = [envvar] if isinstance(envvar, str) else list(envvar)
                    text = f"{text} (environment: {', '.join('$' + e for e in envs)})".strip()
            else:
                names = param.human_readable_name
                text = "argument" + (", required" if param.required else "")
            default = _code(_param_default(param)) if _param_default(param) else ""
            out.append(f"| {_code(names)} | {_cell(_param_type(param))} | {default} | {_cell(text)} |")
        out.append("")
    return "\n".join(out)


def cli_page() -> str:
    """Markdown for every command under the root group."""
    root = load(CLI_ROOT)
    parts = [
        "# Command-line reference",
        "",
        "Generated from the click commands by `docs/gen_reference.py` at each docs build; do not edit.",
        "`rft COMMAND --help` prints the same.",
        "",
    ]
    ctx = click.Context(root, info_name=CLI_NAME)
    for path, command, sub_ctx in _commands(root, [CLI_NAME], ctx):
        if path == [CLI_NAME]:
            continue
        parts.append(render_command(path, command, sub_ctx))
    return "\n".join(parts)


def pages() -> dict[str, str]:
    """Docs-relative path -> generated markdown."""
    return {CONFIG_PAGE: config_page(), CLI_PAGE: cli_page()}


# ---------------------------------------------------------------- mkdocs hook


def on_files(files: Any, config: Any) -> Any:
    """mkdocs hook: add the generated reference pages and the rare-disease example to the build."""
    from mkdocs.structure.files import File

    for src_uri, content in pages().items():
        files.append(File.generated(config, src_uri, content=content))
    for src_uri, content in example_files().items():
        files.append(File.generated(config, src_uri, content=content))
    return files


# The rare-disease example's own README (kept by its owner under examples/) becomes a page, with
# the files it links to beside it so its relative links work on the site too.
EXAMPLE_DIR = PACKAGE_ROOT / "examples" / "rare_disease"
EXAMPLE_PAGE_DIR = "examples/rare_disease"
EXAMPLE_SUFFIXES = {".json", ".yaml", ".py"}


def example_files() -> dict[str, str | bytes]:
    """Docs-relative path -> content for the rare-disease example page and its linked files."""
    out: dict[str, str | bytes] = {}
    readme = EXAMPLE_DIR / "README.md"
    if readme.is_file():
        out[f"{EXAMPLE_PAGE_DIR}/index.md"] = readme.read_text(encoding="utf-8")
    for path in sorted(EXAMPLE_DIR.glob("*")):
        if path.suffix in EXAMPLE_SUFFIXES and path.is_file():
            out[f"{EXAMPLE_PAGE_DIR}/{path.name}"] = path.read_bytes()
    return out


def main(argv: list[str] | None = None) -> int:
    """Write the generated reference pages under OUT_DIR (outside docs/, or mkdocs would see them twice)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python docs/gen_reference.py OUT_DIR", file=sys.stderr)
        return 2
    out_dir = Path(args[0])
    for rel, content in pages().items():
        target = out_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
        print(target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
