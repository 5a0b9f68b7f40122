"""The README stays a front door and the manual builds: strict mkdocs, live links, generated reference."""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import click
import pytest
from pydantic import BaseModel, Field

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
README_MAX_BYTES = 12_000
SETUP_AND_RUN = "bash .ci/setup && bash examples/quickstart.sh"
SETUP_AND_TEST = "bash .ci/setup && .venv/bin/python -m pytest tests"

_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)
_CODE_SPAN = re.compile(r"`[^`\n]*`")


@functools.cache
def _gen() -> ModuleType:
    """docs/gen_reference.py, imported by path (docs/ is not a package)."""
    spec = importlib.util.spec_from_file_location("gen_reference", ROOT / "docs" / "gen_reference.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def slug(heading: str) -> str:
    """The anchor GitHub and mkdocs both give a heading made of words, spaces, dashes and code."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    text = _FENCE.sub("", markdown)
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*$", text, re.MULTILINE)}


def links(markdown: str) -> list[str]:
    return _LINK.findall(_CODE_SPAN.sub("", _FENCE.sub("", markdown)))


def test_readme_is_small() -> None:
    size = len(README.read_bytes())
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes (max {README_MAX_BYTES}): move text to docs/"


def test_readme_starts_with_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    first_block = _FENCE.search(text)
    assert first_block, "README.md has no code block"
    assert SETUP_AND_RUN in first_block.group(0) and SETUP_AND_TEST in first_block.group(0)
    assert not re.search(r"^##\s", text[: first_block.start()], re.MULTILINE), "the commands come first"
    assert (ROOT / "examples" / "quickstart.sh").is_file()
    assert SETUP_AND_TEST in (ROOT / ".ci" / "run").read_text(), ".ci/run must run the README's test command"


def test_readme_links_resolve() -> None:
    text = README.read_text(encoding="utf-8")
    found = links(text)
    assert found, "README.md links to nothing"
    broken = []
    for target in found:
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (README.parent / path).resolve() if path else README
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file.read_text(encoding="utf-8")):
            broken.append(f"{target}: no heading #{anchor} in {file.relative_to(ROOT)}")
    assert not broken, "README.md links that do not resolve:\n" + "\n".join(broken)


def test_link_checker_sees_broken_links() -> None:
    assert links("[a](docs/x.md) ![img](p.png) `[b](c)`\n```\n[d](e)\n```") == ["docs/x.md"]
    assert "the-grader-service" in anchors("## The grader service\n```\n# not a heading\n```")
    assert "not-a-heading" not in anchors("```\n# not a heading\n```")


def test_docs_build_strict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}"
    config = (site / "reference" / "config" / "index.html").read_text(encoding="utf-8")
    cli = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    assert "model.tiny.warmup_file" in config and "sample_timeout_s" in config
    assert "rft serve" in cli and "--data-dir" in cli
    assert (site / "examples" / "rare_disease" / "index.html").is_file()


# ------------------------------------------------------------------ the reference generator


def _dotted_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    gen = _gen()
    keys = []
    for name, field in model.model_fields.items():
        keys.append(prefix + name)
        sub = gen._model_in(field.annotation)
        if sub is not None:
            keys += _dotted_keys(sub, f"{prefix}{name}.")
    return keys


def test_config_page_has_every_key() -> None:
    gen = _gen()
    page = gen.config_page()
    for target, _title in gen.MODELS:
        for key in _dotted_keys(gen.load(target)):
            assert f"| `{key}` |" in page, f"{key} of {target} is missing from the config reference"


def test_cli_page_has_every_command_and_option() -> None:
    gen = _gen()
    page = gen.cli_page()
    root = gen.load(gen.CLI_ROOT)
    seen = 0
    for path, command, _ctx in gen._commands(root, ["rft"], click.Context(root, info_name="rft")):
        if len(path) == 1:
            continue
        seen += 1
        assert f"## {' '.join(path)}\n" in page
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert param.opts[0] in page, f"{param.opts[0]} of {' '.join(path)} is missing"
    assert seen >= 10  # the tree was walked through the lazy group, not just its root
    assert "object object" not in page and "Sentinel" not in page  # click's "no default" marker


class _Commented(BaseModel):
    """A model whose fields are described only by comments."""

    a: int = 1  # the trailing one
    # the line above,
    # on two lines
    b: str = "x"
    c: float | None = None


def test_descriptions_come_from_comments_and_types_read_well() -> None:
    gen = _gen()
    fields = _Commented.model_fields
    assert gen.describe(_Commented, "a", fields["a"]) == "the trailing one"
    assert gen.describe(_Commented, "b", fields["b"]) == "the line above, on two lines"
    assert gen.describe(_Commented, "c", fields["c"]) == ""
    assert gen.format_type(fields["c"].annotation) == "float | None"
    assert gen.format_default(fields["b"]) == '"x"'


def test_settings_classes_are_found_without_a_line(tmp_path: Path) -> None:
    gen = _gen()
    (tmp_path / "serve").mkdir()
    (tmp_path / "serve" / "settings.py").write_text(
        "from pydantic_settings import BaseSettings\n\n"
        "class ServeSettings(BaseSettings):\n    port: int = 1\n"
    )
    (tmp_path / "tests").mkdir()  # tests are not part of the package
    (tmp_path / "tests" / "t.py").write_text(
        "import pydantic_settings\nclass X(pydantic_settings.BaseSettings): pass\n"
    )
    assert gen.discover_settings(tmp_path) == ["rftkit.serve.settings:ServeSettings"]


def test_settings_rows_name_their_environment_variable() -> None:
    pydantic_settings = pytest.importorskip("pydantic_settings")
    gen = _gen()

    class Settings(pydantic_settings.BaseSettings):
        model_config = pydantic_settings.SettingsConfigDict(env_prefix="RFT_SERVE_")
        port: int = 50051  # gRPC port
        token: str | None = Field(None, description="Bearer token.", json_schema_extra={"env": "RFT_TOKEN"})

    rows = next(iter(gen.model_sections(Settings)))[2]
    assert [(r.key, r.env, r.description) for r in rows] == [
        ("port", "RFT_SERVE_PORT", "gRPC port"),
        ("token", "RFT_TOKEN", "Bearer token."),
    ]
