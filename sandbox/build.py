"""Builds the sandboxes' parts, idempotently: per image tag, the grader venv and the Docker image.

Each tag's venv (system python3 + the packages of `sandbox/requirements/<tag>.txt`, or of a
team's file on top of a shipped tag, + NLTK's corpora in `<venv>/nltk_data`, + the
`rftkit_sandbox_env` module) serves the namespace backend directly, and its site-packages and
nltk_data go into that tag's image, so the Docker build needs no network. The image's base is
python:3.11-slim when it is present or can be pulled and the host's python3 is 3.11 too, else an
offline rootfs of the host's Debian release (debootstrap, then `docker import`), so the image's
python3 is the venv's.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from . import paths
from .corpora import build_nltk_data

Progress = Callable[[str], None]
ONLINE_BASE = "python:3.11-slim"
PULL_TIMEOUT_S = 60


class BuildError(RuntimeError):
    """A build step failed; the message says which and why."""


def _run(argv: list[str], progress: Progress, *, what: str) -> None:
    progress(f"$ {' '.join(argv[:6])}{' ...' if len(argv) > 6 else ''}")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    tail: list[str] = []
    for line in proc.stdout:
        line = line.rstrip()
        if line and not line.startswith("WARNING: Location"):
            tail = [*tail[-30:], line]
            progress(f"  {line}")
    if proc.wait() != 0:
        raise BuildError(f"{what} failed (exit {proc.returncode}):\n" + "\n".join(tail[-15:]))


def build_venv(progress: Progress, *, tag: str | None = None, force: bool = False) -> bool:
    """Create the grader venv of one image tag; returns False when it was already up to date."""
    tag = paths.resolve_tag(tag)
    if paths.venv_ready(tag) and not force:
        progress(f"venv {paths.venv_dir(tag)} ({tag}) is up to date")
        return False
    if not Path(paths.SYSTEM_PYTHON).exists():
        raise BuildError(f"{paths.SYSTEM_PYTHON} is missing (apt-get install python3 python3-venv)")
    venv = paths.venv_dir(tag)
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    for parent in (venv.parent, *venv.parent.parents):  # workers run as other uids: let them in
        if parent == Path.home() or str(parent) == "/":
            break
        parent.chmod(parent.stat().st_mode | 0o755)
    progress(f"building the grader venv for image tag {tag} in {venv}")
    pip = [*_create_venv(venv, progress), "install", "--no-input", "--progress-bar", "off"]
    requirements = [arg for path in paths.requirement_files(tag) for arg in ("-r", str(path))]
    _run([*pip, *requirements], progress, what=f"installing the packages of image tag {tag}")
    python = str(venv / "bin" / "python3")
    corpora = build_nltk_data(paths.nltk_data_dir(tag), python, progress)
    _install_env_module(tag, python, corpora)
    _run([python, "-I", "-m", paths.ENV_MODULE], progress, what=f"importing every package of {tag}")
    subprocess.run(["chmod", "-R", "a+rX", str(venv)], check=True)
    paths.venv_stamp(tag).write_text(paths.packages_fingerprint(tag))
    progress(f"venv for {tag} ready")
    return True


_DIST_SCRIPT = """
import importlib.metadata as md, json, sys
wanted = set(json.loads(sys.argv[1]))
norm = lambda name: name.lower().replace("_", "-")
packages = {
    norm(d.metadata["Name"]): d.version for d in md.distributions() if norm(d.metadata["Name"]) in wanted
}
modules = {
    module: norm(dist)
    for module, dists in md.packages_distributions().items()
    for dist in dists
    if norm(dist) in wanted and module.isidentifier() and not module.startswith("_")
}
print(json.dumps({"packages": packages, "modules": modules}))
"""


def _install_env_module(tag: str, python: str, corpora: dict[str, str]) -> None:
    """Put `rftkit_sandbox_env` (its tag, packages, import hints) into the venv, started by a .pth."""
    wanted = sorted(paths.pinned_packages(tag))
    done = subprocess.run(
        [python, "-I", "-c", _DIST_SCRIPT, json.dumps(wanted)], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise BuildError(f"reading the installed packages failed: {done.stderr[-1500:]}")
    found = json.loads(done.stdout)
    absent = sorted(set(wanted) - set(found["packages"]))
    if absent:
        raise BuildError(f"the venv of {tag} lacks {', '.join(absent)} after pip install")
    info = {"image_tag": tag, **found, "corpora": corpora}
    target = site_packages(tag)
    shutil.copy(paths.PACKAGE_DIR / "env_module.py", target / f"{paths.ENV_MODULE}.py")
    (target / f"{paths.ENV_MODULE}.json").write_text(json.dumps(info, indent=1, sort_keys=True))
    (target / "rftkit-sandbox-env.pth").write_text(
        f"import {paths.ENV_MODULE}; {paths.ENV_MODULE}.install()\n"
    )


def add_requirements(name: str, requirements: Path, *, extends: str | None = None) -> str:
    """Register a team's own image tag: `requirements` installed on top of the shipped tag `extends`."""
    if not paths.TAG_PATTERN.fullmatch(name):
        raise BuildError(f"image tag {name!r}: use letters, digits, '.', '_' and '-' (64 at most)")
    if paths.is_shipped(name):
        raise BuildError(f"image tag {name!r} is one of rftkit's own; name yours differently")
    base = extends or paths.DEFAULT_IMAGE_TAG
    if not paths.is_shipped(base):
        shipped = ", ".join(t for t in paths.image_tags() if paths.is_shipped(t))
        raise BuildError(f"--extends {base!r}: a team's image builds on a shipped tag ({shipped})")
    try:
        text = requirements.read_text()
    except OSError as exc:
        raise BuildError(f"cannot read the requirements file {requirements}: {exc}") from exc
    includes = ("-r", "--requirement", "-e", "--editable")
    if any(line.strip().startswith(includes) for line in text.splitlines()):
        raise BuildError(f"{requirements}: list packages one per line (no -r/-e lines)")
    target = paths.custom_requirements_dir() / f"{name}.txt"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(f"{paths.EXTENDS_PREFIX}{base}\n# from {requirements.resolve()}\n{text}")
    return name


def _create_venv(venv: Path, progress: Progress) -> list[str]:
    """Create the venv; returns the pip command that installs into it.

    Without Debian's python3-venv (no ensurepip) the venv is made `--without-pip` and filled by
    the pip of the interpreter running this build (`pip --python`).
    """
    try:
        _run([paths.SYSTEM_PYTHON, "-m", "venv", str(venv)], progress, what="creating the venv")
        return [str(venv / "bin" / "python3"), "-m", "pip"]
    except BuildError as exc:
        if "ensurepip" not in str(exc):
            raise
    progress("no ensurepip for the system python3: a venv without pip, filled by this pip")
    shutil.rmtree(venv, ignore_errors=True)
    _run([paths.SYSTEM_PYTHON, "-m", "venv", "--without-pip", str(venv)], progress, what="creating the venv")
    return [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python3")]


def site_packages(tag: str | None = None) -> Path:
    found = sorted(paths.venv_dir(tag).glob("lib/python3*/site-packages"))
    if not found:
        raise BuildError(f"no site-packages in {paths.venv_dir(tag)}")
    return found[0]


def _docker():
    import docker

    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except Exception as exc:
        raise BuildError(f"the Docker engine is not reachable ({exc}); start dockerd") from exc
    return client


def image_ready(client=None, tag: str | None = None) -> bool:
    """Whether the image of the tag's current fingerprint exists."""
    import docker

    try:
        client = client or docker.from_env(timeout=10)
        client.images.get(paths.docker_image(tag))
        return True
    except Exception:
        return False


def _pull_with_timeout(client, name: str, progress: Progress) -> bool:
    result: dict[str, bool] = {}

    def pull() -> None:
        try:
            client.images.pull(name)
            result["ok"] = True
        except Exception as exc:
            progress(f"cannot pull {name}: {str(exc)[:200]}")

    thread = threading.Thread(target=pull, daemon=True)
    thread.start()
    thread.join(PULL_TIMEOUT_S)
    return bool(result.get("ok"))


def offline_base(client, progress: Progress) -> str:
    """A Debian base (the host's release) with python3, made by debootstrap and `docker import`."""
    image = paths.offline_base_image()
    try:
        client.images.get(image)
        progress(f"offline base {image} is present")
        return image
    except Exception:
        pass
    if shutil.which("debootstrap") is None:
        raise BuildError("no base image: cannot pull python:3.11-slim and debootstrap is not installed")
    with tempfile.TemporaryDirectory(prefix="rftkit-rootfs-", dir=paths.state_dir()) as tmp:
        rootfs = Path(tmp) / "rootfs"
        include = "--include=" + ",".join(paths.OFFLINE_BASE_PACKAGES)
        argv = ["debootstrap", "--variant=minbase", include, paths.host_suite(), str(rootfs)]
        _run(argv, progress, what="debootstrap")
        shutil.rmtree(rootfs / "var/cache/apt/archives", ignore_errors=True)
        tarball = Path(tmp) / "rootfs.tar"
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tarball), "."], check=True)
        progress(f"importing the rootfs as {image}")
        repo, tag = image.split(":")
        client.api.import_image_from_file(str(tarball), repository=repo, tag=tag)
    return image


def choose_base(client, progress: Progress, base: str) -> str:
    if base == "offline":
        return offline_base(client, progress)
    if base != "auto":
        return base
    host_python = subprocess.run(
        [paths.SYSTEM_PYTHON, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    if host_python != "3.11":
        progress(f"host python3 is {host_python}, not 3.11: using an offline base of the host's release")
        return offline_base(client, progress)
    try:
        client.images.get(ONLINE_BASE)
        return ONLINE_BASE
    except Exception:
        pass
    progress(f"trying to pull {ONLINE_BASE} (up to {PULL_TIMEOUT_S} s)")
    if _pull_with_timeout(client, ONLINE_BASE, progress):
        return ONLINE_BASE
    return offline_base(client, progress)


def build_image(
    progress: Progress, *, tag: str | None = None, base: str = "auto", force: bool = False
) -> bool:
    """Build the sandbox image of one image tag; returns False when it was already up to date."""
    client = _docker()
    env_tag = paths.resolve_tag(tag)
    tag = paths.docker_image(env_tag)
    if image_ready(client, env_tag) and not force:
        progress(f"image {tag} is up to date")
        return False
    if not paths.venv_ready(env_tag):
        raise BuildError(f"build the venv of {env_tag} first (its packages go into the image)")
    base_image = choose_base(client, progress, base)
    progress(f"building {tag} on {base_image}")
    with tempfile.TemporaryDirectory(prefix="rftkit-image-", dir=paths.state_dir()) as ctx:
        shutil.copy(paths.dockerfile(), Path(ctx) / "Dockerfile")
        ignore = shutil.ignore_patterns(
            "__pycache__",
            "pip",
            "pip-*",
            "setuptools",
            "setuptools-*",
            "_distutils_hack",
            "distutils-precedence.pth",
        )
        shutil.copytree(
            site_packages(env_tag), Path(ctx) / "site-packages", ignore=ignore, copy_function=_link_or_copy
        )
        # copied, not linked: NLTK >= 3.10 refuses to read a file with more than one link
        shutil.copytree(paths.nltk_data_dir(env_tag), Path(ctx) / "nltk_data")
        stream = client.api.build(
            path=ctx,
            tag=tag,
            buildargs={"BASE": base_image},
            rm=True,
            forcerm=True,
            decode=True,
            labels={"rftkit.sandbox.fingerprint": paths.fingerprint(env_tag), "rftkit.sandbox.tag": env_tag},
        )
        for chunk in stream:
            if "error" in chunk:
                raise BuildError(f"docker build failed: {chunk['error']}")
            line = str(chunk.get("stream", "")).rstrip()
            if line:
                progress(f"  {line}")
    if env_tag == paths.DEFAULT_IMAGE_TAG:
        client.images.get(tag).tag(paths.IMAGE_REPO, "latest")
    with contextlib.suppress(Exception):  # older builds of the sandbox image, now untagged
        client.images.prune(filters={"dangling": True, "label": "rftkit.sandbox.fingerprint"})
    progress(f"image {tag} ready")
    return True


def _link_or_copy(src: str, dst: str) -> None:
    try:
        Path(dst).hardlink_to(src)
    except OSError:
        shutil.copy2(src, dst)
