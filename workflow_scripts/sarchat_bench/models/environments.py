"""The Python environments that jobs run in, and the check that a job runs in the one it needs.

An environment is one pip requirements file, `envs/<name>.txt` (which may include others with
`-r`). Both deployment routes are made from it:

- without conda, `make env ENV=<name>` builds a virtual environment for it (`.venv` for
  `default`, `.venvs/<name>` for the others; README, "Environments");
- with `--software-deployment-method conda`, Snakemake builds `envs/<name>.yaml`, which is
  generated from the same file with every pin inline (`python -m sarchat_bench envs --write`),
  because Snakemake copies the yaml elsewhere before conda reads it, and hashes only the yaml.

A model job names the environment its model needs. If the interpreter it was started with is
not that environment, it re-executes itself in that environment's interpreter when one was
built, and otherwise stops with a one-line error saying how to get it.
"""

from __future__ import annotations

import logging
import os
import sys
from importlib import metadata
from pathlib import Path

from sarchat_bench.core.errors import SarchatError

REPO = Path(__file__).resolve().parents[3]
ENVS_DIR = REPO / "envs"
# What the conda route builds on: the same interpreter as the venvs.
log = logging.getLogger(__name__)
CONDA_PREAMBLE = {"channels": ["conda-forge"], "dependencies": ["python=3.11", "pip"]}


class EnvironmentMismatch(SarchatError, RuntimeError):
    pass


def names() -> list[str]:
    """Environments are the requirement files beside base.txt, which only the others include."""
    return sorted(p.stem for p in ENVS_DIR.glob("*.txt") if p.stem != "base")


def requirement_lines(name: str) -> list[str]:
    """The requirements of an environment with its `-r` includes expanded, in file order."""
    path = ENVS_DIR / f"{name}.txt"
    if not path.is_file():
        raise EnvironmentMismatch(f"no environment {name!r}: {path} does not exist (known: {', '.join(names())})")
    lines: list[str] = []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-r "):
            lines += requirement_lines(Path(line[3:].strip()).stem)
        elif line.startswith("-"):
            raise EnvironmentMismatch(f"{path}: pip option {line!r} is not supported in an environment file "
                                      "(the conda route could not carry it)")
        else:
            lines.append(line)
    return lines


def canonical(package: str) -> str:
    return package.strip().lower().replace("_", "-").replace(".", "-")


def lock_file(name: str) -> Path:
    """envs/locks/<name>.txt: every package a resolution of envs/<name>.txt gave, pinned. Written
    by `make lock` (write_lock) only; every install takes its versions from it."""
    return ENVS_DIR / "locks" / f"{name}.txt"


def locked_versions(name: str) -> dict[str, str]:
    """The versions of an environment's lock file."""
    pairs = (line.split("==") for line in lock_file(name).read_text().split())
    return {canonical(package): version for package, version in pairs}


def install_arguments(name: str, constraints: str | os.PathLike | None = None) -> list[str]:
    """pip's arguments that install an environment as locked: its requirements (the pins a person
    edits) constrained by its lock (every version the resolution gave), or by `constraints`, the
    lock as the Makefile passes it (without the CUDA 13 libraries where torch is a CUDA 12
    build). `make setup` installs the default environment the same way."""
    return ["-r", str(ENVS_DIR / f"{name}.txt"), "-c", str(constraints or lock_file(name))]


def resolved_versions(report: str | os.PathLike) -> dict[str, str]:
    """The packages of a `pip install --dry-run --report` JSON report."""
    import json

    return {canonical(item["metadata"]["name"]): item["metadata"]["version"]
            for item in json.loads(Path(report).read_text())["install"]}


def write_lock(name: str) -> Path:
    """Resolve the environment against the registry (pip's dry run) and pin all of it."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run([sys.executable, "-m", "pip", "install", "--isolated", "--dry-run", "--ignore-installed",
                        "--quiet", "--report", str(report), "-r", str(ENVS_DIR / f"{name}.txt")], check=True)
        versions = resolved_versions(report)
    lock = lock_file(name)
    lock.parent.mkdir(exist_ok=True)
    lock.write_text("".join(f"{package}=={version}\n" for package, version in sorted(versions.items())))
    return lock


def conda_yaml(name: str) -> str:
    """The conda environment file of an environment: its requirements inline, nothing relative."""
    import yaml

    body = {"channels": CONDA_PREAMBLE["channels"],
            "dependencies": [*CONDA_PREAMBLE["dependencies"], {"pip": requirement_lines(name)}]}
    header = (f"# Generated from envs/{name}.txt by `python -m sarchat_bench envs --write`; edit that file,\n"
              "# not this one (a test checks that they agree). Pins are inline because Snakemake copies\n"
              "# this file before conda reads it, and its environment hash covers only this file.\n")
    return header + yaml.safe_dump(body, sort_keys=False)


def interpreter(name: str) -> Path:
    """Where `make env ENV=<name>` puts the environment's Python."""
    return REPO / (".venv" if name == "default" else f".venvs/{name}") / "bin" / "python"


def unmet(name: str) -> list[str]:
    """The requirements of `name` that the running interpreter does not satisfy."""
    from packaging.requirements import Requirement

    problems = []
    for line in requirement_lines(name):
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            version = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            problems.append(f"{req.name} is not installed")
            continue
        if req.specifier and not req.specifier.contains(version, prereleases=True):
            problems.append(f"{req.name} {version} does not satisfy {req.specifier}")
    return problems


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


# Set to 1: model jobs run in the running interpreter whatever its packages' versions.
USE_RUNNING_ENVIRONMENT = "SARCHAT_USE_RUNNING_ENVIRONMENT"


def enter(name: str, model: str) -> None:
    """Make sure this process runs in environment `name`: return if it does, re-execute the
    command in the environment's interpreter if that was built, or stop with one line."""
    problems = unmet(name)
    if problems and os.environ.get(USE_RUNNING_ENVIRONMENT) == "1":
        # A machine's own stack (benchmarks/gpu_check.sh: its torch and transformers, ms-swift
        # from a wheelhouse) is what is being checked: run in it, and say what differs.
        log.warning("%s runs in %s as it is (%s=1), although %s", model, sys.prefix, USE_RUNNING_ENVIRONMENT,
                    "; ".join(problems[:5]))
        problems = []
    if not problems:
        log.info("%s runs in environment %s (%s: transformers %s, torch %s); CUDA_VISIBLE_DEVICES=%s, SLURM job %s",
                 model, name, sys.prefix, _version("transformers"), _version("torch"),
                 os.environ.get("CUDA_VISIBLE_DEVICES", "(unset)"), os.environ.get("SLURM_JOB_ID", "(none)"))
        return
    target = interpreter(name)
    if target.is_file() and Path(sys.executable) != target and not os.environ.get("SARCHAT_REEXEC"):
        os.environ["SARCHAT_REEXEC"] = "1"  # at most once: a broken environment must not loop
        os.execv(str(target), [str(target), "-m", "sarchat_bench", *sys.argv[1:]])
    how = f"build it with `make env ENV={name}`" + (f" (expected at {target})" if not target.is_file() else "")
    raise EnvironmentMismatch(
        f"model {model!r} needs environment {name!r} (envs/{name}.txt), but this job runs in {sys.prefix}, where "
        f"{'; '.join(problems[:3])}{' ...' if len(problems) > 3 else ''}: {how}, "
        "or run Snakemake with --software-deployment-method conda")


def layered(name: str) -> bool:
    """An environment that shares the default one's pins (it includes base.txt) is built as a
    layer over it; one that cannot (vllm) as a venv of its own."""
    text = (ENVS_DIR / f"{name}.txt").read_text()
    return any(line.split("#", 1)[0].strip() in ("-r base.txt", "-r default.txt") for line in text.splitlines())


def build(name: str, constraints: str | os.PathLike | None = None) -> Path:
    """Build environment `name` without conda (`make env ENV=<name>`).

    Its versions are the lock's (install_arguments). An environment that shares the default one's
    pins becomes a virtual environment layered over `.venv`: its own interpreter, a `.pth` that puts
    the default environment's packages after its own, and pip installing only what differs (for
    `transformers4`: transformers 4.57 and the packages its families need). pip resolves against
    everything visible, checks it (`pip check`), and never touches the default environment ("Not
    uninstalling ... outside environment"). A layer is about 180 MB against 6 GB for a full copy
    with torch, and takes seconds to build: on a shared cluster file system, quota and start-up time
    saved. It depends on `.venv` staying where it is; `make env` rebuilds it when `.venv`
    changes."""
    import site
    import subprocess
    import venv

    if name == "default":
        raise EnvironmentMismatch("the default environment is .venv itself: `make setup` builds it")
    requirement_lines(name)  # fails clearly for an unknown name
    base = interpreter("default")
    if Path(sys.prefix) != base.parents[1]:
        raise EnvironmentMismatch(f"build environments with the default one's interpreter ({base})")
    target = interpreter(name).parents[1]
    # venv creates it from the interpreter .venv was made from: the same Python.
    venv.EnvBuilder(clear=True, with_pip=not layered(name), symlinks=True).create(target)
    if layered(name):
        (layer_site,) = (target / "lib").glob("python3.*/site-packages")
        (layer_site / "_sarchat_default_env.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    python = interpreter(name)
    subprocess.run([str(python), "-m", "pip", "install", "--isolated", "--disable-pip-version-check",
                    *install_arguments(name, constraints)], check=True)
    check = subprocess.run([str(python), "-m", "pip", "check"], capture_output=True, text=True)
    # decord's wheel is tagged py3-none but its WHEEL file says cp36: pip check calls it
    # "not supported on this platform", although it imports and decodes video fine.
    problems = [line for line in check.stdout.splitlines()
                if line.strip() and "is not supported on this platform" not in line]
    if problems:
        raise EnvironmentMismatch(f"environment {name!r} has conflicts (pip check): {'; '.join(problems)}")
    return python
