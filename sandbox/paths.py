"""Where the sandboxes' built parts live, and what goes into them."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

# Like OpenAI's python-grader image, where PyPI has the package.
GRADER_PACKAGES = (
    "numpy",
    "scipy",
    "sympy",
    "pandas",
    "rapidfuzz",
    "scikit-learn",
    "rouge-score",
    "deepdiff",
    "jsonschema",
    "pydantic",
    "pyyaml",
    "nltk",
)
SYSTEM_PYTHON = "/usr/bin/python3"
IMAGE_REPO = "rftkit-sandbox"
BASE_IMAGE_OFFLINE_REPO = "rftkit-sandbox-base"
PACKAGE_DIR = Path(__file__).resolve().parent


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


def offline_base_image() -> str:
    return f"{BASE_IMAGE_OFFLINE_REPO}:{host_suite()}"


def state_dir() -> Path:
    """Root of the built parts: $RFTKIT_SANDBOX_HOME, /var/lib/rftkit/sandbox as root, else ~/.cache."""
    env = os.environ.get("RFTKIT_SANDBOX_HOME")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/rftkit/sandbox")
    return Path.home() / ".cache" / "rftkit" / "sandbox"


def venv_dir() -> Path:
    """The dedicated virtual environment the namespace backend runs graders with."""
    return state_dir() / "venv"


def venv_python() -> Path:
    return venv_dir() / "bin" / "python3"


def dockerfile() -> Path:
    return PACKAGE_DIR / "Dockerfile"


def packages_fingerprint() -> str:
    """Changes whenever the grader package list changes."""
    return hashlib.sha256("\n".join(GRADER_PACKAGES).encode()).hexdigest()[:16]


def fingerprint() -> str:
    """Changes whenever what goes into the image changes (packages, Dockerfile)."""
    digest = hashlib.sha256(packages_fingerprint().encode())
    digest.update(dockerfile().read_bytes())
    return digest.hexdigest()[:16]


def venv_stamp() -> Path:
    """Written last by a successful venv build; holds `packages_fingerprint()`."""
    return venv_dir() / ".rftkit-packages"


def venv_ready() -> bool:
    try:
        return venv_stamp().read_text().strip() == packages_fingerprint()
    except OSError:
        return False


def image_tag() -> str:
    """The sandbox image for the current fingerprint."""
    return f"{IMAGE_REPO}:{fingerprint()}"
