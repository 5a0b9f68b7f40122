"""Sandbox environments by image tag: OpenAI's published pins by default, rftkit's newer set, a team's own."""

from __future__ import annotations

from pathlib import Path

import pytest
from rftkit.sandbox import build, paths

OPENAI_PINS = {  # OpenAI's graders guide, image tag 2025-05-08
    "numpy": "==2.2.4", "scipy": "==1.15.2", "sympy": "==1.13.3", "pandas": "==2.2.3",
    "rapidfuzz": "==3.10.1", "scikit-learn": "==1.6.1", "rouge-score": "==0.1.2",
    "deepdiff": "==8.4.2", "jsonschema": "==4.23.0", "pydantic": "==2.10.6", "pyyaml": "==6.0.2",
    "nltk": "==3.9.1", "sqlparse": "==0.5.3", "rdkit": "==2024.9.6", "scikit-bio": "==0.6.3",
    "ast-grep-py": "==0.36.2",
}  # fmt: skip


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RFTKIT_SANDBOX_HOME", str(tmp_path))
    monkeypatch.delenv(paths.IMAGE_TAG_ENV, raising=False)
    return tmp_path


def test_openai_tag_is_the_default_with_openai_pins(state: Path) -> None:
    assert paths.resolve_tag() == paths.DEFAULT_IMAGE_TAG == "2025-05-08"
    assert paths.pinned_packages("2025-05-08") == OPENAI_PINS
    newer = paths.pinned_packages(paths.RFTKIT_IMAGE_TAG)
    assert set(newer) == set(OPENAI_PINS) and newer != OPENAI_PINS
    assert all(spec.startswith("==") for spec in newer.values())


def test_tags_pick_their_own_venv_and_image(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    openai, ours = paths.venv_dir("2025-05-08"), paths.venv_dir(paths.RFTKIT_IMAGE_TAG)
    assert openai != ours and openai.is_relative_to(state)
    assert paths.docker_image("2025-05-08").startswith("rftkit-sandbox:2025-05-08-")
    assert paths.docker_image("2025-05-08") != paths.docker_image(paths.RFTKIT_IMAGE_TAG)
    assert paths.nltk_data_dir("2025-05-08") == openai / "nltk_data"
    monkeypatch.setenv(paths.IMAGE_TAG_ENV, paths.RFTKIT_IMAGE_TAG)
    assert paths.venv_dir() == ours  # the service-wide default moves with the variable


def test_unknown_tags_are_refused_with_the_known_ones(state: Path) -> None:
    with pytest.raises(paths.UnknownImageTag) as info:
        paths.resolve_tag("2099-01-01")
    message = str(info.value)
    assert "2099-01-01" in message and "2025-05-08" in message and "--requirements" in message
    assert not paths.venv_ready("2099-01-01")


def test_a_team_adds_its_own_tag_on_top_of_a_shipped_one(state: Path, tmp_path: Path) -> None:
    extra = tmp_path / "team.txt"
    extra.write_text("biopython==1.85\n")
    assert build.add_requirements("team-chem", extra) == "team-chem"
    assert "team-chem" in paths.image_tags() and not paths.is_shipped("team-chem")
    assert paths.extends("team-chem") == "2025-05-08"
    files = paths.requirement_files("team-chem")
    assert files[0] == paths.REQUIREMENTS_DIR / "2025-05-08.txt" and len(files) == 2
    assert paths.pinned_packages("team-chem") == {**OPENAI_PINS, "biopython": "==1.85"}
    before = paths.fingerprint("team-chem")
    extra.write_text("biopython==1.86\n")
    build.add_requirements("team-chem", extra, extends=paths.RFTKIT_IMAGE_TAG)
    assert paths.fingerprint("team-chem") != before
    assert (
        paths.pinned_packages("team-chem")["numpy"] == paths.pinned_packages(paths.RFTKIT_IMAGE_TAG)["numpy"]
    )


@pytest.mark.parametrize(
    ("name", "extends", "needle"),
    [
        ("bad name", None, "letters, digits"),
        ("2025-05-08", None, "one of rftkit's own"),
        ("t", "nope", "--extends"),
    ],
)
def test_bad_team_tags_are_refused(
    state: Path, tmp_path: Path, name: str, extends: str | None, needle: str
) -> None:
    extra = tmp_path / "team.txt"
    extra.write_text("biopython\n")
    with pytest.raises(build.BuildError) as info:
        build.add_requirements(name, extra, extends=extends)
    assert needle in str(info.value)


def test_build_command_needs_one_tag_name_with_requirements(state: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner
    from rftkit.cli.sandbox import sandbox

    extra = tmp_path / "team.txt"
    extra.write_text("biopython\n")
    result = CliRunner().invoke(sandbox, ["build", "--requirements", str(extra)])
    assert result.exit_code == 2 and "exactly one --image-tag" in result.output
    result = CliRunner().invoke(sandbox, ["build", "--image-tag", "2099-01-01"])
    assert result.exit_code == 1 and "unknown sandbox image tag" in result.output
