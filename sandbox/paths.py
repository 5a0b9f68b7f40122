"""Where the sandboxes' built parts live, and what goes into them.

A sandbox *environment* is named by an image tag, as OpenAI's python graders name theirs
(`"image_tag": "2025-05-08"`). Each tag has a requirements file: the shipped ones under
`sandbox/requirements/<tag>.txt` (OpenAI's published pins, and rftkit's own newer set), and a
team's own under `<state dir>/requirements/<tag>.txt`, written by
`rft sandbox build --requirements FILE --image-tag NAME` on top of a shipped tag. Every tag gets
its own grader venv (the namespace backend) and Docker image, built from the same packages.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REQUIREMENTS_DIR = PACKAGE_DIR / "requirements"
OPENAI_IMAGE_TAG = "2025-05-08"  # the tag OpenAI's graders guide documents, with its pins
RFTKIT_IMAGE_TAG = "rftkit-2026-12"  # the same packages at newer versions
DEFAULT_IMAGE_TAG = OPENAI_IMAGE_TAG
IMAGE_TAG_ENV = "RFTKIT_SANDBOX_IMAGE_TAG"  # the service-wide default, when set
TAG_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
EXTENDS_PREFIX = "# rftkit-extends: "  # first line of a team's requirements file
# What OpenAI's image lists besides packages; see corpora.py for which of them can be built.
NLTK_CORPORA = ("punkt", "stopwords", "wordnet", "omw-1.4", "names")
CORPORA_VERSION = "1"  # bump when corpora.py builds different data
SYSTEM_PYTHON = "/usr/bin/python3"
IMAGE_REPO = "rftkit-sandbox"
BASE_IMAGE_OFFLINE_REPO = "rftkit-sandbox-base"
ENV_MODULE = "rftkit_sandbox_env"  # the environment's own module: its tag, packages, import hints


class UnknownImageTag(ValueError):
    """A grader or command named an image tag that no requirements file defines."""


def host_suite() -> str:
    """The host's Debian release (the offline base matches it, so its python3 matches the venv's)."""
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            key, _, value = line.partition("=")
            if key == "VERSION_CODENAME" and value.strip('"'):
                return value.strip('"')
    except OSError:
        pass
    return "bookworm"


# Debian packages of the offline base: python3, and the OpenMP runtime that packages built from
# source here (scikit-bio 0.6.3 has no wheel) link against.
OFFLINE_BASE_PACKAGES = ("python3", "libgomp1")


def offline_base_image() -> str:
    extra = hashlib.sha256(",".join(OFFLINE_BASE_PACKAGES).encode()).hexdigest()[:8]
    return f"{BASE_IMAGE_OFFLINE_REPO}:{host_suite()}-{extra}"


def state_dir() -> Path:
    """Root of the built parts: $RFTKIT_SANDBOX_HOME, /var/lib/rftkit/sandbox as root, else ~/.cache."""
    env = os.environ.get("RFTKIT_SANDBOX_HOME")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/rftkit/sandbox")
    return Path.home() / ".cache" / "rftkit" / "sandbox"


def custom_requirements_dir() -> Path:
    """Where `rft sandbox build --requirements` keeps a team's own tags."""
    return state_dir() / "requirements"


def image_tags() -> dict[str, Path]:
    """Every known tag and its requirements file: the shipped ones, then a team's own."""
    found = {path.stem: path for path in sorted(REQUIREMENTS_DIR.glob("*.txt"))}
    custom = custom_requirements_dir()
    if custom.is_dir():
        for path in sorted(custom.glob("*.txt")):
            found.setdefault(path.stem, path)
    return found


def default_tag() -> str:
    return os.environ.get(IMAGE_TAG_ENV) or DEFAULT_IMAGE_TAG


def resolve_tag(tag: str | None = None) -> str:
    """The tag itself (None: $RFTKIT_SANDBOX_IMAGE_TAG, else the default); UnknownImageTag if undefined."""
    tag = tag or default_tag()
    known = image_tags()
    if tag not in known:
        raise UnknownImageTag(
            f"unknown sandbox image tag {tag!r}: the known tags are {', '.join(known)}. A team adds "
            "its own with `rft sandbox build --requirements FILE --image-tag NAME`"
        )
    return tag


def is_shipped(tag: str) -> bool:
    return (REQUIREMENTS_DIR / f"{tag}.txt").is_file()


def extends(tag: str) -> str | None:
    """The shipped tag a team's tag builds on, or None for a shipped tag."""
    if is_shipped(tag):
        return None
    first = image_tags()[resolve_tag(tag)].read_text().partition("\n")[0]
    return first[len(EXTENDS_PREFIX) :].strip() if first.startswith(EXTENDS_PREFIX) else DEFAULT_IMAGE_TAG


def requirement_files(tag: str | None = None) -> list[Path]:
    """The requirements files the tag's venv installs, base first."""
    tag = resolve_tag(tag)
    base = extends(tag)
    own = image_tags()[tag]
    return [own] if base is None else [*requirement_files(base), own]


def pinned_packages(tag: str | None = None) -> dict[str, str]:
    """Distribution name -> version spec ("==2.2.4", or "" when unpinned) from the tag's files."""
    found: dict[str, str] = {}
    for path in requirement_files(tag):
        for raw in path.read_text().splitlines():
            line = raw.split("#", 1)[0].strip()
            if not line or line.startswith("-"):
                continue
            match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(.*)", line)
            if match:
                found[match.group(1).lower().replace("_", "-")] = match.group(3).replace(" ", "")
    return found


def packages_fingerprint(tag: str | None = None) -> str:
    """Changes whenever what the tag's venv holds changes (requirements, corpora)."""
    tag = resolve_tag(tag)
    digest = hashlib.sha256(f"{tag}\n{CORPORA_VERSION}\n".encode())
    for path in requirement_files(tag):
        digest.update(path.read_bytes())
    digest.update((PACKAGE_DIR / "env_module.py").read_bytes())
    return digest.hexdigest()[:16]


def env_dir(tag: str | None = None) -> Path:
    return state_dir() / "envs" / resolve_tag(tag)


def venv_dir(tag: str | None = None) -> Path:
    """The virtual environment the namespace backend runs graders of this tag with."""
    return env_dir(tag) / "venv"


def venv_python(tag: str | None = None) -> Path:
    return venv_dir(tag) / "bin" / "python3"


def nltk_data_dir(tag: str | None = None) -> Path:
    """NLTK's data for this tag: `<venv>/nltk_data` is on NLTK's default search path (sys.prefix)."""
    return venv_dir(tag) / "nltk_data"


def dockerfile() -> Path:
    return PACKAGE_DIR / "Dockerfile"


def fingerprint(tag: str | None = None) -> str:
    """Changes whenever what goes into the tag's image changes (packages, corpora, Dockerfile)."""
    digest = hashlib.sha256(packages_fingerprint(tag).encode())
    digest.update(dockerfile().read_bytes())
    return digest.hexdigest()[:16]


def venv_stamp(tag: str | None = None) -> Path:
    """Written last by a successful venv build; holds `packages_fingerprint(tag)`."""
    return venv_dir(tag) / ".rftkit-packages"


def venv_ready(tag: str | None = None) -> bool:
    try:
        return venv_stamp(tag).read_text().strip() == packages_fingerprint(tag)
    except (OSError, UnknownImageTag):
        return False


def docker_image(tag: str | None = None) -> str:
    """The Docker image (name:tag) for the sandbox environment `tag` at its current fingerprint."""
    tag = resolve_tag(tag)
    return f"{IMAGE_REPO}:{tag}-{fingerprint(tag)}"


image_tag = docker_image  # the name the backends have always called it by
